//! DANN (Ganin et al., JMLR 2016): one domain classifier on the target encoder's features of
//! source and target rows, trained through a gradient reversal layer, so that the encoder
//! learns to make the domains indistinguishable. The model's term is w_e * the
//! classifier's BCE; the classifier steps on the same backward pass.

use std::collections::HashMap;

use candle_core::Tensor;
use candle_core::backprop::GradStore;

use super::adversaries::Adversaries;
use super::critic::{Config as CriticConfig, Critic, Head};
use super::measure::EpochMean;
use super::{AdaptError, Adaptation, Adapted, Method, Needs, Setup, StepContext};
use crate::config::registry::{Kind, NO_PARAMS};
use crate::data::batch::Tensors;

pub const DANN: Kind<Method> = Kind::new(
    "dann",
    NO_PARAMS,
    Method {
        needs: |_| Needs::ALIGNMENT,
        build: Dann::build,
    },
);

struct Dann {
    classifier: Critic,
    adversaries: Adversaries,
    adversarial: f64,
    domain_loss: EpochMean,
}

impl Dann {
    fn build(setup: &Setup<'_>) -> Result<Box<dyn Adaptation>, AdaptError> {
        let exp = setup.experiment;
        let mut config: CriticConfig = exp.adapt.critic.params();
        // The domain classifier is a logit, whatever the critic head.
        config.head = Head::Linear;
        let (adversaries, mut critics) = Adversaries::new(setup, &[setup.feature_width], &config)?;
        let weights: super::weights::Config = exp.adapt.weights.params();
        Ok(Box::new(Dann {
            classifier: critics.remove(0),
            adversaries,
            adversarial: weights.adversarial,
            domain_loss: EpochMean::new("domain_loss"),
        }))
    }
}

impl Adaptation for Dann {
    fn term_settings(&self) -> Vec<(&'static str, f64)> {
        vec![("adapt.weights.adversarial", self.adversarial)]
    }

    fn forward(
        &mut self,
        step: &mut StepContext<'_, '_>,
        target: &Tensors,
    ) -> Result<Adapted, AdaptError> {
        let (output, on_source, _) = step.forward_both(target)?;
        let features = Tensor::cat(&[&on_source.feature, &output.feature], 0)?;
        // Gradient reversal: the forward value is the features, the gradient negated.
        let reversed = ((features.detach() * 2.0)? - &features)?;
        let logits = self.classifier.forward(&reversed)?;
        let (n_s, n_t) = (on_source.feature.dim(0)?, output.feature.dim(0)?);
        let domains = Tensor::cat(
            &[
                Tensor::zeros((n_s, 1), logits.dtype(), step.device)?,
                Tensor::ones((n_t, 1), logits.dtype(), step.device)?,
            ],
            0,
        )?;
        let domain = crate::nn::loss::bce_with_logits(&logits, &domains)?;
        self.domain_loss.add(&domain);
        Ok(Adapted::with_term(output, (domain * self.adversarial)?))
    }

    fn after_backward(&mut self, grads: &GradStore) -> Result<(), AdaptError> {
        self.adversaries.step(grads)
    }

    fn end_epoch(&mut self) -> Result<serde_json::Map<String, serde_json::Value>, AdaptError> {
        Ok(self.domain_loss.report()?)
    }

    fn state(&self) -> Result<HashMap<String, Tensor>, AdaptError> {
        self.adversaries.state()
    }

    fn load_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        shown: &str,
    ) -> Result<(), AdaptError> {
        self.adversaries.load_state(tensors, shown)
    }
}
