mod cli;
mod commands;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use cli::{BenchCommand, Cli, Command, ConfigCommand, DataCommand, LogFormat, RegistryCommand};
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
            eprintln!("error: {error:#}");
            let usage = error.chain().any(|e| {
                e.is::<daa::config::ConfigError>()
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
                                | daa::train::TrainError::Adapt(
                                    daa::adapt::AdaptError::Invalid(_)
                                        | daa::adapt::AdaptError::Checkpoint(_)
                                )
                        )
                    )
                    || matches!(
                        e.downcast_ref::<daa::bench::BenchError>(),
                        Some(
                            daa::bench::BenchError::Config(_) | daa::bench::BenchError::Invalid(_)
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

fn dispatch(cli: &Cli) -> Result<()> {
    let here = Path::new(".");
    match &cli.command {
        Command::Config(ConfigCommand::Show {
            config,
            set,
            origin,
        }) => commands::config::show(&commands::resolve(cli, config, set)?, *origin),
        Command::Registry(RegistryCommand::List { kind }) => {
            commands::registry::list(&commands::registry_for(cli, here)?, kind.as_deref())
        }
        Command::Bench(BenchCommand::Step {
            device,
            batch,
            steps,
            models,
        }) => commands::bench::step(
            &commands::registry_for(cli, here)?,
            device,
            *batch,
            *steps,
            models,
        ),
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
            commands::run::execute(&commands::resolve(cli, config, set)?, &options)
        }
        Command::Predict {
            config,
            set,
            checkpoint,
            data,
            out,
        } => {
            commands::predict::predict(&commands::resolve(cli, config, set)?, checkpoint, data, out)
        }
        Command::Reproduce {
            name,
            profile,
            seeds,
            only,
            dry_run,
            out,
        } => {
            let options = daa::reproduce::Options {
                profile: profile.clone(),
                seeds: *seeds,
                only: only.clone(),
                progress: !cli.quiet,
                out: out.clone(),
            };
            commands::reproduce::reproduce(
                &commands::registry_for(cli, here)?,
                name,
                &options,
                *dry_run,
            )
        }
        Command::Data(DataCommand::Synth {
            preset,
            profile,
            seed,
        }) => commands::data::synth(&commands::registry_for(cli, here)?, preset, profile, *seed),
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
            &commands::registry_for(cli, here)?,
            dataset,
            *rate,
            *valid_rows,
            *seed,
        ),
    }
}
