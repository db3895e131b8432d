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
    /// 95% confidence interval [low, high] of the mean difference; `None` below two seeds.
    pub ci95: Option<[f64; 2]>,
    pub p_value: Option<f64>,
}

impl Paired {
    /// Whether the confidence interval excludes 0.
    pub fn significant(&self) -> bool {
        self.ci95.is_some_and(|[low, high]| low > 0.0 || high < 0.0)
    }
}

/// The paired test of `differences` (method - baseline, one per seed).
pub fn paired(differences: &[f64]) -> Paired {
    let n = differences.len();
    let mean = differences.iter().sum::<f64>() / n.max(1) as f64;
    if n < 2 {
        return Paired {
            seeds: n,
            delta_mean: mean,
            delta_std: 0.0,
            ci95: None,
            p_value: None,
        };
    }
    let sd = (differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let se = sd / (n as f64).sqrt();
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("n - 1 > 0 degrees of freedom");
    let (ci95, p_value) = if se > 0.0 {
        let half = t.inverse_cdf(0.975) * se;
        let statistic = mean / se;
        (
            [mean - half, mean + half],
            2.0 * (1.0 - t.cdf(statistic.abs())),
        )
    } else {
        // Identical differences: no spread, the interval is the point.
        ([mean, mean], if mean == 0.0 { 1.0 } else { 0.0 })
    };
    Paired {
        seeds: n,
        delta_mean: mean,
        delta_std: sd,
        ci95: Some(ci95),
        p_value: Some(p_value),
    }
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
    fn seeds_needed_for_a_margin() {
        // sd 0.005, margin 0.005: n = 7 gives t(0.975, 6) / sqrt(7) = 2.4469 / 2.6458 = 0.925.
        assert_eq!(seeds_for(0.005, 0.005), Some(7));
        assert_eq!(seeds_for(0.005, 0.0), Some(2));
    }
}
