//! The multi-task backbones. Each file holds one backbone; [`BACKBONES`] maps the `kind`
//! of a `registry/backbones` entry to its configuration type.

pub mod aitm;
pub mod metaheac;
pub mod mmoe;
pub mod omoe;
pub mod ple;
pub mod sharedbottom;
pub mod singletask;

use crate::config::check::{Invalid, ensure};
use crate::registry::{KindEntry, typed};

pub const BACKBONES: &[KindEntry] = &[
    KindEntry::new("singletask", typed::<singletask::Config>),
    KindEntry::new("sharedbottom", typed::<sharedbottom::Config>),
    KindEntry::new("omoe", typed::<omoe::Config>),
    KindEntry::new("mmoe", typed::<mmoe::Config>),
    KindEntry::new("ple", typed::<ple::Config>),
    KindEntry::new("aitm", typed::<aitm::Config>),
    KindEntry::new("metaheac", typed::<metaheac::Config>),
];

pub fn check_dims(dims: &[usize], key: &str) -> Result<(), Invalid> {
    ensure(
        !dims.is_empty() && dims.iter().all(|&d| d > 0),
        key,
        "must be a non-empty list of positive sizes",
    )
}

pub fn check_tower(dims: &[usize], dropout: f64) -> Result<(), Invalid> {
    check_dims(dims, "tower_dims")?;
    ensure(
        (0.0..1.0).contains(&dropout),
        "dropout",
        "must be in [0, 1)",
    )
}

pub fn check_count(n: usize, key: &str) -> Result<(), Invalid> {
    ensure(n > 0, key, "must be positive")
}
