//! The `daa` command line: clap definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "daa",
    version,
    about = "Cross-domain CTR/CVR recommendation via Dual Adversarial Adaptation"
)]
pub struct Cli {
    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The registry directory (default: the nearest `registry/` above the config file, else ./registry).
    #[arg(long, global = true)]
    pub registry: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunsFormat {
    Md,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeysFormat {
    Md,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How an experiment file is adjusted: a profile overlay and `--set` flags.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// Override one key (the value parsed as TOML; bare words are strings); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Apply a profile over the file: NAME from configs/profiles (smoke, cpu, paper) or a
    /// PATH to a TOML file.
    #[arg(long, value_name = "NAME|PATH")]
    pub profile: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one experiment: pretrain the source (cached), adapt the target, evaluate.
    Run {
        /// The experiment file, e.g. configs/mmoe_nl.toml.
        config: PathBuf,
        #[command(flatten)]
        set: SetArgs,
        /// Continue an interrupted run from its last checkpoint.
        #[arg(long)]
        resume: bool,
        /// Run again even if the run directory holds a finished result (which is otherwise
        /// printed and reused).
        #[arg(long, conflicts_with = "resume")]
        rerun: bool,
        /// Stop after N epochs, as an interruption would (to test --resume).
        #[arg(long, hide = true)]
        stop_after_epochs: Option<usize>,
        /// Stop source pretraining after N epochs, as an interruption would.
        #[arg(long, hide = true)]
        stop_pretraining_after: Option<usize>,
    },
    /// Reproduce a paper table or figure from reproduce/NAME.toml.
    Reproduce(ReproduceArgs),
    /// Inspect experiment configurations.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Inspect the registry of components.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Prepare, split and generate data sets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Every finished run under a runs directory in one table: experiment, method, seed,
    /// hash, best epoch, test AUCs, wall time, commit.
    Runs {
        /// An experiment whose `output.runs_dir` (with the environment, `--profile` and
        /// `--set` over it) is the directory to list; without one, `configs/base.toml`'s.
        config: Option<PathBuf>,
        #[command(flatten)]
        set: SetArgs,
        /// The runs directory (wins over every config layer).
        #[arg(long)]
        runs_dir: Option<PathBuf>,
        /// Only runs of experiments whose name contains this.
        #[arg(long)]
        experiment: Option<String>,
        #[arg(long, value_enum, default_value_t = RunsFormat::Md)]
        format: RunsFormat,
    },
    /// Draw a run's training curves into RUN_DIR/curves.svg (also written when a run
    /// finishes): losses, each critic's loss and Wasserstein estimate, validation AUC.
    Plot {
        /// A run directory (runs/EXPERIMENT/HASH), finished or still going.
        run_dir: PathBuf,
    },
    /// Print a shell completion script: `daa completions bash > /etc/bash_completion.d/daa`
    /// (zsh: into a directory on $fpath as `_daa`; fish: ~/.config/fish/completions/daa.fish).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Predict with a trained checkpoint: the row's id (or row number) and one
    /// probability per task for each input row; AUCs when the file has the label columns.
    Predict {
        /// The experiment file the checkpoint was trained with.
        config: PathBuf,
        /// The checkpoint (default: best.safetensors of the experiment's finished run).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// A CSV in the target's schema, with or without the label columns.
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        set: SetArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the fully resolved configuration.
    Show {
        /// The experiment file, e.g. configs/ablations/single_critic.toml.
        config: PathBuf,
        #[command(flatten)]
        set: SetArgs,
        /// Name the file, variable or flag that set each key.
        #[arg(long)]
        origin: bool,
    },
    /// Every experiment key: its type, its default (as the project's configs/base.toml
    /// resolves it), the values or range it accepts, and what it does.
    Keys {
        #[arg(long, value_enum, default_value_t = KeysFormat::Md)]
        format: KeysFormat,
    },
    /// The JSON Schema of an experiment file (every key optional: a file is one layer),
    /// for editors that validate and complete TOML (Taplo: .taplo.toml).
    Schema,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// List registry entries with a one-line description.
    List {
        /// Only this directory (backbones, embeddings, datasets, schemas, critics, losses).
        kind: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate the synthetic multi-domain data set.
    Synth {
        #[arg(long, default_value = "aliexpress")]
        preset: String,
        #[arg(long, default_value = "cpu")]
        profile: String,
        /// The generator's seed (default: the registry entries' seed).
        #[arg(long)]
        seed: Option<u64>,
        /// Where to write the domains (default: each entry's `dir`, relative to its file).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Convert raw Tianchi zips into the processed layout.
    PrepareAliexpress {
        #[arg(long)]
        raw: PathBuf,
        /// Country code: RU, ES, FR, NL or US.
        #[arg(long)]
        country: String,
        /// Output directory (default: data/aliexpress); files go to OUT/<COUNTRY>/{train,test}.csv.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Convert MovieLens-1M (GroupLens's ml-1m.zip or folder, or RecBole's atomic files)
    /// into the benchmark's domains: users by age (or movies by genre), `like` and `love`
    /// tasks, time splits.
    PrepareMovielens {
        /// ml-1m.zip, its unpacked folder, or a folder with ml-1m.inter/.user/.item.
        #[arg(long)]
        raw: PathBuf,
        /// Output directory (default: data/movielens, or data/movielens-genre with
        /// `--domains genre`); files go to OUT/<DOMAIN>/{train,test}.csv.
        #[arg(long)]
        out: Option<PathBuf>,
        /// `age`: users by age (source 25-34; young, mid, senior), movies shared; `genre`:
        /// movies by genre (horror, children; every other movie the source), users shared.
        #[arg(long, value_parser = ["age", "genre"], default_value = "age")]
        domains: String,
    },
    /// Draw the scarce target training subset and the validation rows.
    Split {
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        rate: f64,
        #[arg(long)]
        seed: u64,
        /// Validation rows drawn from the remaining training rows.
        #[arg(long, default_value_t = 10_000)]
        valid_rows: usize,
        /// Which rows validate: `latest` (the last in time) or `random`; by default
        /// `latest` for a data set whose rows are in time order (`ordered = true`).
        #[arg(long, value_parser = ["latest", "random"])]
        valid: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// ms per training step per backbone at the reference sizes (PyTorch beside it when
    /// BENCH_PYTHON has torch; BENCH_TORCH_SCRIPT locates tools/torch_step_bench.py).
    Step {
        /// cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
        #[arg(long, default_value_t = 2048)]
        batch: usize,
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// The kernels a CUDA device runs (`train.kernels`): portable or device.
        #[arg(long, default_value = "portable")]
        kernels: String,
        /// CUDA tunings to use, comma-separated, or none: events, pool, uploads (runs use
        /// events and pool).
        #[arg(long, value_delimiter = ',', default_value = "events,pool")]
        cuda_tunings: Vec<String>,
        /// Backbones to time (default: all).
        models: Vec<String>,
    },
}

/// `daa reproduce`'s arguments.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// A grid of reproduce/ by name (table3, table4, fig_sensitivity), or a path to any
    /// grid file (its `config` patterns relative to that file).
    #[arg(value_name = "NAME|PATH")]
    pub name: String,
    /// The overlay from configs/profiles: smoke (seconds), cpu (about an hour on 2
    /// cores), paper (the reference sizes, GPU-sized).
    #[arg(long, default_value = "cpu")]
    pub profile: String,
    /// Seeds per cell (default: the profile's count in the table file).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Only the cells whose name contains this text, e.g. `mmoe/nl` or `/daa/`.
    #[arg(long)]
    pub only: Option<String>,
    /// List the cells with their config hashes and whether they are finished.
    #[arg(long)]
    pub dry_run: bool,
    /// Output directory (default: reproduce/out/NAME, NAME the grid file's stem).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Cells run at a time, each in its own process with its share of the cores (source
    /// models are pretrained first, each once); 1 runs them in this process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: u64,
    /// Run only this cell of the grid and exit (its name, or its 0-based index in
    /// `--dry-run` order): what `--jobs` starts in each child process.
    #[arg(long, value_name = "CELL")]
    pub cell: Option<String>,
    /// With --cell: only pretrain the cell's source model.
    #[arg(long, requires = "cell")]
    pub pretrain_only: bool,
    /// Submit the missing cells as Slurm job arrays (the distinct source pretrainings,
    /// then the cells after them) instead of running them; the plan and the tasks' logs
    /// go to OUT/slurm/.
    #[arg(long, conflicts_with_all = ["cell", "collect", "dry_run"])]
    pub slurm: bool,
    /// An sbatch option for every array task, after the grid's `[slurm]` table (repeat
    /// it; e.g. `--slurm-opt=--partition=gpu`).
    #[arg(
        long,
        requires = "slurm",
        allow_hyphen_values = true,
        value_name = "OPTION"
    )]
    pub slurm_opt: Vec<String>,
    /// Build the report from the finished cells' run directories and list the missing
    /// ones (after `--slurm`'s arrays, or any interrupted grid); runs nothing.
    #[arg(long, conflicts_with_all = ["cell", "dry_run"])]
    pub collect: bool,
    /// Override one key of every cell's experiment, after the grid's own overrides
    /// (e.g. `--set train.epochs=5`; the cells' hashes change with it), or, as
    /// `slurm.KEY=VALUE`, an sbatch option of `--slurm`'s tasks over the grid's and the
    /// profile's (`--set slurm.partition=gpu --set slurm.time=04:00:00`); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}
