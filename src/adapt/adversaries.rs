//! The networks a method trains against the target encoder (DAA's critics, DANN's domain
//! classifier): their parameters, their optimiser, and their part of a checkpoint.

use std::collections::HashMap;

use candle_core::Tensor;
use candle_core::backprop::GradStore;

use super::critic::{Config as CriticConfig, Critic};
use super::{AdaptError, Setup};
use crate::nn::Params;
use crate::nn::optim::Adam;
use crate::nn::params::{prefixed, under};

pub struct Adversaries {
    params: Params,
    optimizer: Adam,
}

impl Adversaries {
    /// Critics named `critic1`, `critic2`, ... over features of the given widths, with
    /// their optimiser (the critics' weight decay, else the target model's).
    pub fn new(
        setup: &Setup<'_>,
        widths: &[usize],
        config: &CriticConfig,
    ) -> Result<(Self, Vec<Critic>), AdaptError> {
        let exp = setup.experiment;
        let mut params = Params::new(setup.device, exp.train.seed);
        let critics = widths
            .iter()
            .enumerate()
            .map(|(k, &width)| Critic::new(&mut params, &format!("critic{}", k + 1), width, config))
            .collect::<Result<Vec<_>, _>>()?;
        let decay = config.weight_decay.unwrap_or(exp.optim.weight_decay);
        let optimizer = Adam::new(params.trainable(), config.optimizer, config.lr, decay)
            .with_betas(config.betas);
        Ok((Adversaries { params, optimizer }, critics))
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<(), AdaptError> {
        Ok(self.optimizer.step(grads)?)
    }

    pub fn state(&self) -> Result<HashMap<String, Tensor>, AdaptError> {
        Ok(prefixed("adversaries.", self.params.state_dict()?)
            .chain(prefixed("adversaries_optimizer.", self.optimizer.state()?))
            .collect())
    }

    pub fn load_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        shown: &str,
    ) -> Result<(), AdaptError> {
        self.params
            .load_state_dict(&under(tensors, "adversaries."), shown)?;
        self.optimizer
            .load_state(&under(tensors, "adversaries_optimizer."))?;
        Ok(())
    }
}
