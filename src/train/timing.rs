//! Where a run's seconds go, by phase: result.json's `timing`, whose values add up to its
//! `wall_seconds` (over every session of the run), `other` holding what no phase measured.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Seconds by phase. The phases of a run: `data` (opening the data sets and the split),
/// `source_model` (pretraining the source model, or finding it), `setup` (the model, the
/// method and the probe), `training` (the target model's forward and backward passes and
/// optimiser steps), the method's own parts (`critic_steps`, `frozen_features`),
/// `diagnostics_gradient_ratio`, `diagnostics_probe`, `validation`, `checkpoints`,
/// `records` (metrics.jsonl, TensorBoard, curves.svg), `test`, and `other`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Timing(pub BTreeMap<String, f64>);

impl Timing {
    pub fn add(&mut self, phase: &str, seconds: f64) {
        *self.0.entry(phase.to_string()).or_default() += seconds;
    }

    /// Each phase of `self` and `more` summed.
    pub fn merged(&self, more: &Timing) -> Timing {
        let mut out = self.clone();
        for (phase, seconds) in &more.0 {
            out.add(phase, *seconds);
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn total(&self) -> f64 {
        self.0.values().sum()
    }

    /// The phases with `other` for what `wall` seconds hold beyond them: the values then add
    /// up to `wall`.
    pub fn closed(&self, wall: f64) -> Timing {
        let mut out = self.clone();
        out.0.remove("other");
        let other = wall - out.total();
        out.0.insert("other".into(), other);
        out
    }

    /// The `n` largest phases as text, largest first: `training 62%, critic_steps 21%`.
    pub fn describe_largest(&self, n: usize) -> String {
        let shares: Vec<String> = self
            .largest(n)
            .into_iter()
            .map(|(phase, share)| format!("{phase} {:.0}%", 100.0 * share))
            .collect();
        shares.join(", ")
    }

    /// The `n` largest phases with their shares of the whole, largest first.
    pub fn largest(&self, n: usize) -> Vec<(String, f64)> {
        let total = self.total().max(f64::MIN_POSITIVE);
        let mut shares: Vec<(String, f64)> = self
            .0
            .iter()
            .map(|(phase, seconds)| (phase.clone(), seconds / total))
            .collect();
        shares.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        shares.truncate(n);
        shares
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_add_up_to_the_wall_time_with_other_and_rank_by_share() {
        let mut t = Timing::default();
        t.add("training", 6.0);
        t.add("validation", 1.0);
        t.add("training", 2.0);
        let earlier = Timing(BTreeMap::from([("data".to_string(), 0.5)]));
        let closed = t.merged(&earlier).closed(10.0);
        assert_eq!(closed.0["training"], 8.0);
        assert_eq!(closed.0["other"], 0.5);
        assert_eq!(closed.total(), 10.0);
        assert_eq!(
            closed.largest(2),
            vec![
                ("training".to_string(), 0.8),
                ("validation".to_string(), 0.1)
            ]
        );
        // Closing again replaces `other`.
        assert_eq!(closed.closed(12.0).0["other"], 2.5);
    }
}
