//! The kinds of `registry/datasets` entries: files on disk, or the synthetic generator.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::synthetic::{self, SyntheticConfig};
use super::{DataError, Schema, Table, cache};
use crate::config::check::{Invalid, Validate};
use crate::config::registry::{Kind, find, typed};

/// Opens the splits of a data set from its canonical parameters.
pub type Opener = fn(&serde_json::Value) -> Result<Splits, DataError>;

/// The kinds of `registry/datasets` entries; a synthetic domain's version is its
/// generator's, so that experiment hashes change with the rows.
pub const DATASETS: &[Kind<Opener>] = &[
    Kind::reading("csv", typed::<CsvConfig>(), &["train", "test"], open_csv),
    Kind::versioned(
        "synthetic",
        typed::<SyntheticConfig>(),
        synthetic::GENERATOR_VERSION,
        open_synthetic,
    ),
];

/// `registry/schemas` entries hold a schema that dataset entries `extends`.
pub const SCHEMAS: &[Kind<()>] = &[Kind::new("schema", typed::<SchemaEntry>(), ())];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SchemaEntry {
    pub schema: Schema,
}

impl Validate for SchemaEntry {
    fn validate(&self) -> Result<(), Invalid> {
        self.schema.validate_as_field()
    }
}

/// A data set in the processed CSV layout: one file per split, with a header.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CsvConfig {
    pub schema: Schema,
    /// Training split: as written, relative to the entry's file (or `~/`, or absolute);
    /// absolute once resolved.
    pub train: PathBuf,
    /// The test split's CSV file, relative to the entry's file.
    pub test: PathBuf,
    /// Each file's rows are in time order, the earliest first (MovieLens as prepared):
    /// validation then defaults to the latest training rows (`data.valid`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ordered: bool,
}

impl Validate for CsvConfig {
    fn validate(&self) -> Result<(), Invalid> {
        self.schema.validate_as_field()
    }

    fn paths_mut(&mut self) -> Vec<(&'static str, &mut PathBuf)> {
        vec![("train", &mut self.train), ("test", &mut self.test)]
    }
}

/// The train and test tables of a data set, and its schema.
#[derive(Debug)]
pub struct Splits {
    pub schema: Schema,
    pub train: Table,
    pub test: Table,
}

fn open_csv(params: &serde_json::Value) -> Result<Splits, DataError> {
    let c: CsvConfig = serde_json::from_value(params.clone()).expect("validated as csv");
    Ok(Splits {
        train: cache::load_csv(&c.train, &c.schema)?.table,
        test: cache::load_csv(&c.test, &c.schema)?.table,
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

/// The schema in a data set's (or a schema entry's) canonical parameters: the one place
/// that reads it.
pub fn schema(params: &serde_json::Value) -> Result<Schema, DataError> {
    serde_json::from_value(params["schema"].clone())
        .map_err(|e| DataError::Invalid(format!("the data set's schema: {e}")))
}

/// Opens the splits of the data set entry `name` (of `kind`, with `params`), building
/// caches on first use. A missing file is reported with the entry's name and description
/// (which says where its files come from).
pub fn open(
    name: &str,
    description: &str,
    kind: &str,
    params: &serde_json::Value,
) -> Result<Splits, DataError> {
    let opener = find(DATASETS, kind)
        .ok_or_else(|| DataError::Invalid(format!("`{kind}` is not a data set kind")))?
        .build;
    opener(params).map_err(|e| match e {
        DataError::Missing { path, .. } => DataError::Missing {
            path,
            hint: format!(
                ", named by data set entry `{name}` ({description}); a relative path in a \
                 dataset entry is relative to the entry's file"
            ),
        },
        other => other,
    })
}
