//! Loss-weight presets: the supervised task weights and the adversarial weight.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate, ensure};
use crate::config::registry::{Kind, typed};

pub const WEIGHTS: &[Kind<()>] = &[Kind::new("weights", typed::<Config>(), ())];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Config {
    /// One weight per task, in the dataset's label order (w_c, w_ac for AliExpress).
    pub tasks: Vec<f64>,
    /// Weight of the adversarial terms (w_e).
    pub adversarial: f64,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        ensure(
            !self.tasks.is_empty(),
            "tasks",
            "must list one weight per task",
        )?;
        ensure(
            self.tasks.iter().all(|w| *w >= 0.0 && w.is_finite()),
            "tasks",
            "weights must be zero or positive",
        )?;
        ensure(
            self.adversarial >= 0.0 && self.adversarial.is_finite(),
            "adversarial",
            "must be zero or positive",
        )
    }
}
