//! How far apart two domains' features are: a linear domain probe (held-out accuracy and
//! the proxy A-distance of Ben-David et al.), the distance between the domains' mean
//! features, and standardised per-unit gaps of mean and variance. Features are row-major
//! `f32` matrices of one width; every statistic is computed in `f64`.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The gap between a source and a target feature set.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct DomainGap {
    /// Balanced accuracy (the mean of the two domains' accuracies; 0.5 is chance) of a
    /// logistic regression that tells the domains apart, fitted on one half of each
    /// domain's rows and scored on the other half.
    pub probe_accuracy: f64,
    /// Proxy A-distance 2(1 - 2 error), error = 1 - probe_accuracy: 0 when the probe does
    /// no better than chance, 2 when it separates the domains (negative below chance).
    pub a_distance: f64,
    /// Linear MMD: the Euclidean distance between the domains' mean features.
    pub mmd: f64,
    /// Mean over units of |mean_s - mean_t| / sqrt((var_s + var_t) / 2).
    pub mean_gap: f64,
    /// Mean over units of |var_s - var_t| / ((var_s + var_t) / 2), in [0, 2].
    pub var_gap: f64,
}

/// Rows of a matrix whose pooled variance is below this are constant in both domains
/// (dead units): they carry no gap and are left out of the per-unit means.
const CONSTANT: f64 = 1e-12;

/// The gap between `source` and `target` (`width` columns each); the probe's halves are
/// drawn from `seed`'s stream "probe/halves".
pub fn domain_gap(source: &[f32], target: &[f32], width: usize, seed: u64) -> DomainGap {
    let (s_rows, t_rows) = (source.len() / width.max(1), target.len() / width.max(1));
    let (s_fit, s_eval) = halves(s_rows, seed, 0);
    let (t_fit, t_eval) = halves(t_rows, seed, 1);
    let probe_accuracy = probe(source, target, width, (&s_fit, &s_eval), (&t_fit, &t_eval));
    let (s_mean, s_var) = moments(source, width);
    let (t_mean, t_var) = moments(target, width);
    let mmd = s_mean
        .iter()
        .zip(&t_mean)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    let (mut mean_gap, mut var_gap, mut units) = (0.0, 0.0, 0usize);
    for j in 0..width {
        let pooled = (s_var[j] + t_var[j]) / 2.0;
        if pooled < CONSTANT {
            continue;
        }
        mean_gap += (s_mean[j] - t_mean[j]).abs() / pooled.sqrt();
        var_gap += (s_var[j] - t_var[j]).abs() / pooled;
        units += 1;
    }
    let per_unit = units.max(1) as f64;
    DomainGap {
        probe_accuracy,
        a_distance: 2.0 * (1.0 - 2.0 * (1.0 - probe_accuracy)),
        mmd,
        mean_gap: mean_gap / per_unit,
        var_gap: var_gap / per_unit,
    }
}

/// The mean Euclidean distance between the rows of `a` and the rows of `b` (the same rows
/// seen by two models).
pub fn mean_row_distance(a: &[f32], b: &[f32], width: usize) -> f64 {
    let rows = a.len() / width.max(1);
    let total: f64 = a
        .chunks_exact(width)
        .zip(b.chunks_exact(width))
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .sum();
    total / rows.max(1) as f64
}

/// Row indices `0..rows` split into two halves by a seeded permutation.
fn halves(rows: usize, seed: u64, domain: u64) -> (Vec<usize>, Vec<usize>) {
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut crate::rng::stream(seed, "probe/halves", domain));
    let eval = order.split_off(rows / 2);
    (order, eval)
}

/// Per-column mean and population variance.
fn moments(x: &[f32], width: usize) -> (Vec<f64>, Vec<f64>) {
    let rows = (x.len() / width.max(1)).max(1) as f64;
    let mut mean = vec![0.0; width];
    for row in x.chunks_exact(width) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows);
    let mut var = vec![0.0; width];
    for row in x.chunks_exact(width) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (f64::from(v) - m).powi(2);
        }
    }
    var.iter_mut().for_each(|s| *s /= rows);
    (mean, var)
}

