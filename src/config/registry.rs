//! The registry store: named, reusable components as TOML files under `registry/<dir>/`.
//! Each component family (backbones, data sets, critics, ...) owns a table of the `kind`s
//! it accepts, with how each is checked and built; a [`Catalog`], composed above every
//! component (`crate::catalog`), tells the store which tables serve which directory.

use std::path::{Path, PathBuf};

use figment::Figment;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::check::{self, Validate};
use super::layer::{Layer, load_chain};
use super::{ConfigError, merge};

/// Checks the component at a key path and returns its parameters in canonical form.
pub type Validator = fn(&Figment, &str) -> Result<serde_json::Value, ConfigError>;

/// The JSON Schema of a kind's parameters, generated from their type (none for a kind
/// without parameters of its own).
pub type Describer = fn() -> Option<schemars::Schema>;

/// How a kind's parameters are checked and described: one Rust type does both.
#[derive(Clone, Copy)]
pub struct Params {
    pub validate: Validator,
    pub describe: Describer,
}

/// The parameters of a kind that has none of its own.
pub const NO_PARAMS: Params = Params {
    validate: no_params,
    describe: no_schema,
};

fn no_schema() -> Option<schemars::Schema> {
    None
}

/// The parameters of type `T`: checked by extracting a `T` (ranges and unknown keys),
/// described by its JSON Schema.
pub const fn typed<T>() -> Params
where
    T: DeserializeOwned + Serialize + Validate + schemars::JsonSchema,
{
    Params {
        validate: extract::<T>,
        describe: describe::<T>,
    }
}

fn describe<T: schemars::JsonSchema>() -> Option<schemars::Schema> {
    Some(schemars::schema_for!(T))
}

/// One `kind` a component family accepts: how its parameters are checked, the version of
/// the code that makes its output (a data generator's; 0 for most kinds: experiment hashes
/// include it when non-zero) and what its family builds from it (`B`: a backbone
/// constructor, a data set opener, an adaptation method, or nothing).
pub struct Kind<B: 'static> {
    pub name: &'static str,
    pub params: Params,
    pub version: u32,
    /// The parameters that name files a run reads (a CSV data set's splits): experiment
    /// hashes include those files' content, so that data re-prepared in place gets new
    /// runs.
    pub reads: &'static [&'static str],
    pub build: B,
}

impl<B> Kind<B> {
    pub const fn new(name: &'static str, params: Params, build: B) -> Self {
        Kind {
            name,
            params,
            version: 0,
            reads: &[],
            build,
        }
    }

    /// A kind whose output changes with the `version` of the code that makes it.
    pub const fn versioned(name: &'static str, params: Params, version: u32, build: B) -> Self {
        Kind {
            name,
            params,
            version,
            reads: &[],
            build,
        }
    }

    /// A kind whose parameters `reads` name the files that a run reads.
    pub const fn reading(
        name: &'static str,
        params: Params,
        reads: &'static [&'static str],
        build: B,
    ) -> Self {
        Kind {
            name,
            params,
            version: 0,
            reads,
            build,
        }
    }
}

/// What resolving needs of a kind besides its name: how its parameters are checked, its
/// version and the parameters that name the files it reads.
#[derive(Clone, Copy)]
pub struct KindInfo {
    pub validate: Validator,
    pub version: u32,
    pub reads: &'static [&'static str],
}

/// A family's kinds as the store sees them, whatever they build.
pub trait KindTable: Sync {
    fn names(&self) -> Vec<&'static str>;
    /// What resolving needs of `kind`.
    fn find(&self, kind: &str) -> Option<KindInfo>;
    /// Each kind with the JSON Schema of its parameters.
    fn schemas(&self) -> Vec<(&'static str, Option<schemars::Schema>)>;
}

impl<B: Sync> KindTable for &'static [Kind<B>] {
    fn names(&self) -> Vec<&'static str> {
        self.iter().map(|k| k.name).collect()
    }

    fn find(&self, kind: &str) -> Option<KindInfo> {
        self.iter().find(|k| k.name == kind).map(|k| KindInfo {
            validate: k.params.validate,
            version: k.version,
            reads: k.reads,
        })
    }

    fn schemas(&self) -> Vec<(&'static str, Option<schemars::Schema>)> {
        self.iter()
            .map(|k| (k.name, (k.params.describe)()))
            .collect()
    }
}

/// Finds `kind` in a family's table.
pub fn find<B>(table: &'static [Kind<B>], kind: &str) -> Option<&'static Kind<B>> {
    table.iter().find(|k| k.name == kind)
}

/// A validator for kinds without parameters of their own.
fn no_params(_: &Figment, _: &str) -> Result<serde_json::Value, ConfigError> {
    Ok(serde_json::Value::Null)
}

/// The keys every registry entry carries besides its parameters.
pub const ENTRY_KEYS: [&str; 3] = ["use", "kind", "description"];

/// Extracts the parameters at `path` as `T` (checking ranges and unknown keys), its paths
/// resolved against the files that wrote them.
fn extract<T>(figment: &Figment, path: &str) -> Result<serde_json::Value, ConfigError>
where
    T: DeserializeOwned + Serialize + Validate,
{
    let mut params: T = check::extract(figment, path, &|key| {
        ENTRY_KEYS.iter().any(|k| check::join(path, k) == key)
    })?;
    for (key, value) in params.paths_mut() {
        *value = super::paths::resolve(figment, &check::join(path, key), value);
    }
    Ok(serde_json::to_value(params).expect("configuration types serialize to JSON"))
}

/// A registry directory: what it holds and the kinds it accepts.
pub struct Directory {
    pub name: &'static str,
    pub about: &'static str,
    pub kinds: &'static dyn KindTable,
}

/// What the component families contribute to resolving an experiment: the registry
/// directories with their kinds.
pub struct Catalog {
    pub directories: &'static [Directory],
}

impl Catalog {
    pub fn directory(&self, name: &str) -> &'static Directory {
        self.directories
            .iter()
            .find(|d| d.name == name)
            .expect("slots name registry directories that exist")
    }
}

