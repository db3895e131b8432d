//! L2-SP (Li et al., ICML 2018): fine-tuning with the body's parameters held near their
//! source values and the heads' near zero: alpha/2 ||w_body - w_source||^2 +
//! beta/2 ||w_heads||^2, added to the task loss. The body is the input layer and the
//! bottoms or experts ([`Backbone::body`](crate::models::Backbone::body)); the heads are
//! what the paper calls the new layers (towers, gates, task-specific layers). The target
//! optimiser's `optim.weight_decay` still applies (set it to 0 for the paper's form).

use serde::{Deserialize, Serialize};

use candle_core::Tensor;

use super::{AdaptError, Adaptation, Adapted, Method, Needs, Setup, StepContext};
use crate::config::check::{Invalid, Validate, ensure};
use crate::config::registry::{Kind, typed};
use crate::data::batch::Tensors;

pub const L2SP: Kind<Method> = Kind::new(
    "l2sp",
    typed::<Config>(),
    Method {
        needs: |_| Needs::FROM_SOURCE,
        build: L2sp::build,
    },
);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Config {
    /// Weight of the pull of the body towards the source model.
    pub alpha: f64,
    /// Weight of the heads' L2 penalty.
    pub beta: f64,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        ensure(
            self.alpha >= 0.0 && self.alpha.is_finite(),
            "alpha",
            "must be zero or positive",
        )?;
        ensure(
            self.beta >= 0.0 && self.beta.is_finite(),
            "beta",
            "must be zero or positive",
        )
    }
}

struct L2sp {
    config: Config,
    /// Per trainable tensor of the model, in its order: the source value for the body's
    /// (the anchor), `None` for the heads'.
    anchors: Vec<Option<Tensor>>,
}

impl L2sp {
    fn build(setup: &Setup<'_>) -> Result<Box<dyn Adaptation>, AdaptError> {
        let source = setup.source_model("L2-SP")?;
        let anchors = source
            .params
            .named_trainable()
            .into_iter()
            .map(|(name, var)| {
                source
                    .backbone
                    .is_body(&name)
                    .then(|| var.as_tensor().detach())
            })
            .collect();
        Ok(Box::new(L2sp {
            config: setup.experiment.adapt.method.params(),
            anchors,
        }))
    }
}

/// alpha/2 Σ ||w - anchor||^2 over anchored tensors + beta/2 Σ ||w||^2 over the others.
pub fn penalty(
    weights: &[Tensor],
    anchors: &[Option<Tensor>],
    alpha: f64,
    beta: f64,
) -> candle_core::Result<Tensor> {
    let mut body = Vec::new();
    let mut heads = Vec::new();
    for (w, anchor) in weights.iter().zip(anchors) {
        match anchor {
            Some(a) => body.push((w - a)?.sqr()?.sum_all()?),
            None => heads.push(w.sqr()?.sum_all()?),
        }
    }
    let total = |terms: Vec<Tensor>| -> candle_core::Result<Option<Tensor>> {
        terms.into_iter().try_fold(None, |acc: Option<Tensor>, t| {
            Ok(Some(match acc {
                Some(a) => (a + t)?,
                None => t,
            }))
        })
    };
    let body = total(body)?.map(|t| t * (alpha / 2.0)).transpose()?;
    let heads = total(heads)?.map(|t| t * (beta / 2.0)).transpose()?;
    match (body, heads) {
        (Some(b), Some(h)) => b + h,
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(candle_core::Error::Msg("a model without parameters".into())),
    }
}

impl Adaptation for L2sp {
    fn term_settings(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("adapt.method.alpha", self.config.alpha),
            ("adapt.method.beta", self.config.beta),
        ]
    }

    fn forward(
        &mut self,
        step: &mut StepContext<'_, '_>,
        target: &Tensors,
    ) -> Result<Adapted, AdaptError> {
        let output = step.forward(target)?;
        // The model's trainable tensors, in the order the anchors were taken in.
        let weights: Vec<Tensor> = step
            .model
            .params
            .trainable()
            .into_iter()
            .map(|var| var.as_tensor().clone())
            .collect();
        let term = penalty(&weights, &self.anchors, self.config.alpha, self.config.beta)?;
        Ok(Adapted::with_term(output, term))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::penalty;

    #[test]
    fn value_and_gradients_match_the_hand_derived_ones() {
        let dev = Device::Cpu;
        let body = Var::new(&[1.0f64, -2.0, 0.5], &dev).unwrap();
        let head = Var::new(&[[3.0f64, -1.0]], &dev).unwrap();
        let anchor = Tensor::new(&[0.5f64, -1.0, 0.5], &dev).unwrap();
        let (alpha, beta) = (0.3, 0.02);
        let weights = [body.as_tensor().clone(), head.as_tensor().clone()];
        let term = penalty(&weights, &[Some(anchor.clone()), None], alpha, beta).unwrap();
        // alpha/2 * (0.25 + 1 + 0) + beta/2 * (9 + 1).
        let expected = alpha / 2.0 * 1.25 + beta / 2.0 * 10.0;
        assert!((term.to_scalar::<f64>().unwrap() - expected).abs() < 1e-12);
        // d/dw = alpha (w - anchor) on the body, beta w on the head.
        let grads = term.backward().unwrap();
        let g_body = grads
            .get(body.as_tensor())
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let g_head = grads
            .get(head.as_tensor())
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        for (g, want) in g_body.iter().zip([alpha * 0.5, -alpha, 0.0]) {
            assert!((g - want).abs() < 1e-12, "{g} vs {want}");
        }
        for (g, want) in g_head[0].iter().zip([beta * 3.0, -beta]) {
            assert!((g - want).abs() < 1e-12, "{g} vs {want}");
        }
    }
}
