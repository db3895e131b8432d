//! The kinds of `registry/datasets` entries: files on disk, or the synthetic generator.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{DataError, Schema, Table, cache, synthetic};
use crate::config::check::{Invalid, Validate, ensure};
use crate::registry::{KindEntry, typed};

pub const DATASETS: &[KindEntry] = &[
    KindEntry::dataset("csv", typed::<CsvConfig>, open_csv, 0),
    KindEntry::dataset(
        "synthetic",
        typed::<SyntheticConfig>,
        open_synthetic,
        synthetic::GENERATOR_VERSION,
    ),
];

/// `registry/schemas` entries hold a schema that dataset entries `extends`.
pub const SCHEMAS: &[KindEntry] = &[KindEntry::new("schema", typed::<SchemaEntry>)];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SchemaEntry {
    pub schema: Schema,
}

impl Validate for SchemaEntry {
    fn validate(&self) -> Result<(), Invalid> {
        self.schema
            .validate()
            .map_err(|e| Invalid::new(&format!("schema.{}", e.key), e.message))
    }
}

/// A data set in the processed CSV layout: one file per split, with a header.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CsvConfig {
    pub schema: Schema,
    /// Training split, relative to the current directory unless absolute.
    pub train: PathBuf,
    pub test: PathBuf,
}

impl Validate for CsvConfig {
    fn validate(&self) -> Result<(), Invalid> {
        SchemaEntry {
            schema: self.schema.clone(),
        }
        .validate()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Seconds to build: for tests.
    Smoke,
    /// The default: minutes of training on a laptop CPU.
    Cpu,
    /// Of the order of the real data set.
    Paper,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A large domain to pretrain on.
    Source,
    /// A domain whose training rows are made scarce.
    Target,
}

/// One domain of the synthetic multi-domain generator, built on first use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SyntheticConfig {
    pub schema: Schema,
    /// The domain's name: it seeds the domain's covariate and concept shift.
    pub domain: String,
    pub role: Role,
    pub profile: Profile,
    /// Seed of the generator's world (shared label function and all domains).
    pub seed: u64,
    /// Where generated domains are cached.
    pub dir: PathBuf,
}

impl Validate for SyntheticConfig {
    fn validate(&self) -> Result<(), Invalid> {
        SchemaEntry {
            schema: self.schema.clone(),
        }
        .validate()?;
        ensure(
            !self.domain.is_empty()
                && self
                    .domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "domain",
            "must be a plain name such as nl",
        )
    }
}

/// The train and test tables of a data set, and its schema.
#[derive(Debug)]
pub struct Splits {
    pub schema: Schema,
    pub train: Table,
    pub test: Table,
}

/// Opens the splits of a data set from its canonical parameters.
pub type Opener = fn(&serde_json::Value) -> Result<Splits, DataError>;

fn open_csv(params: &serde_json::Value) -> Result<Splits, DataError> {
    let c: CsvConfig = serde_json::from_value(params.clone()).expect("validated as csv");
    let hint = " (the processed AliExpress layout; see `daa data prepare-aliexpress`)";
    let load = |path: &std::path::Path| {
        cache::load_csv(path, &c.schema).map_err(|e| match e {
            DataError::Missing { path, .. } => DataError::Missing {
                path,
                hint: hint.into(),
            },
            other => other,
        })
    };
    Ok(Splits {
        train: load(&c.train)?.table,
        test: load(&c.test)?.table,
        schema: c.schema,
    })
}

fn open_synthetic(params: &serde_json::Value) -> Result<Splits, DataError> {
    let c: SyntheticConfig =
        serde_json::from_value(params.clone()).expect("validated as synthetic");
    let (train, test) = synthetic::ensure(&c)?;
    Ok(Splits {
        schema: c.schema,
        train,
        test,
    })
}

/// The opener of a data set `kind` and the version of the code that makes its rows.
fn dataset_kind(kind: &str) -> Option<(Opener, u32)> {
    match crate::registry::kind_entry("datasets", kind).map(|k| &k.build) {
        Some(crate::registry::Build::Dataset(opener, version)) => Some((*opener, *version)),
        _ => None,
    }
}

/// The version of the code that makes the rows of a data set of `kind` (0: read from files).
pub fn rows_version(kind: &str) -> u32 {
    dataset_kind(kind).map_or(0, |(_, version)| version)
}

/// Opens the splits of a data set of `kind` with `params`, building caches on first use.
pub fn open(kind: &str, params: &serde_json::Value) -> Result<Splits, DataError> {
    let (opener, _) = dataset_kind(kind)
        .ok_or_else(|| DataError::Invalid(format!("`{kind}` is not a data set kind")))?;
    opener(params)
}
