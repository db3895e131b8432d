//! `daa config show`: the resolved experiment, optionally with each key's origin;
//! `daa config keys` and `daa config schema`: the reference of every key and the JSON
//! Schema of an experiment file, generated from the configuration types.

use anyhow::{Context, Result};
use daa::config::{Overrides, Registry, reference, resolve};

use crate::cli::KeysFormat;

pub fn show(resolved: &daa::config::Resolved, origin: bool) -> Result<()> {
    print!("{}", daa::config::render(resolved, origin));
    Ok(())
}

/// Every key with its default as the project's `configs/base.toml` resolves it (no
/// environment, profile or `--set`: the documented defaults).
pub fn keys(registry: &Registry, format: KeysFormat) -> Result<()> {
    let base = registry
        .root
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("configs/base.toml");
    let resolved = resolve(&base, &Overrides::default(), registry)?;
    let defaults = serde_json::to_value(&resolved.experiment).context("the experiment as JSON")?;
    let keys = reference::keys(&reference::file_schema(), &defaults);
    let components = reference::component_keys(registry.catalog);
    match format {
        KeysFormat::Md => print!("{}", reference::markdown(&keys, &components)),
        KeysFormat::Json => {
            let all = serde_json::json!({"experiment": keys, "components": components});
            println!("{}", serde_json::to_string_pretty(&all)?)
        }
    }
    Ok(())
}

pub fn schema() -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&reference::file_schema())?
    );
    Ok(())
}
