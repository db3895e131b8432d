//! `daa config show`: the resolved experiment, optionally with each key's origin.

use anyhow::Result;

pub fn show(resolved: &daa::config::Resolved, origin: bool) -> Result<()> {
    print!("{}", daa::config::render(resolved, origin));
    Ok(())
}
