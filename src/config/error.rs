use std::path::PathBuf;

/// Everything that can be wrong with an experiment or registry file. Each variant names
/// where the problem is (file, key path, flag or variable) and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: `extends` must be an array of file paths, e.g. extends = [\"base.toml\"]")]
    ExtendsType { path: PathBuf },
    #[error(
        "{from}: extends {missing}, which does not exist (paths are relative to the declaring file)"
    )]
    ExtendsMissing { from: PathBuf, missing: PathBuf },
    #[error("`extends` cycle: {}", cycle.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" -> "))]
    ExtendsCycle { cycle: Vec<PathBuf> },
    #[error("{origin}: unknown key `{key}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownKey {
        origin: String,
        key: String,
        suggestion: Option<String>,
    },
    #[error("{origin}: key `{key}` has the wrong type: expected {expected}, found {found}")]
    WrongType {
        origin: String,
        key: String,
        expected: String,
        found: String,
    },
    #[error("{origin}: key `{key}`: {message}")]
    BadValue {
        origin: String,
        key: String,
        message: String,
    },
    #[error(
        "missing key `{key}` in the configuration resolved from {origin}: set it there or extend a file that does (configs/base.toml)"
    )]
    MissingKey { origin: String, key: String },
    #[error("{origin}: `{key}` names registry entry `{name}`, but {} has no {name}.toml{choices}", folder.display())]
    UnknownEntry {
        origin: String,
        key: String,
        /// The registry folder that was searched.
        folder: PathBuf,
        name: String,
        /// The nearest entry, if one is close, and the available ones.
        choices: String,
    },
    #[error("{origin}: `{key}` is `{kind}`, which is not a known kind for registry/{dir}/; known kinds: {}", known.join(", "))]
    UnknownKind {
        origin: String,
        key: String,
        dir: String,
        kind: String,
        known: Vec<String>,
    },
    #[error("registry/{dir}/{entry}.toml (or a file it extends) has no `kind`: add a line `kind = \"...\"` with one of: {}", known.join(", "))]
    NoKind {
        entry: String,
        dir: String,
        known: Vec<String>,
    },
    #[error("malformed override `{arg}`: {reason}")]
    MalformedOverride { arg: String, reason: String },
    #[error(
        "no registry directory found: looked for `registry/` above {from} and in the current directory; pass --registry DIR"
    )]
    NoRegistry { from: PathBuf },
}
