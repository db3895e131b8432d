//! Building blocks shared by the backbones.

pub mod embedding;
