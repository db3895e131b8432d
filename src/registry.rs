//! The registry: named, reusable components as TOML files under `registry/<dir>/`, one
//! table per directory mapping each entry's `kind` to its Rust configuration type.

use std::path::{Path, PathBuf};

use figment::Figment;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::check::{self, Validate};
use crate::config::layer::{Layer, load_chain};
use crate::config::{ConfigError, merge};

/// Checks the component at a key path and returns its parameters in canonical form.
pub type Validator = fn(&Figment, &str) -> Result<serde_json::Value, ConfigError>;

/// What a component of a kind is turned into.
pub enum Build {
    /// Parameters read directly by their user (critics, loss weights, schemas).
    Params,
    /// A backbone constructor.
    Backbone(crate::models::Builder),
    /// A data set opener, and the version of the code that makes its rows (a generator's
    /// version; 0 for rows read from files): experiment hashes include it.
    Dataset(crate::data::dataset::Opener, u32),
}

/// One `kind` a registry directory accepts: how its parameters are checked and built.
pub struct KindEntry {
    pub kind: &'static str,
    pub validate: Validator,
    pub build: Build,
}

impl KindEntry {
    pub const fn new(kind: &'static str, validate: Validator) -> Self {
        KindEntry {
            kind,
            validate,
            build: Build::Params,
        }
    }

    pub const fn backbone(
        kind: &'static str,
        validate: Validator,
        build: crate::models::Builder,
    ) -> Self {
        KindEntry {
            kind,
            validate,
            build: Build::Backbone(build),
        }
    }

    pub const fn dataset(
        kind: &'static str,
        validate: Validator,
        open: crate::data::dataset::Opener,
        rows_version: u32,
    ) -> Self {
        KindEntry {
            kind,
            validate,
            build: Build::Dataset(open, rows_version),
        }
    }
}

/// The entry of `kind` in registry directory `dir`.
pub fn kind_entry(dir: &str, kind: &str) -> Option<&'static KindEntry> {
    directory(dir).kinds.iter().find(|k| k.kind == kind)
}

/// The keys every registry entry carries besides its parameters.
pub const ENTRY_KEYS: [&str; 3] = ["use", "kind", "description"];

/// Extracts the parameters at `path` as `T` (checking ranges and unknown keys).
pub fn typed<T>(figment: &Figment, path: &str) -> Result<serde_json::Value, ConfigError>
where
    T: DeserializeOwned + Serialize + Validate,
{
    let params: T = check::extract(figment, path, &|key| {
        ENTRY_KEYS.iter().any(|k| check::join(path, k) == key)
    })?;
    Ok(serde_json::to_value(params).expect("configuration types serialize to JSON"))
}

/// A registry directory: what it holds and the kinds it accepts.
pub struct Directory {
    pub name: &'static str,
    pub about: &'static str,
    pub kinds: &'static [KindEntry],
}

pub const DIRECTORIES: &[Directory] = &[
    Directory {
        name: "backbones",
        about: "multi-task model architectures",
        kinds: crate::models::BACKBONES,
    },
    Directory {
        name: "embeddings",
        about: "input layers over the categorical and numerical fields",
        kinds: crate::nn::embedding::EMBEDDINGS,
    },
    Directory {
        name: "datasets",
        about: "data sets: files on disk or synthetic domains",
        kinds: crate::data::DATASETS,
    },
    Directory {
        name: "schemas",
        about: "column layouts that data sets extend",
        kinds: crate::data::SCHEMAS,
    },
    Directory {
        name: "critics",
        about: "domain critics and their optimiser",
        kinds: crate::adapt::critic::CRITICS,
    },
    Directory {
        name: "losses",
        about: "loss-weight presets",
        kinds: crate::adapt::weights::WEIGHTS,
    },
];

pub fn directory(name: &str) -> &'static Directory {
    DIRECTORIES
        .iter()
        .find(|d| d.name == name)
        .expect("slots name registry directories that exist")
}

/// A registry on disk.
#[derive(Debug, Clone)]
pub struct Registry {
    pub root: PathBuf,
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
    pub fn locate(config: &Path) -> Result<Self, ConfigError> {
        let start = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
        start
            .ancestors()
            .map(|dir| dir.join("registry"))
            .chain([PathBuf::from("registry")])
            .find(|candidate| candidate.is_dir())
            .map(|root| Registry { root })
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

    /// The layers of entry `name` (its `extends` chain, then itself).
    pub fn layers(&self, dir: &str, name: &str) -> Option<Result<Vec<Layer>, ConfigError>> {
        self.path(dir, name).map(|path| load_chain(&path))
    }

    /// Resolves one entry on its own: its layers merged, its kind known, its parameters valid.
    pub fn entry(&self, dir: &str, name: &str) -> Result<Entry, ConfigError> {
        let unknown = || ConfigError::UnknownEntry {
            origin: "registry".into(),
            key: dir.into(),
            dir: dir.into(),
            name: name.into(),
            available: self.names(dir),
        };
        let layers = self.layers(dir, name).ok_or_else(unknown)??;
        let path = layers
            .last()
            .map(|l| PathBuf::from(l.metadata.name.as_ref()))
            .unwrap_or_default();
        let figment = merge(layers.into_iter().map(|l| l.nested_under("entry")));
        let (kind, params) = validate_component(&figment, "entry", directory(dir))?;
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

/// Checks that the component at `path` has a `kind` known to `dir` and valid parameters;
/// returns the kind and the parameters in canonical form.
pub fn validate_component(
    figment: &Figment,
    path: &str,
    dir: &Directory,
) -> Result<(String, serde_json::Value), ConfigError> {
    let kind_key = check::join(path, "kind");
    let kind: String = figment
        .extract_inner(&kind_key)
        .map_err(|e| check::from_figment(figment, &kind_key, e))?;
    let entry =
        dir.kinds
            .iter()
            .find(|k| k.kind == kind)
            .ok_or_else(|| ConfigError::UnknownKind {
                origin: check::origin(figment, &kind_key),
                key: kind_key.clone(),
                dir: dir.name.into(),
                kind: kind.clone(),
                known: dir.kinds.iter().map(|k| k.kind.to_string()).collect(),
            })?;
    let params = (entry.validate)(figment, path)?;
    Ok((kind, params))
}
