//! `daa plot RUN_DIR`: a run's training curves as SVG.

use std::path::Path;

use anyhow::{Result, bail};

use super::UsageError;

pub fn curves(run_dir: &Path) -> Result<()> {
    if !run_dir.join("metrics.jsonl").is_file() {
        bail!(UsageError(format!(
            "{}: not a run directory (no metrics.jsonl); runs live in runs/EXPERIMENT/HASH",
            run_dir.display()
        )));
    }
    let path = daa::train::curves::write(run_dir, None)?;
    println!("{}", path.display());
    Ok(())
}
