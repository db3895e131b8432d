//! Data sets: their schemas, readers, caches, splits and the synthetic default.

pub mod aliexpress;
pub mod batch;
pub mod cache;
pub mod csv;
pub mod dataset;
mod error;
pub mod movielens;
pub mod schema;
pub mod split;
pub mod synthetic;
pub mod table;
mod vecmath;

pub use dataset::{DATASETS, SCHEMAS};
pub use error::DataError;
pub use schema::Schema;
pub use table::Table;