/// Standardised design rows (the fitted half's column statistics), with a trailing 1 for
/// the intercept, and their labels (0 source, 1 target) and class weights.
struct Design {
    x: Vec<f64>,
    y: Vec<f64>,
    weight: Vec<f64>,
    /// Columns including the intercept.
    cols: usize,
}

fn design(sets: [(&[f32], &[usize]); 2], width: usize, centre: &[f64], scale: &[f64]) -> Design {
    let cols = width + 1;
    let (mut x, mut y, mut weight) = (Vec::new(), Vec::new(), Vec::new());
    for (label, (data, rows)) in sets.into_iter().enumerate() {
        // Each domain weighs half the objective whatever its row count.
        let w = 0.5 / rows.len().max(1) as f64;
        for &r in rows {
            let row = &data[r * width..(r + 1) * width];
            x.extend(
                row.iter()
                    .zip(centre.iter().zip(scale))
                    .map(|(&v, (c, s))| (f64::from(v) - c) * s),
            );
            x.push(1.0);
            y.push(label as f64);
            weight.push(w);
        }
    }
    Design { x, y, weight, cols }
}

/// The balanced held-out accuracy of an L2-regularised logistic regression (penalty
/// 1 / (2 n) ||w||², scikit-learn's default C = 1; intercept unpenalised) fitted on the
/// `fit` rows of both domains and scored on their `eval` rows.
fn probe(
    source: &[f32],
    target: &[f32],
    width: usize,
    s: (&[usize], &[usize]),
    t: (&[usize], &[usize]),
) -> f64 {
    // Standardise with the fitted rows' statistics; a constant column is dropped (scale 0).
    let mut fitted = Vec::with_capacity((s.0.len() + t.0.len()) * width);
    for (data, rows) in [(source, s.0), (target, t.0)] {
        for &r in rows {
            fitted.extend_from_slice(&data[r * width..(r + 1) * width]);
        }
    }
    let (centre, var) = moments(&fitted, width);
    let scale: Vec<f64> = var
        .iter()
        .map(|&v| if v < CONSTANT { 0.0 } else { 1.0 / v.sqrt() })
        .collect();
    let fit = design([(source, s.0), (target, t.0)], width, &centre, &scale);
    let eval = design([(source, s.1), (target, t.1)], width, &centre, &scale);
    let lambda = 1.0 / (s.0.len() + t.0.len()).max(1) as f64;
    let w = newton(&fit, lambda);
    let mut correct = [0.0f64; 2];
    let mut count = [0.0f64; 2];
    for (row, &y) in eval.x.chunks_exact(eval.cols).zip(&eval.y) {
        let class = y as usize;
        count[class] += 1.0;
        if (dot(row, &w) >= 0.0) == (class == 1) {
            correct[class] += 1.0;
        }
    }
    let rate = |c: usize| {
        if count[c] > 0.0 {
            correct[c] / count[c]
        } else {
            0.5
        }
    };
    (rate(0) + rate(1)) / 2.0
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The weighted logistic loss plus the penalty (the intercept, last, unpenalised).
fn objective(d: &Design, w: &[f64], lambda: f64) -> f64 {
    let loss: f64 =
        d.x.chunks_exact(d.cols)
            .zip(d.y.iter().zip(&d.weight))
            .map(|(row, (&y, &c))| {
                let z = dot(row, w);
                // log(1 + e^z) - y z, stable for large |z|.
                c * (z.max(0.0) + (-z.abs()).exp().ln_1p() - y * z)
            })
            .sum();
    loss + lambda / 2.0 * w[..d.cols - 1].iter().map(|v| v * v).sum::<f64>()
}

/// Damped Newton's method (step halved until the objective falls) from zero weights.
fn newton(d: &Design, lambda: f64) -> Vec<f64> {
    let n = d.cols;
    let mut w = vec![0.0; n];
    let mut current = objective(d, &w, lambda);
    for _ in 0..50 {
        let (gradient, hessian) = derivatives(d, &w, lambda);
        let Some(step) = cholesky_solve(hessian, &gradient, n) else {
            break;
        };
        let mut size = 1.0;
        let mut moved = false;
        for _ in 0..30 {
            let trial: Vec<f64> = w.iter().zip(&step).map(|(w, s)| w - size * s).collect();
            let value = objective(d, &trial, lambda);
            if value <= current {
                w = trial;
                current = value;
                moved = true;
                break;
            }
            size /= 2.0;
        }
        let largest = step.iter().fold(0.0f64, |m, s| m.max(s.abs())) * size;
        if !moved || largest < 1e-9 {
            break;
        }
    }
    w
}

/// Rows per parallel chunk of the Hessian sum (a fixed partition: the sum's order, and so
/// its bits, do not depend on the thread count).
const CHUNK: usize = 256;

/// The objective's gradient and Hessian (row-major, lower triangle filled) at `w`.
fn derivatives(d: &Design, w: &[f64], lambda: f64) -> (Vec<f64>, Vec<f64>) {
    let n = d.cols;
    let rows = d.y.len();
    let partials: Vec<(Vec<f64>, Vec<f64>)> = (0..rows.div_ceil(CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let mut g = vec![0.0; n];
            let mut h = vec![0.0; n * n];
            for i in chunk * CHUNK..((chunk + 1) * CHUNK).min(rows) {
                let row = &d.x[i * n..(i + 1) * n];
                let p = sigmoid(dot(row, w));
                let (r, s) = (d.weight[i] * (p - d.y[i]), d.weight[i] * p * (1.0 - p));
                for j in 0..n {
                    g[j] += r * row[j];
                    let sj = s * row[j];
                    if sj != 0.0 {
                        for (k, x) in row[..=j].iter().enumerate() {
                            h[j * n + k] += sj * x;
                        }
                    }
                }
            }
            (g, h)
        })
        .collect();
    let (mut g, mut h) = (vec![0.0; n], vec![0.0; n * n]);
    for (pg, ph) in partials {
        g.iter_mut().zip(pg).for_each(|(a, b)| *a += b);
        h.iter_mut().zip(ph).for_each(|(a, b)| *a += b);
    }
    for j in 0..n - 1 {
        g[j] += lambda * w[j];
        h[j * n + j] += lambda;
    }
    (g, h)
}

/// Solves `a x = b` for a symmetric positive definite `a` (lower triangle read) by its
/// Cholesky factor; `None` if `a` is not positive definite.
fn cholesky_solve(mut a: Vec<f64>, b: &[f64], n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let diagonal = a[j * n + j] - (0..j).map(|k| a[j * n + k].powi(2)).sum::<f64>();
        if diagonal <= 0.0 || !diagonal.is_finite() {
            return None;
        }
        let l = diagonal.sqrt();
        a[j * n + j] = l;
        for i in j + 1..n {
            let s = a[i * n + j] - (0..j).map(|k| a[i * n + k] * a[j * n + k]).sum::<f64>();
            a[i * n + j] = s / l;
        }
    }
    // L y = b, then Lᵀ x = y.
    let mut y = b.to_vec();
    for i in 0..n {
        y[i] = (y[i] - (0..i).map(|k| a[i * n + k] * y[k]).sum::<f64>()) / a[i * n + i];
    }
    for i in (0..n).rev() {
        y[i] = (y[i] - (i + 1..n).map(|k| a[k * n + i] * y[k]).sum::<f64>()) / a[i * n + i];
    }
    Some(y)
}

