//! Adaptation of the target model: critics and loss weights.

pub mod critic;
pub mod weights;
