//! Paths written in configuration files resolve against the file that wrote them, so that
//! a registry or a grid can be moved or used from any directory.

use std::path::{Path, PathBuf};

use figment::{Figment, Source};

/// The path that `written`, the value at `key`, names: `~/...` under the home directory,
/// an absolute path as is, a relative one against the directory of the file that set
/// `key` (against the current directory when a `--set` flag or a variable set it).
pub fn resolve(figment: &Figment, key: &str, written: &Path) -> PathBuf {
    if let Ok(rest) = written.strip_prefix("~")
        && let Some(home) = std::env::home_dir()
    {
        return super::layer::absolute_clean(&home.join(rest));
    }
    if written.is_absolute() {
        return super::layer::absolute_clean(written);
    }
    let base = figment
        .find_metadata(key)
        .and_then(|meta| match &meta.source {
            Some(Source::File(file)) => file.parent().map(Path::to_path_buf),
            _ => None,
        })
        .unwrap_or_default();
    super::layer::absolute_clean(&base.join(written))
}