#[cfg(test)]
mod tests {
    use rand::Rng;
    use rand_distr::StandardNormal;
    use statrs::distribution::{ContinuousCDF, Normal};

    use super::*;

    /// `rows` x `width` standard normal values from stream `index`.
    fn gaussian(rows: usize, width: usize, index: u64) -> Vec<f32> {
        let mut s = crate::rng::stream(7, "test/gaussian", index);
        (0..rows * width)
            .map(|_| s.sample::<f32, _>(StandardNormal))
            .collect()
    }

    #[test]
    fn one_distribution_twice_is_at_chance() {
        // 2 x 1,000 held-out rows: the balanced accuracy's standard error is ~0.011.
        let gap = domain_gap(&gaussian(2000, 8, 0), &gaussian(2000, 8, 1), 8, 1);
        assert!((gap.probe_accuracy - 0.5).abs() < 0.045, "{gap:?}");
        assert!(gap.a_distance.abs() < 0.18, "{gap:?}");
    }

    #[test]
    fn a_planted_mean_shift_gives_the_bayes_accuracy() {
        // Unit 0 of the target moved by delta: the best classifier thresholds it halfway,
        // with accuracy Phi(delta / 2) in each domain.
        let (delta, width) = (1.0f32, 8);
        let mut target = gaussian(4000, width, 1);
        target
            .chunks_exact_mut(width)
            .for_each(|row| row[0] += delta);
        let gap = domain_gap(&gaussian(4000, width, 0), &target, width, 3);
        let bayes = Normal::new(0.0, 1.0).unwrap().cdf(f64::from(delta) / 2.0);
        assert!(
            (gap.probe_accuracy - bayes).abs() < 0.03,
            "{gap:?} vs {bayes}"
        );
        assert!(
            gap.probe_accuracy < bayes + 0.02,
            "cannot beat the Bayes rule by much"
        );
        let a = 2.0 * (1.0 - 2.0 * (1.0 - gap.probe_accuracy));
        assert_eq!(gap.a_distance, a);
    }

