//! The one place that composes the component families for the command line: which
//! registry directory holds which family's kinds, and the adaptation methods. Each family
//! owns its table (`models::BACKBONES`, `data::DATASETS`, `adapt::METHODS`, ...); adding a
//! kind is a line in its family's table, not here.

use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::config::registry::{Catalog, Directory, Registry};

pub static CATALOG: Catalog = Catalog {
    directories: DIRECTORIES,
};

const DIRECTORIES: &[Directory] = &[
    Directory {
        name: "backbones",
        about: "multi-task model architectures",
        kinds: &crate::models::BACKBONES,
    },
    Directory {
        name: "embeddings",
        about: "input layers over the categorical and numerical fields",
        kinds: &crate::nn::embedding::EMBEDDINGS,
    },
    Directory {
        name: "datasets",
        about: "data sets: files on disk or synthetic domains",
        kinds: &crate::data::DATASETS,
    },
    Directory {
        name: "schemas",
        about: "column layouts that data sets extend",
        kinds: &crate::data::SCHEMAS,
    },
    Directory {
        name: "methods",
        about: "adaptation methods and their hyperparameters",
        kinds: &crate::adapt::METHODS,
    },
    Directory {
        name: "critics",
        about: "domain critics and their optimiser",
        kinds: &crate::adapt::critic::CRITICS,
    },
    Directory {
        name: "losses",
        about: "loss-weight presets",
        kinds: &crate::adapt::weights::WEIGHTS,
    },
];

/// The registry at `root`, read with every family's kinds.
pub fn registry(root: impl Into<PathBuf>) -> Registry {
    Registry {
        root: root.into(),
        catalog: &CATALOG,
    }
}

/// The `registry/` directory nearest above `near`, else `./registry`.
pub fn locate(near: &Path) -> Result<Registry, ConfigError> {
    Registry::locate(near, &CATALOG)
}
