//! Multi-kernel MMD (DAN, Long et al., ICML 2015): the target encoder's features on a
//! source batch and on the target batch are pulled together by the term w_e * MK-MMD²,
//! the squared maximum mean discrepancy under the mean of `kernels` Gaussian kernels
//! exp(-||x - y||² / h). The bandwidths h come from the median heuristic: m, the median
//! squared distance between distinct rows of the joint batch (no gradient through it),
//! times `multiplier`^j for j = -(kernels-1)/2 .. (kernels-1)/2 (5 kernels, multiplier 2:
//! m/4 .. 4m). The estimate is the biased (V-statistic) one, never negative; DAN learns the
//! kernel weights, we keep them equal.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::measure::EpochMean;
use super::{AdaptError, Adaptation, Adapted, Method, Needs, Setup, StepContext};
use crate::config::check::{Invalid, Validate, ensure};
use crate::config::registry::{Kind, typed};
use crate::data::batch::Tensors;

pub const MMD: Kind<Method> = Kind::new(
    "mmd",
    typed::<Config>(),
    Method {
        needs: |_| Needs::ALIGNMENT,
        build: Mmd::build,
    },
);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Config {
    /// How many Gaussian kernels.
    pub kernels: usize,
    /// The ratio of neighbouring kernels' bandwidths.
    pub multiplier: f64,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        ensure(self.kernels > 0, "kernels", "must be positive")?;
        ensure(
            self.multiplier > 0.0 && self.multiplier.is_finite(),
            "multiplier",
            "must be positive",
        )
    }
}

/// Squared Euclidean distances between the rows of `z` `(n, d)`: `(n, n)`, clamped at 0.
fn squared_distances(z: &Tensor) -> candle_core::Result<Tensor> {
    let norms = z.sqr()?.sum_keepdim(1)?;
    let gram = z.matmul(&z.t()?)?;
    norms
        .broadcast_add(&norms.t()?)?
        .sub(&(gram * 2.0)?)?
        .relu()
}

/// The median of the squared distances between distinct rows of `x` and `y` together.
pub fn median_squared_distance(x: &Tensor, y: &Tensor) -> candle_core::Result<f64> {
    median_off_diagonal(&squared_distances(&Tensor::cat(&[x, y], 0)?)?)
}

/// The median of the entries above the diagonal of a symmetric distance matrix (no
/// gradient flows through it).
fn median_off_diagonal(d: &Tensor) -> candle_core::Result<f64> {
    let d = d
        .detach()
        .to_dtype(candle_core::DType::F64)?
        .to_vec2::<f64>()?;
    let mut pairs: Vec<f64> = d
        .iter()
        .enumerate()
        .flat_map(|(i, row)| row[i + 1..].iter().copied())
        .collect();
    if pairs.is_empty() {
        return Ok(1.0);
    }
    let middle = pairs.len() / 2;
    let (_, &mut upper, _) = pairs.select_nth_unstable_by(middle, f64::total_cmp);
    Ok(if pairs.len() % 2 == 1 {
        upper
    } else {
        let lower = pairs[..middle].iter().copied().fold(f64::MIN, f64::max);
        (lower + upper) / 2.0
    })
}

/// The bandwidths of `kernels` kernels around `median`, `multiplier` apart.
pub fn bandwidths(median: f64, kernels: usize, multiplier: f64) -> Vec<f64> {
    let centre = (kernels as f64 - 1.0) / 2.0;
    (0..kernels)
        .map(|j| median.max(f64::MIN_POSITIVE) * multiplier.powf(j as f64 - centre))
        .collect()
}

/// The biased MK-MMD² of the rows of `x` `(n, d)` and `y` `(m, d)`: mean K(x, x') +
/// mean K(y, y') - 2 mean K(x, y), K the mean of exp(-||.||² / h) over `bandwidths`.
pub fn mmd2(x: &Tensor, y: &Tensor, bandwidths: &[f64]) -> candle_core::Result<Tensor> {
    let d = squared_distances(&Tensor::cat(&[x, y], 0)?)?;
    mmd2_of_distances(&d, x.dim(0)?, bandwidths)
}

/// [`mmd2`] from the squared distances `d` of the joint rows, the first `n` from x.
fn mmd2_of_distances(d: &Tensor, n: usize, bandwidths: &[f64]) -> candle_core::Result<Tensor> {
    let m = d.dim(0)? - n;
    let mut kernel: Option<Tensor> = None;
    for h in bandwidths {
        let k = (d / -*h)?.exp()?;
        kernel = Some(match kernel {
            Some(sum) => (sum + k)?,
            None => k,
        });
    }
    let kernel = (kernel.expect("at least one kernel") / bandwidths.len() as f64)?;
    let xx = kernel.narrow(0, 0, n)?.narrow(1, 0, n)?.mean_all()?;
    let yy = kernel.narrow(0, n, m)?.narrow(1, n, m)?.mean_all()?;
    let xy = kernel.narrow(0, 0, n)?.narrow(1, n, m)?.mean_all()?;
    (xx + yy)? - (xy * 2.0)?
}

