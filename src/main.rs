mod cli;
mod commands;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use cli::{
    BenchCommand, Cli, Command, ConfigCommand, DataCommand, LogFormat, RegistryCommand,
    ReproduceArgs,
};
use commands::UsageError;

fn main() -> ExitCode {
    daa::alloc::tune();
    #[cfg(unix)]
    // SAFETY: restores the default action for SIGPIPE before any thread starts, so that
    // `daa ... | head` ends quietly like other Unix tools instead of panicking on a write.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    init_logging(&cli);
    match dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", commands::message::render(&error));
            let usage = error.chain().find_map(bad_input).unwrap_or(false);
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// Whether `e` (one link of an error chain) is the user's to fix (exit code 2) or the
/// environment's (exit code 1); `None` when this link does not say.
fn bad_input(e: &(dyn std::error::Error + 'static)) -> Option<bool> {
    if e.is::<daa::config::ConfigError>() || e.is::<UsageError>() {
        return Some(true);
    }
    if let Some(e) = e.downcast_ref::<daa::device::DeviceError>() {
        return Some(e.is_bad_input());
    }
    if e.is::<daa::whole_file::FileError>() {
        return Some(false);
    }
    e.downcast_ref::<daa::data::DataError>()
        .map(|e| e.is_bad_input())
        .or_else(|| {
            e.downcast_ref::<daa::nn::checkpoint::CheckpointError>()
                .map(|e| e.is_bad_input())
        })
        .or_else(|| {
            e.downcast_ref::<daa::models::model::ModelError>()
                .map(|e| e.is_bad_input())
        })
        .or_else(|| {
            e.downcast_ref::<daa::train::TrainError>()
                .map(|e| e.is_bad_input())
        })
        .or_else(|| {
            e.downcast_ref::<daa::reproduce::ReproduceError>()
                .map(|e| e.is_bad_input())
        })
        .or_else(|| {
            e.downcast_ref::<daa::bench::BenchError>()
                .map(|e| !matches!(e, daa::bench::BenchError::Candle(_)))
        })
}

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(daa::config::LOG_VARIABLE)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn dispatch(cli: &Cli) -> Result<()> {
    let here = Path::new(".");
    match &cli.command {
        Command::Config(ConfigCommand::Show {
            config,
            set,
            origin,
        }) => commands::config::show(&commands::resolve(cli, config, set)?, *origin),
        Command::Config(ConfigCommand::Keys { format }) => {
            commands::config::keys(&commands::registry_for(cli, here)?, *format)
        }
        Command::Config(ConfigCommand::Schema) => commands::config::schema(),
        Command::Registry(RegistryCommand::List { kind }) => {
            commands::registry::list(&commands::registry_for(cli, here)?, kind.as_deref())
        }
        Command::Bench(BenchCommand::Step {
            device,
            batch,
            steps,
            kernels,
            cuda_tunings,
            models,
        }) => commands::bench::step(
            &commands::registry_for(cli, here)?,
            &commands::bench::Options {
                device,
                batch: *batch,
                steps: *steps,
                kernels,
                cuda_tunings,
            },
            models,
        ),
        Command::Run {
            config,
            set,
            resume,
            rerun,
            stop_after_epochs,
            stop_pretraining_after,
        } => {
            let options = daa::train::RunOptions {
                resume: *resume,
                rerun: *rerun,
                stop_after_epochs: *stop_after_epochs,
                stop_pretraining_after: *stop_pretraining_after,
                progress: !cli.quiet,
                pretrain_only: false,
            };
            commands::run::execute(&commands::resolve(cli, config, set)?, &options)
        }
        Command::Predict {
            config,
            set,
            checkpoint,
            data,
            out,
        } => commands::predict::predict(
            &commands::resolve(cli, config, set)?,
            checkpoint.as_deref(),
            data,
            out,
        ),
        Command::Reproduce(args) => reproduce(cli, args),
        Command::Runs {
            config,
            set,
            runs_dir,
            experiment,
            format,
        } => {
            let runs_dir = commands::runs::directory(cli, runs_dir, config.as_deref(), set)?;
            commands::runs::list(&runs_dir, experiment.as_deref(), *format)
        }
        Command::Plot { run_dir } => commands::plot::curves(run_dir),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "daa", &mut std::io::stdout());
            Ok(())
        }
        Command::Data(command) => data(cli, command),
    }
}

/// `daa reproduce`: one cell (`--cell`, a child's or an array task's work) or the grid in
/// the mode its flags ask for.
fn reproduce(cli: &Cli, args: &ReproduceArgs) -> Result<()> {
    let registry = commands::registry_for(cli, Path::new("."))?;
    let options = daa::reproduce::Options {
        profile: args.profile.clone(),
        seeds: args.seeds,
        only: args.only.clone(),
        progress: !cli.quiet,
        out: args.out.clone(),
        jobs: args.jobs as usize,
        sets: args.sets.clone(),
    };
    if let Some(which) = &args.cell {
        return commands::reproduce::cell(
            &registry,
            &args.name,
            &options,
            which,
            args.pretrain_only,
        );
    }
    let mode = if args.dry_run {
        commands::reproduce::Mode::DryRun
    } else if args.collect {
        commands::reproduce::Mode::Collect
    } else if args.slurm {
        commands::reproduce::Mode::Slurm(args.slurm_opt.clone())
    } else {
        commands::reproduce::Mode::Run
    };
    commands::reproduce::reproduce(&registry, &args.name, &options, mode)
}

/// `daa data ...`: synthesise, prepare or split a data set.
fn data(cli: &Cli, command: &DataCommand) -> Result<()> {
    match command {
        DataCommand::Synth {
            preset,
            profile,
            seed,
            dir,
        } => commands::data::synth(
            &commands::registry_for(cli, Path::new("."))?,
            preset,
            profile,
            *seed,
            dir.as_deref(),
        ),
        DataCommand::PrepareAliexpress { raw, country, out } => {
            let out = out.clone().unwrap_or_else(|| "data/aliexpress".into());
            commands::data::prepare_aliexpress(raw, country, &out)
        }
        DataCommand::PrepareMovielens { raw, out, domains } => {
            let (grouping, folder) = match domains.as_str() {
                "genre" => (
                    daa::data::movielens::Grouping::Genre,
                    "data/movielens-genre",
                ),
                _ => (daa::data::movielens::Grouping::Age, "data/movielens"),
            };
            let out = out.clone().unwrap_or_else(|| folder.into());
            commands::data::prepare_movielens(raw, &out, grouping)
        }
        DataCommand::Split {
            dataset,
            rate,
            seed,
            valid_rows,
            valid,
        } => commands::data::split(
            &commands::registry_for(cli, Path::new("."))?,
            dataset,
            *rate,
            *valid_rows,
            valid.as_deref(),
            *seed,
        ),
    }
}
