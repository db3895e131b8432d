//! daa: cross-domain CTR/CVR recommendation via Dual Adversarial Adaptation (Su et al.,
//! ACM TOIS 2024), on candle.

pub mod adapt;
pub mod alignment;
pub mod alloc;
pub mod bench;
pub mod catalog;
pub mod chart;
pub mod config;
pub mod data;
pub mod device;
pub mod digest;
pub mod lock;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod reproduce;
pub mod rng;
pub mod train;
pub mod whole_file;
