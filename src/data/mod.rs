//! Data sets: their schemas, readers, caches, splits and the synthetic default.

pub mod dataset;
pub mod schema;

pub use dataset::{DATASETS, SCHEMAS};
pub use schema::Schema;
