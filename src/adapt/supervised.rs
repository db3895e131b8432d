//! No adaptation term: the target model trains on target labels alone (also source
//! pretraining's step). The supervised methods differ only in where the model starts, what
//! of it trains, and whether it trains.

use super::{AdaptError, Adaptation, Adapted, Setup, StepContext};
use crate::data::batch::Tensors;

pub struct Supervised;

impl Supervised {
    pub fn build(_: &Setup<'_>) -> Result<Box<dyn Adaptation>, AdaptError> {
        Ok(Box::new(Supervised))
    }
}

impl Adaptation for Supervised {
    fn forward(
        &mut self,
        step: &mut StepContext<'_, '_>,
        target: &Tensors,
    ) -> Result<Adapted, AdaptError> {
        Ok(Adapted::plain(step.forward(target)?))
    }
}