    #[test]
    fn separable_domains_are_told_apart() {
        let mut target = gaussian(1000, 4, 1);
        target.chunks_exact_mut(4).for_each(|row| row[2] += 20.0);
        let gap = domain_gap(&gaussian(1000, 4, 0), &target, 4, 1);
        assert_eq!(gap.probe_accuracy, 1.0);
        assert_eq!(gap.a_distance, 2.0);
    }

    #[test]
    fn moment_gaps_match_the_hand_computation() {
        // The target is the source's own rows moved by (3, 4, 0): the mean features are
        // exactly 5 apart; variances are equal, so each unit's mean gap is its shift over
        // its standard deviation, and the variance gap is zero.
        let width = 3;
        let source = gaussian(500, width, 0);
        let target: Vec<f32> = source
            .chunks_exact(width)
            .flat_map(|r| [r[0] + 3.0, r[1] + 4.0, r[2]])
            .collect();
        let gap = domain_gap(&source, &target, width, 1);
        let (_, var) = moments(&source, width);
        let (_, shifted_var) = moments(&target, width);
        assert!((gap.mmd - 5.0).abs() < 1e-5, "{gap:?}");
        let expected = (3.0 / var[0].sqrt() + 4.0 / var[1].sqrt()) / 3.0;
        // The moved columns' variances differ from the source's by f32 rounding only.
        assert!(
            (gap.mean_gap - expected).abs() < 1e-4,
            "{gap:?} vs {expected}"
        );
        assert!(gap.var_gap < 1e-5, "{gap:?} {var:?} {shifted_var:?}");
        // Doubling every value quadruples each variance: |v - 4v| / (5v / 2) = 1.2.
        let doubled: Vec<f32> = source.iter().map(|v| v * 2.0).collect();
        let gap = domain_gap(&source, &doubled, width, 1);
        assert!((gap.var_gap - 1.2).abs() < 1e-9, "{gap:?}");
    }

    #[test]
    fn constant_units_carry_no_gap() {
        let source = [0.0f32, 1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0];
        let target = [0.0f32, 1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0];
        let gap = domain_gap(&source, &target, 2, 1);
        assert_eq!((gap.mmd, gap.mean_gap, gap.var_gap), (0.0, 0.0, 0.0));
    }

    #[test]
    fn row_distance_and_the_cholesky_solve_by_hand() {
        let a = [0.0f32, 0.0, 1.0, 1.0];
        let b = [3.0f32, 4.0, 1.0, 1.0];
        assert_eq!(mean_row_distance(&a, &b, 2), 2.5);
        // [[4, 2], [2, 3]] x = [2, 1]: x = [0.5, 0].
        let x = cholesky_solve(vec![4.0, 0.0, 2.0, 3.0], &[2.0, 1.0], 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-15 && x[1].abs() < 1e-15, "{x:?}");
        assert!(cholesky_solve(vec![1.0, 0.0, 2.0, 1.0], &[1.0, 1.0], 2).is_none());
    }
}
