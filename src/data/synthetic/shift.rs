//! Controlled shifts of a synthetic domain, by kind and magnitude, for the shift study.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::{Domain, cumulative, normal};
use crate::rng;

/// Shifts of a domain away from `base`, by kind, each of magnitude in [0, 1]: 0 leaves
/// `base`'s distribution as it is (same marginals, same label function); 1 is a large
/// shift. Each kind draws its direction once (from the world's seed and the kind, not the
/// magnitude), so magnitudes of one kind lie on one path, and moves only what it names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    /// The domain shifted from, e.g. `ru` (the source).
    pub base: String,
    /// Category marginals and numerical distributions (P(x)); the label function stays.
    #[serde(default)]
    pub covariate: f32,
    /// The label function (category effects, interactions, numerical response); P(x) stays.
    #[serde(default)]
    pub concept: f32,
    /// The same semantics behind other raw features: this share of each field's categories
    /// swap their indices, this share of the numerical columns are mirrored (x -> 1 - x).
    #[serde(default)]
    pub representation: f32,
    /// The base rates (each task's bias), nothing else.
    #[serde(default)]
    pub prior: f32,
}

impl Shift {
    pub(super) fn magnitudes(&self) -> [(&'static str, f32); 4] {
        [
            ("covariate", self.covariate),
            ("concept", self.concept),
            ("representation", self.representation),
            ("prior", self.prior),
        ]
    }
}

impl Domain {
    /// This domain moved by `shift` (see [`Shift`]); the noise of each kind is drawn
    /// whatever its magnitude, so that a magnitude scales one fixed direction.
    pub fn shifted(&self, seed: u64, shift: &Shift) -> Self {
        let mut w = self.world.clone();
        let stream = |kind: &str| rng::stream(seed, &format!("synthetic/shift/{kind}"), 0);
        let m = shift.covariate;
        let s = &mut stream("covariate");
        for logits in &mut w.popularity {
            logits.iter_mut().for_each(|l| *l += m * normal(s, 1.0));
        }
        w.location.iter_mut().for_each(|l| *l += m * normal(s, 0.8));
        w.zero
            .iter_mut()
            .for_each(|z| *z = (*z + m * normal(s, 0.15)).clamp(0.0, 0.95));
        let m = shift.concept;
        let s = &mut stream("concept");
        for task in &mut w.effects {
            task.iter_mut()
                .flatten()
                .for_each(|e| *e += m * normal(s, 0.4));
        }
        w.latent
            .iter_mut()
            .flatten()
            .for_each(|v| *v += m * normal(s, 0.1));
        w.w2.iter_mut()
            .flatten()
            .for_each(|v| *v += m * normal(s, 0.4));
        let m = shift.prior;
        let s = &mut stream("prior");
        // A logit of 1 moves a 4% base rate to 2% or 10%.
        w.bias.iter_mut().for_each(|b| {
            *b += m * if s.random::<bool>() { 1.0 } else { -1.0 };
        });
        let cdf = w
            .popularity
            .iter()
            .map(|logits| cumulative(logits))
            .collect();
        let mut domain = Domain::with(w, cdf);
        let m = shift.representation;
        let s = &mut stream("representation");
        for shown in &mut domain.shown {
            let mut order: Vec<u32> = (0..shown.len() as u32).collect();
            order.shuffle(s);
            // The first share of a fixed random order swap places in a cycle.
            let moved = &order[..(m * order.len() as f32).round() as usize];
            for (i, &c) in moved.iter().enumerate() {
                shown[c as usize] = moved[(i + 1) % moved.len()];
            }
        }
        let mut columns: Vec<usize> = (0..domain.mirrored.len()).collect();
        columns.shuffle(s);
        let mirrored = (m * columns.len() as f32).round() as usize;
        for &j in &columns[..mirrored] {
            domain.mirrored[j] = true;
        }
        domain
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Domain, World};
    use super::*;
    use crate::data::Schema;

    fn schema() -> Schema {
        serde_json::from_value(serde_json::json!({
            "id": null,
            "categorical": {"names": ["a", "b", "c"], "prefix": null, "cardinalities": [5, 40, 2]},
            "numerical": {"names": null, "prefix": "x", "count": 6},
            "labels": ["click", "buy"],
            "cascade": true,
            "oov": "error",
        }))
        .unwrap()
    }

    fn shift(kind: &str, m: f32) -> Shift {
        let mut spec = serde_json::json!({"base": "ru"});
        if kind != "none" {
            spec[kind] = m.into();
        }
        serde_json::from_value(spec).unwrap()
    }

    /// Which parts of a domain differ from `base`'s.
    fn moved(base: &Domain, other: &Domain) -> Vec<&'static str> {
        let (a, b) = (&base.world, &other.world);
        [
            ("popularity", a.popularity != b.popularity),
            (
                "numerical distributions",
                a.location != b.location || a.zero != b.zero,
            ),
            (
                "label function",
                a.effects != b.effects || a.latent != b.latent || a.w2 != b.w2,
            ),
            ("base rates", a.bias != b.bias),
            (
                "representation",
                base.shown != other.shown || base.mirrored != other.mirrored,
            ),
        ]
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| name)
        .collect()
    }

    #[test]
    fn magnitude_zero_is_the_base_and_each_kind_moves_only_what_it_names() {
        let world = World::new(&schema(), 3);
        let base = Domain::new(&world, 3, "ru");
        let zero = base.shifted(3, &shift("none", 0.0));
        assert!(moved(&base, &zero).is_empty());
        for (kind, expected) in [
            ("covariate", vec!["popularity", "numerical distributions"]),
            ("concept", vec!["label function"]),
            ("prior", vec!["base rates"]),
            ("representation", vec!["representation"]),
        ] {
            for m in [0.25, 0.5, 1.0] {
                let other = base.shifted(3, &shift(kind, m));
                assert_eq!(moved(&base, &other), expected, "{kind} {m}");
            }
            assert!(moved(&base, &base.shifted(3, &shift(kind, 0.0))).is_empty());
        }
    }

    #[test]
    fn a_magnitude_scales_one_direction() {
        let world = World::new(&schema(), 3);
        let base = Domain::new(&world, 3, "ru");
        let step = |m: f32| {
            let d = base.shifted(3, &shift("concept", m));
            d.world.effects[0][1][7] - base.world.effects[0][1][7]
        };
        assert!(step(1.0).abs() > 0.0);
        assert!((step(0.5) - 0.5 * step(1.0)).abs() < 1e-6);
        assert!((step(0.25) - 0.25 * step(1.0)).abs() < 1e-6);
    }

    #[test]
    fn a_representation_shift_relabels_a_share_of_categories_one_to_one() {
        let world = World::new(&schema(), 3);
        let base = Domain::new(&world, 3, "ru");
        for m in [0.25, 0.5, 1.0] {
            let d = base.shifted(3, &shift("representation", m));
            let field = &d.shown[1];
            let mut sorted = field.clone();
            sorted.sort();
            assert_eq!(sorted, (0..40).collect::<Vec<u32>>(), "a permutation");
            let moved = field
                .iter()
                .enumerate()
                .filter(|(c, s)| *c as u32 != **s)
                .count();
            assert_eq!(moved, (m * 40.0).round() as usize, "{m}");
            let mirrored = d.mirrored.iter().filter(|&&x| x).count();
            assert_eq!(mirrored, (m * 6.0).round() as usize);
        }
    }
}