struct Mmd {
    config: Config,
    adversarial: f64,
    mmd: EpochMean,
}

impl Mmd {
    fn build(setup: &Setup<'_>) -> Result<Box<dyn Adaptation>, AdaptError> {
        let weights: super::weights::Config = setup.experiment.adapt.weights.params();
        Ok(Box::new(Mmd {
            config: setup.experiment.adapt.method.params(),
            adversarial: weights.adversarial,
            mmd: EpochMean::new("mmd"),
        }))
    }
}

impl Adaptation for Mmd {
    fn term_settings(&self) -> Vec<(&'static str, f64)> {
        vec![("adapt.weights.adversarial", self.adversarial)]
    }

    fn forward(
        &mut self,
        step: &mut StepContext<'_, '_>,
        target: &Tensors,
    ) -> Result<Adapted, AdaptError> {
        let (output, on_source, _) = step.forward_both(target)?;
        // One distance matrix serves the bandwidths and the estimate.
        let d = squared_distances(&Tensor::cat(&[&on_source.feature, &output.feature], 0)?)?;
        let h = bandwidths(
            median_off_diagonal(&d)?,
            self.config.kernels,
            self.config.multiplier,
        );
        let mmd = mmd2_of_distances(&d, on_source.feature.dim(0)?, &h)?;
        self.mmd.add(&mmd);
        Ok(Adapted::with_term(output, (mmd * self.adversarial)?))
    }

    fn end_epoch(&mut self) -> Result<serde_json::Map<String, serde_json::Value>, AdaptError> {
        Ok(self.mmd.report()?)
    }
}

#[cfg(test)]
mod tests {
    use super::{bandwidths, median_squared_distance, mmd2};

    use crate::nn::gradcheck::matrix as t;

    #[test]
    fn mmd_matches_a_hand_computed_case() {
        // x = {0, 1}, y = {3} on a line, one kernel of bandwidth 2:
        // K(0,1) = e^-1/2, K(0,3) = e^-9/2, K(1,3) = e^-2, K(a,a) = 1.
        // mean Kxx = (2 + 2 e^-1/2) / 4, mean Kyy = 1, mean Kxy = (e^-9/2 + e^-2) / 2.
        let (x, y) = (t(&[&[0.0], &[1.0]]), t(&[&[3.0]]));
        let e = f64::exp;
        let expected = (2.0 + 2.0 * e(-0.5)) / 4.0 + 1.0 - (e(-4.5) + e(-2.0));
        let got = mmd2(&x, &y, &[2.0]).unwrap().to_scalar::<f64>().unwrap();
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
        // Two kernels: the mean of the two single-kernel estimates.
        let two = mmd2(&x, &y, &[2.0, 8.0])
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let wide = mmd2(&x, &y, &[8.0]).unwrap().to_scalar::<f64>().unwrap();
        assert!((two - (got + wide) / 2.0).abs() < 1e-12);
        // Identical samples: zero.
        let same = mmd2(&x, &x, &[2.0]).unwrap().to_scalar::<f64>().unwrap();
        assert!(same.abs() < 1e-12);
    }

    #[test]
    fn the_median_heuristic_takes_the_median_distinct_pair() {
        // Points 0, 1, 3: squared distances 1, 9, 4 -> median 4; with 7 added: 1, 9, 49,
        // 4, 36, 16 -> (9 + 16) / 2.
        let m = median_squared_distance(&t(&[&[0.0], &[1.0]]), &t(&[&[3.0]])).unwrap();
        assert_eq!(m, 4.0);
        let m = median_squared_distance(&t(&[&[0.0], &[1.0]]), &t(&[&[3.0], &[7.0]])).unwrap();
        assert_eq!(m, 12.5);
        assert_eq!(bandwidths(4.0, 5, 2.0), vec![1.0, 2.0, 4.0, 8.0, 16.0]);
        assert_eq!(bandwidths(4.0, 1, 2.0), vec![4.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let x = t(&[&[0.3, -1.2], &[1.1, 0.4], &[-0.6, 0.9]]);
        let y = t(&[&[1.5, -0.2], &[-0.8, 0.6], &[0.4, -1.1], &[0.1, 0.2]]);
        crate::nn::gradcheck::check_both(&x, &y, |a, b| mmd2(a, b, &[0.5, 1.0, 2.0]), 1e-6, 1e-7);
    }
}
