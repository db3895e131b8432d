//! `daa registry list`: every registry entry with its kind and description.

use anyhow::{Context, Result, bail};
use daa::config::Registry;

use super::UsageError;

pub fn list(registry: &Registry, only: Option<&str>) -> Result<()> {
    let directories = registry.catalog.directories;
    if let Some(name) = only
        && !directories.iter().any(|d| d.name == name)
    {
        let known: Vec<&str> = directories.iter().map(|d| d.name).collect();
        bail!(UsageError(format!(
            "unknown registry kind `{name}`; known: {}",
            known.join(", ")
        )));
    }
    for dir in directories
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
