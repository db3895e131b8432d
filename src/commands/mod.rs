//! Implementations of the CLI's subcommands, and what they share: finding the registry,
//! resolving an experiment with its profile and overrides.

pub mod bench;
pub mod config;
pub mod data;
pub mod message;
pub mod plot;
pub mod predict;
pub mod registry;
pub mod reproduce;
pub mod run;
pub mod runs;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use daa::config::{Overrides, Registry, Resolved};

use crate::cli::{Cli, SetArgs};

/// Marks an error as the user's to fix (bad input, unknown name, not yet available):
/// exit code 2 rather than 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `--registry DIR`, else the `registry/` nearest above `near`.
pub fn registry_for(cli: &Cli, near: &Path) -> Result<Registry> {
    Ok(match &cli.registry {
        Some(root) if root.is_dir() => daa::catalog::registry(root.clone()),
        Some(root) => bail!(UsageError(format!(
            "--registry {}: no such directory",
            root.display()
        ))),
        None => daa::catalog::locate(near)?,
    })
}

/// The experiment at `path` with its profile and overrides.
pub fn resolve(cli: &Cli, path: &Path, args: &SetArgs) -> Result<Resolved> {
    let registry = registry_for(cli, path)?;
    let mut overrides =
        Overrides::from_process(args.sets.iter().map(daa::config::Set::flag).collect());
    if let Some(name) = &args.profile {
        overrides.files.push(profile_path(&registry, name)?);
    }
    Ok(daa::config::resolve(path, &overrides, &registry)?)
}

/// `--profile`: a path to a TOML file (anything with a `/` or ending in `.toml`), else a
/// plain name of `configs/profiles/` beside the registry.
fn profile_path(registry: &Registry, name: &str) -> Result<PathBuf> {
    let dir = registry
        .root
        .parent()
        .unwrap_or(Path::new("."))
        .join("configs/profiles");
    let explicit = name.contains(std::path::MAIN_SEPARATOR) || name.ends_with(".toml");
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let path = if explicit {
        PathBuf::from(name)
    } else {
        dir.join(format!("{name}.toml"))
    };
    if (explicit || plain) && path.is_file() {
        tracing::info!(profile = %path.display(), "applying the profile");
        return Ok(path);
    }
    if explicit {
        bail!(UsageError(format!("--profile {name}: no such file")));
    }
    bail!(UsageError(format!(
        "--profile {name}: not a profile name (no {}) nor a path to a TOML file; available: {}",
        dir.join(format!("{name}.toml")).display(),
        daa::config::registry::toml_names(&dir).join(", ")
    )))
}