/// A registry on disk, read with the kinds of a catalog.
#[derive(Clone)]
pub struct Registry {
    pub root: PathBuf,
    pub catalog: &'static Catalog,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("root", &self.root)
            .finish()
    }
}

/// One entry of a registry directory, resolved.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: String,
    pub description: String,
    pub path: PathBuf,
    /// The parameters in canonical form (see [`Component::params`](crate::config::Component)).
    pub params: serde_json::Value,
}

/// The names of the `.toml` files in `dir` without their extension, sorted (none when `dir`
/// cannot be read).
pub fn toml_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

impl Registry {
    /// The `registry/` directory nearest above `config` (a file or directory), else the
    /// one in the current directory.
    pub fn locate(config: &Path, catalog: &'static Catalog) -> Result<Self, ConfigError> {
        let start = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
        start
            .ancestors()
            .map(|dir| dir.join("registry"))
            .chain([PathBuf::from("registry")])
            .find(|candidate| candidate.is_dir())
            .map(|root| Registry { root, catalog })
            .ok_or_else(|| ConfigError::NoRegistry {
                from: config.to_path_buf(),
            })
    }

    /// Entry names of a directory, sorted.
    pub fn names(&self, dir: &str) -> Vec<String> {
        toml_names(&self.root.join(dir))
    }

    /// The path of entry `name` in `dir`, if there is one.
    pub fn path(&self, dir: &str, name: &str) -> Option<PathBuf> {
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let path = self.root.join(dir).join(format!("{name}.toml"));
        (plain && path.is_file()).then_some(path)
    }

    /// The error for an entry `name` that `dir` lacks, set at `key` in `origin`: it names
    /// the folder searched and the nearest entry.
    pub fn unknown(&self, origin: String, key: &str, dir: &str, name: &str) -> ConfigError {
        let available = self.names(dir);
        let nearest = super::suggest::nearest(name, available.iter().map(String::as_str));
        ConfigError::UnknownEntry {
            origin,
            key: key.into(),
            folder: crate::config::layer::display_path(&self.root.join(dir)),
            name: name.into(),
            choices: format!(
                "{}; available: {}",
                nearest
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default(),
                available.join(", ")
            ),
        }
    }

    /// The layers of entry `name` (its `extends` chain, then itself).
    pub fn layers(&self, dir: &str, name: &str) -> Option<Result<Vec<Layer>, ConfigError>> {
        self.path(dir, name).map(|path| load_chain(&path))
    }

    /// Resolves one entry on its own: its layers merged, its kind known, its parameters valid.
    pub fn entry(&self, dir: &str, name: &str) -> Result<Entry, ConfigError> {
        let layers = self
            .layers(dir, name)
            .ok_or_else(|| self.unknown("registry".into(), dir, dir, name))??;
        let path = layers
            .last()
            .map(|l| PathBuf::from(l.metadata.name.as_ref()))
            .unwrap_or_default();
        let figment = merge(layers.into_iter().map(|l| l.nested_under("entry")));
        let Validated { kind, params, .. } =
            validate_component(&figment, "entry", self.catalog.directory(dir))?;
        let description: String = figment
            .extract_inner("entry.description")
            .unwrap_or_default();
        Ok(Entry {
            name: name.into(),
            kind,
            description,
            path,
            params,
        })
    }
}

/// A component checked: its kind, its parameters in canonical form and what else
/// resolving needs of its kind.
pub struct Validated {
    pub kind: String,
    pub params: serde_json::Value,
    pub info: KindInfo,
}

/// Checks that the component at `path` has a `kind` known to `dir` and valid parameters.
pub fn validate_component(
    figment: &Figment,
    path: &str,
    dir: &Directory,
) -> Result<Validated, ConfigError> {
    let kind_key = check::join(path, "kind");
    let known = || dir.kinds.names().iter().map(|k| k.to_string()).collect();
    if figment.find_value(&kind_key).is_err() {
        return Err(ConfigError::NoKind {
            entry: figment
                .extract_inner::<String>(&check::join(path, "use"))
                .unwrap_or_else(|_| path.to_string()),
            dir: dir.name.into(),
            known: known(),
        });
    }
    let kind: String = figment
        .extract_inner(&kind_key)
        .map_err(|e| check::from_figment(figment, &kind_key, e))?;
    let info = dir
        .kinds
        .find(&kind)
        .ok_or_else(|| ConfigError::UnknownKind {
            origin: check::origin(figment, &kind_key),
            key: kind_key.clone(),
            dir: dir.name.into(),
            kind: kind.clone(),
            known: known(),
        })?;
    let params = (info.validate)(figment, path)?;
    Ok(Validated { kind, params, info })
}
