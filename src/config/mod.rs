//! Experiments as layered TOML: registry defaults < `extends` chain < the file <
//! `DAA_*` environment < `--set`. See docs/src/configuration.md.

pub mod check;
mod error;
mod hash;
pub mod layer;
mod overrides;
pub mod paths;
pub mod reference;
pub mod registry;
pub mod schema;
mod show;
mod suggest;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::value::Value;

pub use error::ConfigError;
pub use hash::{NUMERICS_VERSION, digest};
pub use layer::Layer;
pub use overrides::{ENV_PREFIX, LOG_VARIABLE, Overrides, Set, parse_set};
pub use schema::{Component, Experiment};

pub use registry::Registry;
use registry::validate_component;

/// Key paths that name a registry entry, and the registry directory each one names.
/// `backbone = "ple"` is short for `backbone = { use = "ple" }`.
pub const SLOTS: [(&str, &str); 7] = [
    ("data.source", "datasets"),
    ("data.target", "datasets"),
    ("model.backbone", "backbones"),
    ("model.embedding", "embeddings"),
    ("adapt.method", "methods"),
    ("adapt.critic", "critics"),
    ("adapt.weights", "losses"),
];

/// An experiment resolved from its file, its registry entries and the overrides.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub path: PathBuf,
    pub experiment: Experiment,
    /// The merged values with the origin of each, for `config show --origin`.
    pub figment: Figment,
    /// Names the run: a hash of the canonical resolved experiment.
    pub hash: String,
}

/// Merges layers in order; later layers win, tables merge deeply, arrays are replaced.
pub fn merge(layers: impl IntoIterator<Item = Layer>) -> Figment {
    layers.into_iter().fold(Figment::new(), Figment::merge)
}

pub fn resolve(
    path: &Path,
    overrides: &Overrides,
    registry: &Registry,
) -> Result<Resolved, ConfigError> {
    let mut upper = layer::load_chain(path)?;
    upper.extend(overrides.layers()?);
    upper
        .iter_mut()
        .for_each(|layer| expand_references(&mut layer.table));
    let probe = merge(upper.clone());

    let mut layers = Vec::new();
    for (slot, dir) in SLOTS {
        let key = format!("{slot}.use");
        let name: String = match probe.find_value(&key) {
            Ok(Value::String(_, name)) => name,
            Ok(other) => {
                return Err(ConfigError::WrongType {
                    origin: check::origin(&probe, &key),
                    key,
                    expected: format!("the name of a registry/{dir} entry"),
                    found: other.to_actual().to_string(),
                });
            }
            // The slot set to something that is neither a name nor a table.
            Err(_)
                if let Ok(other) = probe.find_value(slot)
                    && !matches!(other, Value::Dict(..)) =>
            {
                return Err(ConfigError::WrongType {
                    origin: check::origin(&probe, slot),
                    key: slot.to_string(),
                    expected: format!("the name of a registry/{dir} entry"),
                    found: other.to_actual().to_string(),
                });
            }
            Err(_) => {
                return Err(ConfigError::MissingKey {
                    origin: path.display().to_string(),
                    key: slot.to_string(),
                });
            }
        };
        let entry = registry
            .layers(dir, &name)
            .ok_or_else(|| registry.unknown(check::origin(&probe, &key), slot, dir, &name))??;
        layers.extend(entry.into_iter().map(|l| l.nested_under(slot)));
    }
    layers.extend(upper);
    let (figment, components) = loop {
        let figment = merge(layers.iter().cloned());
        let components = SLOTS
            .into_iter()
            .map(|(slot, dir)| validate_component(&figment, slot, registry.catalog.directory(dir)))
            .collect::<Result<Vec<_>, _>>();
        match components {
            // A profile applies to any data set: what the component's kind lacks (the
            // synthetic sizes, for a CSV data set) is left out.
            Err(ConfigError::UnknownKey { key, .. })
                if layer::drop_from_overlays(&mut layers, &key) => {}
            components => break (figment, components?),
        }
    };

    let in_slot = |key: &str| SLOTS.iter().any(|(slot, _)| key == *slot);
    let mut experiment: Experiment = check::extract(&figment, "", &in_slot)?;
    for (component, validated) in experiment.components_mut().into_iter().zip(components) {
        component.params = validated.params;
        component.version = validated.info.version;
        component.reads = validated.info.reads;
    }
    let registry_root = layer::absolute_clean(&registry.root);
    let project = registry_root.parent().unwrap_or(&registry_root);
    let hash = hash::experiment_hash(&experiment, project);
    Ok(Resolved {
        path: path.to_path_buf(),
        experiment,
        figment,
        hash,
    })
}

/// Rewrites `slot = "name"` as `slot = { use = "name" }` so that a registry entry's
/// defaults merge beneath it.
fn expand_references(table: &mut toml::Table) {
    for (slot, _) in SLOTS {
        let (parent, leaf) = slot.split_once('.').expect("slots are section.key");
        let Some(toml::Value::Table(section)) = table.get_mut(parent) else {
            continue;
        };
        if let Some(toml::Value::String(name)) = section.get(leaf) {
            let mut reference = toml::Table::new();
            reference.insert("use".into(), toml::Value::String(name.clone()));
            section.insert(leaf.into(), toml::Value::Table(reference));
        }
    }
}

impl Experiment {
    /// The validation rule in force: `data.valid`, else `latest` where the target data set
    /// declares its rows in time order (`ordered = true`), else `random`.
    pub fn validation(&self) -> schema::Validation {
        self.data
            .valid
            .unwrap_or_else(|| schema::Validation::default_for(&self.data.target.params))
    }

    /// The registry components in the order of [`SLOTS`].
    pub fn components(&self) -> [&Component; 7] {
        [
            &self.data.source,
            &self.data.target,
            &self.model.backbone,
            &self.model.embedding,
            &self.adapt.method,
            &self.adapt.critic,
            &self.adapt.weights,
        ]
    }

    /// The registry components in the order of [`SLOTS`], mutable.
    pub fn components_mut(&mut self) -> [&mut Component; 7] {
        [
            &mut self.data.source,
            &mut self.data.target,
            &mut self.model.backbone,
            &mut self.model.embedding,
            &mut self.adapt.method,
            &mut self.adapt.critic,
            &mut self.adapt.weights,
        ]
    }
}

pub use show::render;
