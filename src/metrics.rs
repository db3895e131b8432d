//! Evaluation metrics: exact ROC AUC (tied scores count half) and log-loss.

/// Why a metric cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    #[error("AUC is undefined: every label is {0} (the evaluation set needs both classes)")]
    SingleClass(u8),
    #[error("AUC is undefined on an empty set")]
    Empty,
}

/// The exact area under the ROC curve: the probability that a random positive scores above
/// a random negative, ties counting one half (the Mann-Whitney U statistic).
pub fn auc(scores: &[f32], labels: &[u8]) -> Result<f64, MetricError> {
    assert_eq!(scores.len(), labels.len(), "one score per label");
    if scores.is_empty() {
        return Err(MetricError::Empty);
    }
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize]));
    let positives = labels.iter().filter(|&&l| l != 0).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return Err(MetricError::SingleClass(u8::from(positives > 0.0)));
    }
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let score = scores[order[start] as usize];
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| scores[i as usize] == score)
                .count();
        let average_rank = (start + end + 1) as f64 / 2.0;
        let tied_positives = order[start..end]
            .iter()
            .filter(|&&i| labels[i as usize] != 0)
            .count();
        rank_sum += average_rank * tied_positives as f64;
        start = end;
    }
    Ok((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// The released code's AUC: the mean of per-chunk AUCs over consecutive `chunk` rows.
pub fn chunk_mean_auc(scores: &[f32], labels: &[u8], chunk: usize) -> Result<f64, MetricError> {
    let aucs: Vec<f64> = scores
        .chunks(chunk)
        .zip(labels.chunks(chunk))
        .map(|(s, l)| auc(s, l))
        .collect::<Result<_, _>>()?;
    Ok(aucs.iter().sum::<f64>() / aucs.len() as f64)
}

/// Mean binary cross-entropy of probabilities, clipped to [1e-7, 1 - 1e-7] as scikit-learn's
/// `log_loss` with its default eps for float32.
pub fn log_loss(probabilities: &[f32], labels: &[u8]) -> f64 {
    assert_eq!(
        probabilities.len(),
        labels.len(),
        "one probability per label"
    );
    let eps = 1e-7;
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &l)| {
            let p = f64::from(p).clamp(eps, 1.0 - eps);
            if l != 0 { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / probabilities.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_hand_counted_pairs() {
        // Positives 0.8, 0.4; negatives 0.6, 0.4, 0.1. Pairs: (0.8 > all) 3, (0.4 > 0.1) 1,
        // (0.4 = 0.4) 0.5, (0.4 < 0.6) 0 => 4.5 / 6.
        let auc = auc(&[0.8, 0.6, 0.4, 0.4, 0.1], &[1, 0, 1, 0, 0]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12);
    }

    #[test]
    fn auc_of_constant_scores_is_one_half() {
        assert_eq!(auc(&[0.3; 6], &[1, 0, 0, 1, 0, 0]).unwrap(), 0.5);
    }

    #[test]
    fn single_class_is_an_error() {
        assert_eq!(auc(&[0.1, 0.2], &[0, 0]), Err(MetricError::SingleClass(0)));
        assert_eq!(auc(&[0.1, 0.2], &[1, 1]), Err(MetricError::SingleClass(1)));
    }

    #[test]
    fn log_loss_matches_hand_computation() {
        let expected = -(0.9f64.ln() + 0.8f64.ln()) / 2.0;
        assert!((log_loss(&[0.9, 0.2], &[1, 0]) - expected).abs() < 1e-7);
    }
}
