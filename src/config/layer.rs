use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider, Source};

use super::ConfigError;

/// One source of configuration values (a file, an environment variable, a `--set` flag),
/// with the metadata that `config show --origin` and error messages report.
#[derive(Debug, Clone)]
pub struct Layer {
    pub metadata: Metadata,
    pub table: toml::Table,
    /// A profile's layer: its keys in a registry slot apply only where the slot's entry
    /// has them.
    pub overlay: bool,
}

impl Layer {
    pub fn file(path: &Path, table: toml::Table) -> Self {
        let name = format!("{}", display_path(path).display());
        Layer {
            metadata: Metadata::from(name, Source::File(path.to_path_buf())),
            table,
            overlay: false,
        }
    }

    pub fn named(name: String, table: toml::Table) -> Self {
        Layer {
            metadata: Metadata::from(name.clone(), Source::Custom(name)),
            table,
            overlay: false,
        }
    }

    /// The same values placed under a dotted key path (registry entries sit at their slot).
    pub fn nested_under(mut self, path: &str) -> Self {
        for key in path.rsplit('.') {
            let mut outer = toml::Table::new();
            outer.insert(key.to_string(), toml::Value::Table(self.table));
            self.table = outer;
        }
        self
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict = Value::serialize(&self.table)?
            .into_dict()
            .expect("a TOML table serializes to a dict");
        Ok(Profile::Default.collect(dict))
    }
}

/// Removes the dotted `key` from the overlay layers that set it; whether any did.
pub fn drop_from_overlays(layers: &mut [Layer], key: &str) -> bool {
    let (parents, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let mut dropped = false;
    for layer in layers.iter_mut().filter(|l| l.overlay) {
        let mut table = Some(&mut layer.table);
        for part in parents.split('.').filter(|p| !p.is_empty()) {
            table = table
                .and_then(|t| t.get_mut(part))
                .and_then(toml::Value::as_table_mut);
        }
        dropped |= table.and_then(|t| t.remove(leaf)).is_some();
    }
    dropped
}

/// Reads `path` and everything it `extends`, depth-first and in order, so that later
/// layers override earlier ones and the file itself comes last. A file reached twice (two
/// parents that share `base.toml`) is applied once, where it first appears: a second copy
/// would undo what the layers between set.
pub fn load_chain(path: &Path) -> Result<Vec<Layer>, ConfigError> {
    let mut layers = Vec::new();
    let mut stack = Vec::new();
    let mut applied = Vec::new();
    visit(path, &mut stack, &mut applied, &mut layers)?;
    Ok(layers)
}

fn visit(
    path: &Path,
    stack: &mut Vec<PathBuf>,
    applied: &mut Vec<PathBuf>,
    out: &mut Vec<Layer>,
) -> Result<(), ConfigError> {
    let canonical = path.canonicalize().map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(start) = stack.iter().position(|p| *p == canonical) {
        let mut cycle = stack[start..].to_vec();
        cycle.push(canonical);
        return Err(ConfigError::ExtendsCycle { cycle });
    }
    if applied.contains(&canonical) {
        return Ok(());
    }
    let mut table = read_table(path)?;
    let parents = match table.remove("extends") {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                toml::Value::String(s) => Ok(s),
                _ => Err(ConfigError::ExtendsType {
                    path: path.to_path_buf(),
                }),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ConfigError::ExtendsType {
                path: path.to_path_buf(),
            });
        }
    };
    stack.push(canonical.clone());
    let dir = path.parent().unwrap_or(Path::new("."));
    for parent in parents {
        let parent_path = dir.join(&parent);
        if !parent_path.is_file() {
            return Err(ConfigError::ExtendsMissing {
                from: path.to_path_buf(),
                missing: parent_path,
            });
        }
        visit(&parent_path, stack, applied, out)?;
    }
    stack.pop();
    applied.push(canonical);
    out.push(Layer::file(path, table));
    Ok(())
}

/// `path` without `.` and `..` components, relative to the current directory when below it:
/// how origins are shown to the user.
pub fn display_path(path: &Path) -> PathBuf {
    let clean = absolute_clean(path);
    match std::env::current_dir() {
        Ok(cwd) => clean
            .strip_prefix(&cwd)
            .map(Path::to_path_buf)
            .unwrap_or(clean),
        Err(_) => clean,
    }
}

/// `path` made absolute, without `.` and `..` components (resolved lexically: a `..`
/// after a symbolic link climbs the link's folder, as shells do).
pub fn absolute_clean(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut clean = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    clean
}

pub fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: syntax_message(&text, &e),
        })
}

/// Where TOML parsing failed and why, without quoting the file (a file given as a profile
/// may be anything, a secret included): `line L, column C: message`.
pub fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count()
                + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_string(),
    }
}
