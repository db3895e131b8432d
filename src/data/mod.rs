//! Data sets: their schemas, readers, caches, splits and the synthetic default.

#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod batch;
pub mod cache;
pub mod csv;
mod csv_lines;
pub mod dataset;
mod decimal;
mod error;
pub mod prepare;
pub mod schema;
pub mod split;
pub mod synthetic;
pub mod table;
mod vecmath;

pub use dataset::{DATASETS, SCHEMAS};
pub use error::DataError;
pub use schema::Schema;
pub use table::Table;
