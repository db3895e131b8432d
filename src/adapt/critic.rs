//! The domain critics of DAA: MLPs scored with WGAN-GP.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate, ensure};
use crate::config::schema::Optimizer;
use crate::models::check_dims;
use crate::registry::{KindEntry, typed};

pub const CRITICS: &[KindEntry] = &[KindEntry::new("wgan_gp", typed::<Config>)];

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// A linear score: a true Wasserstein critic.
    Linear,
    /// Released-code behaviour: LogSoftmax over one output, identically zero.
    LogSoftmax,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PenaltyGradient {
    /// The input gradient of the MLP in closed form (first-order backprop only).
    ClosedForm,
    /// candle's double backprop; needs CANDLE_GRAD_DO_NOT_DETACH=1.
    DoubleBackprop,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    pub hidden_dims: Vec<usize>,
    pub leaky_slope: f64,
    /// Standard deviation of the N(0, std) weight initialisation (biases start at 0).
    pub init_std: f64,
    pub head: Head,
    /// Weight of the gradient penalty.
    pub penalty_weight: f64,
    pub penalty_gradient: PenaltyGradient,
    /// Critic steps per target-model step.
    pub n_critic: usize,
    pub optimizer: Optimizer,
    pub lr: f64,
    /// The critics' weight decay; absent means the target model's `optim.weight_decay`.
    pub weight_decay: Option<f64>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        check_dims(&self.hidden_dims, "hidden_dims")?;
        ensure(
            self.leaky_slope >= 0.0 && self.leaky_slope < 1.0,
            "leaky_slope",
            "must be in [0, 1)",
        )?;
        ensure(self.init_std > 0.0, "init_std", "must be positive")?;
        ensure(
            self.penalty_weight >= 0.0,
            "penalty_weight",
            "must be zero or positive",
        )?;
        ensure(self.n_critic > 0, "n_critic", "must be positive")?;
        ensure(self.lr > 0.0, "lr", "must be positive")?;
        ensure(
            self.weight_decay.is_none_or(|w| w >= 0.0),
            "weight_decay",
            "must be zero or positive",
        )
    }
}
