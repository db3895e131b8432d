//! Paired significance of a method against a baseline: over the seeds both ran (paired by
//! seed, so each pair shares the split and the source model), the mean difference of their
//! test AUCs, its 95% confidence interval from Student's t distribution with n - 1 degrees
//! of freedom, and the two-sided p-value of "no difference".

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paired {
    /// Seeds with both results.
    pub seeds: usize,
    /// Mean of (method - baseline).
    pub delta_mean: f64,
    /// Standard deviation of the differences (n - 1 in the denominator).
    pub delta_std: f64,
    /// 95% confidence interval [low, high] of the mean difference; `None` below two seeds
    /// and where the differences do not vary.
    pub ci95: Option<[f64; 2]>,
    pub p_value: Option<f64>,
    /// Every difference is the same: with no spread there is no t statistic, and a
    /// constant difference (two methods that train the same, or a difference below the
    /// printed digits) says nothing about the seeds that were not run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_variance: bool,
}

impl Paired {
    /// Whether the confidence interval excludes 0 (never without variance).
    pub fn significant(&self) -> bool {
        self.ci95.is_some_and(|[low, high]| low > 0.0 || high < 0.0)
    }
}

/// The paired test of `differences` (method - baseline, one per seed).
pub fn paired(differences: &[f64]) -> Paired {
    let n = differences.len();
    let mean = differences.iter().sum::<f64>() / n.max(1) as f64;
    let untested = |delta_std: f64, no_variance: bool| Paired {
        seeds: n,
        delta_mean: mean,
        delta_std,
        ci95: None,
        p_value: None,
        no_variance,
    };
    if n < 2 {
        return untested(0.0, false);
    }
    let sd = (differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let se = sd / (n as f64).sqrt();
    if differences.iter().all(|d| *d == differences[0]) || se == 0.0 {
        return untested(0.0, true);
    }
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("n - 1 > 0 degrees of freedom");
    let half = t.inverse_cdf(0.975) * se;
    let statistic = mean / se;
    Paired {
        seeds: n,
        delta_mean: mean,
        delta_std: sd,
        ci95: Some([mean - half, mean + half]),
        p_value: Some(2.0 * (1.0 - t.cdf(statistic.abs()))),
        no_variance: false,
    }
}

/// Holm's step-down adjustment of a family's p-values (Holm 1979): sorted ascending, the
/// k-th smallest (from 1) of m is multiplied by m - k + 1, made non-decreasing and capped
/// at 1. A comparison without a p-value (too few seeds, no variance) is no member of the
/// family and stays `None`. Controls the family-wise error rate at any dependence.
pub fn holm(p_values: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut order: Vec<usize> = (0..p_values.len())
        .filter(|&i| p_values[i].is_some())
        .collect();
    order.sort_by(|&a, &b| p_values[a].unwrap().total_cmp(&p_values[b].unwrap()));
    let m = order.len();
    let mut adjusted = vec![None; p_values.len()];
    let mut running: f64 = 0.0;
    for (k, &i) in order.iter().enumerate() {
        let scaled = (p_values[i].unwrap() * (m - k) as f64).min(1.0);
        running = running.max(scaled);
        adjusted[i] = Some(running);
    }
    adjusted
}

/// Seeds a paired comparison needs for a 95% interval of half-width `margin` at a standard
/// deviation `sd` of the differences: the smallest n with t(0.975, n-1) sd / sqrt(n) <= margin.
pub fn seeds_for(margin: f64, sd: f64) -> Option<usize> {
    (2..=10_000).find(|&n| {
        let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("positive degrees of freedom");
        t.inverse_cdf(0.975) * sd / (n as f64).sqrt() <= margin
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_t_interval() {
        // Differences 0.01, 0.02, 0.03, 0.02: mean 0.02, sd = sqrt(0.0002 / 3) = 0.0081650,
        // se = sd / 2 = 0.0040825; t(0.975, 3) = 3.182446; half-width 0.0129923;
        // t = 0.02 / 0.0040825 = 4.898979; with 3 degrees of freedom the t CDF has the closed
        // form 1/2 + (x / (1 + x^2) + atan x) / pi, x = t / sqrt(3): two-sided p = 0.0162766.
        let p = paired(&[0.01, 0.02, 0.03, 0.02]);
        assert_eq!(p.seeds, 4);
        assert!((p.delta_mean - 0.02).abs() < 1e-12);
        assert!((p.delta_std - 0.008_164_966).abs() < 1e-8);
        let [low, high] = p.ci95.unwrap();
        assert!((low - (0.02 - 0.012_992_3)).abs() < 1e-6, "{low}");
        assert!((high - (0.02 + 0.012_992_3)).abs() < 1e-6, "{high}");
        assert!(
            (p.p_value.unwrap() - 0.016_276_6).abs() < 1e-6,
            "{:?}",
            p.p_value
        );
        assert!(p.significant());
        let both_ways = paired(&[0.01, -0.02, 0.015]);
        assert!(!both_ways.significant());
        assert!(paired(&[0.01]).ci95.is_none());
    }

    #[test]
    fn equal_differences_have_no_variance_and_are_never_significant() {
        // Five seeds that all differ by +0.0001: sd 0, so no t statistic; the interval is
        // not the point [m, m] with p = 0, which would count as significant.
        for same in [[0.0001; 5], [0.0; 5], [-0.02; 5]] {
            let p = paired(&same);
            assert!(p.no_variance, "{same:?}");
            assert_eq!((p.ci95, p.p_value, p.delta_std), (None, None, 0.0));
            assert!(!p.significant());
            assert!((p.delta_mean - same[0]).abs() < 1e-15);
        }
        assert!(!paired(&[0.0001, 0.0002]).no_variance);
        assert!(!paired(&[0.0001]).no_variance);
    }

    #[test]
    fn holm_adjusts_a_fabricated_family_by_hand() {
        // p = 0.01, 0.04, 0.03, 0.005 (m = 4): sorted 0.005, 0.01, 0.03, 0.04 times 4, 3,
        // 2, 1 = 0.02, 0.03, 0.06, 0.04; made non-decreasing: 0.02, 0.03, 0.06, 0.06.
        let adjusted = holm(&[Some(0.01), Some(0.04), None, Some(0.03), Some(0.005)]);
        let expected = [Some(0.03), Some(0.06), None, Some(0.06), Some(0.02)];
        for (a, e) in adjusted.iter().zip(expected) {
            match (a, e) {
                (Some(a), Some(e)) => assert!((a - e).abs() < 1e-12, "{adjusted:?}"),
                (a, e) => assert_eq!(*a, e),
            }
        }
        // Capped at 1; one member is its own p.
        assert_eq!(holm(&[Some(0.6), Some(0.7)]), [Some(1.0), Some(1.0)]);
        assert_eq!(holm(&[Some(0.2)]), [Some(0.2)]);
    }

    #[test]
    fn seeds_needed_for_a_margin() {
        // sd 0.005, margin 0.005: n = 7 gives t(0.975, 6) / sqrt(7) = 2.4469 / 2.6458 = 0.925.
        assert_eq!(seeds_for(0.005, 0.005), Some(7));
        assert_eq!(seeds_for(0.005, 0.0), Some(2));
    }
}
