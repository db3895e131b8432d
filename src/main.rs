mod cli;
mod commands;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use cli::{BenchCommand, Cli, Command, ConfigCommand, DataCommand, LogFormat, RegistryCommand};
use commands::UsageError;
use daa::config::{self, Overrides};
use daa::registry::{DIRECTORIES, Registry};

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
            eprintln!("error: {error:#}");
            let usage = error.chain().any(|e| {
                e.is::<config::ConfigError>()
                    || e.is::<UsageError>()
                    || e.is::<daa::data::DataError>()
                    || e.is::<daa::nn::params::CheckpointError>()
                    || e.is::<daa::device::DeviceError>()
                    || matches!(
                        e.downcast_ref::<daa::reproduce::ReproduceError>(),
                        Some(
                            daa::reproduce::ReproduceError::Spec(_)
                                | daa::reproduce::ReproduceError::Config(_)
                        )
                    )
                    || matches!(
                        e.downcast_ref::<daa::train::TrainError>(),
                        Some(
                            daa::train::TrainError::Data(_)
                                | daa::train::TrainError::Checkpoint(_)
                                | daa::train::TrainError::Device(_)
                                | daa::train::TrainError::Invalid(_)
                        )
                    )
            });
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DAA_LOG")
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

fn registry_for(cli: &Cli, near: &Path) -> Result<Registry> {
    Ok(match &cli.registry {
        Some(root) if root.is_dir() => Registry { root: root.clone() },
        Some(root) => bail!(UsageError(format!(
            "--registry {}: no such directory",
            root.display()
        ))),
        None => Registry::locate(near)?,
    })
}

fn resolve(cli: &Cli, path: &Path, args: &cli::SetArgs) -> Result<config::Resolved> {
    let registry = registry_for(cli, path)?;
    let mut overrides = Overrides::from_process(args.sets.clone());
    if let Some(name) = &args.profile {
        overrides.files.push(profile_path(&registry, name)?);
    }
    Ok(config::resolve(path, &overrides, &registry)?)
}

/// `configs/profiles/NAME.toml` beside the registry.
fn profile_path(registry: &Registry, name: &str) -> Result<std::path::PathBuf> {
    let dir = registry
        .root
        .parent()
        .unwrap_or(Path::new("."))
        .join("configs/profiles");
    let path = dir.join(format!("{name}.toml"));
    if path.is_file() {
        return Ok(path);
    }
    bail!(UsageError(format!(
        "--profile {name}: no {}; available: {}",
        path.display(),
        daa::registry::toml_names(&dir).join(", ")
    )))
}

fn dispatch(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Config(ConfigCommand::Show {
            config,
            set,
            origin,
        }) => {
            let resolved = resolve(cli, config, set)?;
            print!("{}", config::render(&resolved, *origin));
            Ok(())
        }
        Command::Registry(RegistryCommand::List { kind }) => registry_list(cli, kind.as_deref()),
        Command::Bench(BenchCommand::Step {
            device,
            batch,
            steps,
            models,
        }) => {
            let device: daa::device::Device = device.parse().map_err(UsageError)?;
            let device = device.open()?;
            let unknown: Vec<&String> = models
                .iter()
                .filter(|m| !daa::bench::MODELS.contains(&m.as_str()))
                .collect();
            if !unknown.is_empty() {
                bail!(UsageError(format!(
                    "unknown backbone(s) {unknown:?}; known: {}",
                    daa::bench::MODELS.join(", ")
                )));
            }
            let chosen: Vec<&str> = daa::bench::MODELS
                .iter()
                .copied()
                .filter(|m| models.is_empty() || models.iter().any(|x| x == m))
                .collect();
            Ok(daa::bench::step(&chosen, &device, *batch, *steps)?)
        }
        Command::Run {
            config,
            set,
            resume,
            stop_after_epochs,
        } => {
            let options = daa::train::RunOptions {
                resume: *resume,
                stop_after_epochs: *stop_after_epochs,
                progress: !cli.quiet,
            };
            commands::run::execute(&resolve(cli, config, set)?, &options)
        }
        Command::Predict {
            config,
            set,
            checkpoint,
            data,
            out,
        } => commands::predict::predict(&resolve(cli, config, set)?, checkpoint, data, out),
        Command::Reproduce {
            name,
            profile,
            seeds,
            only,
            dry_run,
            out,
        } => {
            let registry = registry_for(cli, Path::new("."))?;
            let options = daa::reproduce::Options {
                profile: profile.clone(),
                seeds: *seeds,
                only: only.clone(),
                dry_run: *dry_run,
                progress: !cli.quiet,
                out: out.clone(),
            };
            let outcome = daa::reproduce::reproduce(name, &registry, &options)?;
            if !dry_run {
                println!(
                    "{} cells: {} run now, {} already finished (skipped)",
                    outcome.cells, outcome.ran, outcome.skipped
                );
            }
            Ok(())
        }
        Command::Data(DataCommand::Synth {
            preset,
            profile,
            seed,
        }) => commands::data::synth(&registry_for(cli, Path::new("."))?, preset, profile, *seed),
        Command::Data(DataCommand::PrepareAliexpress { raw, country, out }) => {
            let out = out.clone().unwrap_or_else(|| "data/aliexpress".into());
            commands::data::prepare_aliexpress(raw, country, &out)
        }
        Command::Data(DataCommand::Split {
            dataset,
            rate,
            seed,
            valid_rows,
        }) => commands::data::split(
            &registry_for(cli, Path::new("."))?,
            dataset,
            *rate,
            *valid_rows,
            *seed,
        ),
    }
}

fn registry_list(cli: &Cli, only: Option<&str>) -> Result<()> {
    let registry = registry_for(cli, Path::new("."))?;
    if let Some(name) = only
        && !DIRECTORIES.iter().any(|d| d.name == name)
    {
        let known: Vec<&str> = DIRECTORIES.iter().map(|d| d.name).collect();
        bail!(UsageError(format!(
            "unknown registry kind `{name}`; known: {}",
            known.join(", ")
        )));
    }
    for dir in DIRECTORIES
        .iter()
        .filter(|d| only.is_none_or(|o| o == d.name))
    {
        println!("{} ({})", dir.name, dir.about);
        for name in registry.names(dir.name) {
            let entry = registry
                .entry(dir.name, &name)
                .with_context(|| format!("registry/{}/{name}.toml", dir.name))?;
            println!(
                "  {:<16} {:<16} {}",
                entry.name, entry.kind, entry.description
            );
        }
    }
    Ok(())
}
