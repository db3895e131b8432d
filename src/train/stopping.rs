//! Early stopping on a validation score, for source pretraining and target training alike.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EarlyStopping {
    /// The epoch (counted from 1) with the best score so far.
    pub best_epoch: Option<usize>,
    pub best_score: f64,
    /// Epochs since the best one.
    pub bad_epochs: usize,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            best_epoch: None,
            best_score: f64::NEG_INFINITY,
            bad_epochs: 0,
        }
    }
}

impl EarlyStopping {
    /// Records `epoch`'s score; true when it is the best so far (keep this model).
    pub fn observe(&mut self, epoch: usize, score: f64) -> bool {
        if score > self.best_score {
            (self.best_score, self.best_epoch, self.bad_epochs) = (score, Some(epoch), 0);
            true
        } else {
            self.bad_epochs += 1;
            false
        }
    }

    /// Whether `patience` epochs in a row brought no improvement.
    pub fn exhausted(&self, patience: usize) -> bool {
        self.bad_epochs >= patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_epoch_is_kept_and_patience_counts_epochs_without_improvement() {
        let mut s = EarlyStopping::default();
        let seen: Vec<bool> = [(1, 0.6), (2, 0.7), (3, 0.7), (4, 0.65)]
            .iter()
            .map(|&(e, score)| s.observe(e, score))
            .collect();
        assert_eq!(seen, [true, true, false, false]);
        assert_eq!(
            (s.best_epoch, s.best_score, s.bad_epochs),
            (Some(2), 0.7, 2)
        );
        assert!(s.exhausted(2) && !s.exhausted(3));
        assert!(s.observe(5, 0.71) && !s.exhausted(1));
    }
}
