//! Deep CORAL (Sun & Saenko, ECCV 2016 workshops): the target encoder's features on a
//! source batch and on the target batch are pulled to the same second-order statistics by
//! the term w_e * ||C_s - C_t||_F^2 / (4 d^2), C the unbiased feature covariance and d the
//! feature width. Both passes share the encoder and both carry gradients, as in the paper.

use candle_core::Tensor;

use super::measure::EpochMean;
use super::{AdaptError, Adaptation, Adapted, Method, Needs, Setup, StepContext};
use crate::config::registry::{Kind, NO_PARAMS};
use crate::data::batch::Tensors;

pub const CORAL: Kind<Method> = Kind::new(
    "coral",
    NO_PARAMS,
    Method {
        needs: |_| Needs::ALIGNMENT,
        build: Coral::build,
    },
);

/// The unbiased covariance of the rows of `x` `(n, d)`: (XᵀX - (1ᵀX)ᵀ(1ᵀX)/n) / (n - 1).
pub fn covariance(x: &Tensor) -> candle_core::Result<Tensor> {
    let n = x.dim(0)? as f64;
    let sums = x.sum_keepdim(0)?;
    let outer = (sums.t()?.matmul(&sums)? / n)?;
    (x.t()?.matmul(x)? - outer)? / (n - 1.0)
}

/// The CORAL distance ||C_s - C_t||_F^2 / (4 d^2) of two feature batches of width d.
pub fn distance(source: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
    let d = source.dim(1)? as f64;
    let diff = (covariance(source)? - covariance(target)?)?;
    diff.sqr()?.sum_all()? / (4.0 * d * d)
}

struct Coral {
    adversarial: f64,
    distance: EpochMean,
}

impl Coral {
    fn build(setup: &Setup<'_>) -> Result<Box<dyn Adaptation>, AdaptError> {
        let weights: super::weights::Config = setup.experiment.adapt.weights.params();
        Ok(Box::new(Coral {
            adversarial: weights.adversarial,
            distance: EpochMean::new("coral"),
        }))
    }
}

impl Adaptation for Coral {
    fn term_settings(&self) -> Vec<(&'static str, f64)> {
        vec![("adapt.weights.adversarial", self.adversarial)]
    }

    fn forward(
        &mut self,
        step: &mut StepContext<'_, '_>,
        target: &Tensors,
    ) -> Result<Adapted, AdaptError> {
        let (output, on_source, _) = step.forward_both(target)?;
        let distance = distance(&on_source.feature, &output.feature)?;
        self.distance.add(&distance);
        Ok(Adapted::with_term(output, (distance * self.adversarial)?))
    }

    fn end_epoch(&mut self) -> Result<serde_json::Map<String, serde_json::Value>, AdaptError> {
        Ok(self.distance.report()?)
    }
}

#[cfg(test)]
mod tests {
    use super::{covariance, distance};

    use crate::nn::gradcheck::matrix as t;

    #[test]
    fn covariance_and_distance_match_a_hand_computed_case() {
        // Source rows (0,0), (2,0), (0,2), (2,2): means (1,1), deviations ±1 in each
        // coordinate, independent: C_s = [[4/3, 0], [0, 4/3]] (sum of squares 4, n-1 = 3).
        let s = t(&[&[0.0, 0.0], &[2.0, 0.0], &[0.0, 2.0], &[2.0, 2.0]]);
        // Target rows (0,0), (1,1), (2,2): perfectly correlated, variances 1: C_t = all 1.
        let x = t(&[&[0.0, 0.0], &[1.0, 1.0], &[2.0, 2.0]]);
        let c = covariance(&s).unwrap().to_vec2::<f64>().unwrap();
        assert_eq!(c, vec![vec![4.0 / 3.0, 0.0], vec![0.0, 4.0 / 3.0]]);
        // C_s - C_t = [[1/3, -1], [-1, 1/3]]: squared Frobenius 2/9 + 2 = 20/9; / (4 * 4).
        let d = distance(&s, &x).unwrap().to_scalar::<f64>().unwrap();
        assert!((d - 20.0 / 9.0 / 16.0).abs() < 1e-12, "{d}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        let s = t(&[
            &[0.3, -1.2, 0.5],
            &[1.1, 0.4, -0.7],
            &[-0.6, 0.9, 1.3],
            &[0.2, 0.1, -0.4],
        ]);
        let x = t(&[&[1.5, -0.2, 0.3], &[-0.8, 0.6, 0.9], &[0.4, -1.1, 0.2]]);
        crate::nn::gradcheck::check_both(&s, &x, distance, 1e-6, 1e-6);
    }
}
