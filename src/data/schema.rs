//! The columns of a tabular CTR data set: categorical fields with their cardinalities,
//! numerical columns and label columns in task order. Nothing assumes AliExpress's shape.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate, ensure};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Oov {
    /// A category at or above its field's cardinality is an error naming file, line, column.
    Error,
    /// Such a category is mapped to the field's last row.
    Clamp,
}

/// Column names either listed or generated as `prefix1..prefixN`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Columns {
    /// The columns' names, in order.
    pub names: Option<Vec<String>>,
    /// Instead of `names`: columns `prefix1..prefixN`.
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Categorical {
    #[serde(flatten)]
    pub columns: Columns,
    /// Rows of each field's embedding; a field's values lie in 0..cardinality.
    pub cardinalities: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Numerical {
    #[serde(flatten)]
    pub columns: Columns,
    /// Number of columns when they are named by `prefix`.
    pub count: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Schema {
    /// An optional leading id column (kept for reference, not a feature).
    pub id: Option<String>,
    pub categorical: Categorical,
    pub numerical: Numerical,
    /// Label columns in task order.
    pub labels: Vec<String>,
    /// Each label may be 1 only where the previous label is 1 (a purchase implies a click).
    pub cascade: bool,
    pub oov: Oov,
}

impl Columns {
    fn resolve(&self, count: usize) -> Vec<String> {
        match (&self.names, &self.prefix) {
            (Some(names), _) => names.clone(),
            (None, Some(prefix)) => (1..=count).map(|i| format!("{prefix}{i}")).collect(),
            (None, None) => Vec::new(),
        }
    }

    fn check(&self, key: &str, count: Option<usize>) -> Result<(), Invalid> {
        ensure(
            self.names.is_some() != self.prefix.is_some(),
            key,
            "give either `names` (a list) or `prefix` (columns prefix1..prefixN), not both",
        )?;
        if let Some(names) = &self.names {
            ensure(
                count.is_none_or(|n| n == names.len()),
                key,
                "`names` and the count disagree",
            )?;
        }
        Ok(())
    }
}

impl Schema {
    pub fn categorical_names(&self) -> Vec<String> {
        self.categorical
            .columns
            .resolve(self.categorical.cardinalities.len())
    }

    pub fn numerical_names(&self) -> Vec<String> {
        let n = self
            .numerical
            .count
            .or(self.numerical.columns.names.as_ref().map(Vec::len));
        self.numerical.columns.resolve(n.unwrap_or(0))
    }

    /// The header a CSV of this schema has, in order.
    /// The same columns without the labels: the layout of files to predict on.
    pub fn without_labels(&self) -> Schema {
        Schema {
            labels: Vec::new(),
            ..self.clone()
        }
    }

    pub fn header(&self) -> Vec<String> {
        let mut header: Vec<String> = self.id.iter().cloned().collect();
        header.extend(self.categorical_names());
        header.extend(self.numerical_names());
        header.extend(self.labels.iter().cloned());
        header
    }
}

impl Schema {
    /// Short hash of the schema (its canonical JSON), stored in every table built with it.
    pub fn hash(&self) -> String {
        crate::digest::sha256_short(serde_json::to_vec(self).expect("schemas serialize"))
    }

    /// [`Validate::validate`] with the keys under `schema.`, for tables that hold a schema.
    pub fn validate_as_field(&self) -> Result<(), Invalid> {
        self.validate()
            .map_err(|e| Invalid::new(&format!("schema.{}", e.key), e.message))
    }
}

impl Validate for Schema {
    fn validate(&self) -> Result<(), Invalid> {
        let cat = &self.categorical;
        cat.columns
            .check("categorical", Some(cat.cardinalities.len()))?;
        ensure(
            cat.cardinalities.iter().all(|&c| c > 0),
            "categorical.cardinalities",
            "must all be positive",
        )?;
        ensure(
            cat.cardinalities.iter().map(|&c| u64::from(c)).sum::<u64>() <= u64::from(u32::MAX),
            "categorical.cardinalities",
            "the total embedding rows must fit in u32",
        )?;
        let num = &self.numerical;
        num.columns.check("numerical", num.count)?;
        ensure(
            num.columns.prefix.is_none() || num.count.is_some(),
            "numerical.count",
            "is required with `prefix`",
        )?;
        ensure(
            !self.labels.is_empty(),
            "labels",
            "must name at least one label column",
        )?;
        let header = self.header();
        let mut sorted = header.clone();
        sorted.sort();
        sorted.dedup();
        ensure(
            sorted.len() == header.len(),
            "",
            "column names must be distinct",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliexpress_like() -> Schema {
        Schema {
            id: Some("search_id".into()),
            categorical: Categorical {
                columns: Columns {
                    names: None,
                    prefix: Some("categorical_".into()),
                },
                cardinalities: vec![11, 4],
            },
            numerical: Numerical {
                columns: Columns {
                    names: None,
                    prefix: Some("numerical_".into()),
                },
                count: Some(3),
            },
            labels: vec!["click".into(), "conversion".into()],
            cascade: true,
            oov: Oov::Error,
        }
    }

    #[test]
    fn header_lists_columns_in_file_order() {
        let header = aliexpress_like().header();
        assert_eq!(
            header,
            [
                "search_id",
                "categorical_1",
                "categorical_2",
                "numerical_1",
                "numerical_2",
                "numerical_3",
                "click",
                "conversion"
            ]
        );
    }

    #[test]
    fn names_and_prefix_are_exclusive() {
        let mut s = aliexpress_like();
        s.categorical.columns.names = Some(vec!["a".into(), "b".into()]);
        assert_eq!(s.validate().unwrap_err().key, "categorical");
    }

    #[test]
    fn duplicate_columns_are_rejected() {
        let mut s = aliexpress_like();
        s.labels = vec!["click".into(), "click".into()];
        assert!(s.validate().is_err());
    }
}
