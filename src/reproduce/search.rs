//! A grid's `[search]`: per method a space of experiment keys, the number of trials and
//! the search seeds. Each trial's values come from seeded streams keyed by (search seed,
//! method, key, trial), so every row of the grid gets the same trials, a key added to a
//! space leaves the other keys' draws as they were, and the trials reproduce from the file.

use std::collections::BTreeMap;

use rand::Rng;
use serde::Deserialize;

/// How one key's values are drawn.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// `{ log_uniform = [low, high] }`: uniform in log space, 0 < low < high.
    LogUniform([f64; 2]),
    /// `{ uniform = [low, high] }`, low < high.
    Uniform([f64; 2]),
    /// `{ int = [low, high] }`: an integer from low to high, both included.
    Int([i64; 2]),
    /// `{ choice = [a, b, ...] }`: one of the listed TOML values, each equally likely.
    Choice(Vec<toml::Value>),
}

/// Floats are kept to 4 significant digits: the trials read as written, and a value
/// written in a config reproduces the trial's hash.
fn round(x: f64) -> f64 {
    format!("{x:.3e}")
        .parse()
        .expect("a formatted float parses")
}

impl Distribution {
    /// Why the distribution cannot be drawn from, if it cannot.
    fn problem(&self) -> Option<String> {
        match self {
            Distribution::LogUniform([low, high]) if !(*low > 0.0 && low < high) => Some(format!(
                "log_uniform needs 0 < low < high (got [{low}, {high}])"
            )),
            Distribution::Uniform([low, high])
                if !(low < high && low.is_finite() && high.is_finite()) =>
            {
                Some(format!("uniform needs low < high (got [{low}, {high}])"))
            }
            Distribution::Int([low, high]) if low > high => {
                Some(format!("int needs low <= high (got [{low}, {high}])"))
            }
            Distribution::Choice(values) if values.is_empty() => {
                Some("choice needs at least one value".into())
            }
            _ => None,
        }
    }

    fn draw(&self, stream: &mut crate::rng::Stream) -> toml::Value {
        match self {
            Distribution::LogUniform([low, high]) => {
                let u: f64 = stream.random();
                toml::Value::Float(round((low.ln() + u * (high.ln() - low.ln())).exp()))
            }
            Distribution::Uniform([low, high]) => {
                let u: f64 = stream.random();
                toml::Value::Float(round(low + u * (high - low)))
            }
            Distribution::Int([low, high]) => {
                toml::Value::Integer(stream.random_range(*low..=*high))
            }
            Distribution::Choice(values) => values[stream.random_range(0..values.len())].clone(),
        }
    }
}

/// The `[search]` table of a grid file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    /// Trials per method (a profile's `trials` goes over it).
    pub trials: usize,
    /// The seeds each trial runs with; they must differ from the evaluation seeds
    /// (1..=the profile's `seeds`). A profile's `search_seeds` takes the first K.
    pub seeds: Vec<u64>,
    /// The seed of the streams the trials are drawn from.
    #[serde(default)]
    pub seed: u64,
    /// Column value (a method) -> experiment key -> distribution. Columns without a space
    /// run no trials: their evaluation cells use the config as written.
    pub space: BTreeMap<String, BTreeMap<String, Distribution>>,
}

/// One trial's values: (key, value) in key order.
pub type Values = Vec<(String, toml::Value)>;

impl Search {
    /// Why the table cannot be searched, naming the key at fault.
    pub fn problem(&self) -> Option<String> {
        if self.trials == 0 {
            return Some("[search] trials must be at least 1".into());
        }
        if self.seeds.is_empty() {
            return Some("[search] seeds must list at least one seed".into());
        }
        for (method, space) in &self.space {
            if space.is_empty() {
                return Some(format!("[search.space.{method}] has no keys"));
            }
            for (key, distribution) in space {
                if let Some(problem) = distribution.problem() {
                    return Some(format!("[search.space.{method}] {key}: {problem}"));
                }
            }
        }
        None
    }

    /// Trial `trial`'s (counted from 1) values for `method`, the same for every row; none
    /// when the method has no space.
    pub fn values(&self, method: &str, trial: usize) -> Option<Values> {
        let space = self.space.get(method)?;
        Some(
            space
                .iter()
                .map(|(key, distribution)| {
                    let mut stream = crate::rng::stream(
                        self.seed,
                        &format!("search/{method}/{key}"),
                        trial as u64,
                    );
                    (key.clone(), distribution.draw(&mut stream))
                })
                .collect(),
        )
    }
}

/// A value as an override writes it: floats in exponent form outside 1e-4..1e6 (TOML
/// floats either way), arrays item by item, the rest as TOML writes it.
fn render(value: &toml::Value) -> String {
    match value {
        toml::Value::Float(x) if *x != 0.0 && !(1e-4..1e6).contains(&x.abs()) => format!("{x:e}"),
        toml::Value::Float(x) => {
            let plain = x.to_string();
            if plain.contains(['.', 'e', 'i', 'N']) {
                plain
            } else {
                format!("{plain}.0")
            }
        }
        toml::Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(render).collect::<Vec<_>>().join(", ")
            )
        }
        other => other.to_string(),
    }
}

/// The `--set` overrides of a trial's values.
pub fn sets(values: &Values) -> Vec<String> {
    values
        .iter()
        .map(|(k, v)| format!("{k}={}", render(v)))
        .collect()
}

/// A trial's values as one line, e.g. `optim.lr=0.0003162, adapt.critic_inputs="released"`.
pub fn describe(values: &Values) -> String {
    sets(values).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(text: &str) -> Search {
        toml::from_str(text).unwrap()
    }

    const SPACE: &str = "trials = 50\nseeds = [101, 102]\nseed = 7\n\
        [space.daa]\n\"optim.lr\" = { log_uniform = [1e-5, 1e-2] }\n\
        \"adapt.weights.adversarial\" = { uniform = [0.5, 2.0] }\n\
        \"train.steps_per_epoch\" = { int = [5, 8] }\n\
        \"adapt.critic.betas\" = { choice = [[0.9, 0.999], [0.0, 0.9]] }\n";

    #[test]
    fn trials_reproduce_stay_in_their_ranges_and_do_not_depend_on_other_keys() {
        let s = search(SPACE);
        assert_eq!(s.problem(), None);
        let mut seen_ints = std::collections::BTreeSet::new();
        let mut seen_betas = std::collections::BTreeSet::new();
        for trial in 1..=s.trials {
            let values = s.values("daa", trial).unwrap();
            assert_eq!(values, s.values("daa", trial).unwrap());
            let get = |k: &str| values.iter().find(|(key, _)| key == k).unwrap().1.clone();
            let lr = get("optim.lr").as_float().unwrap();
            assert!((1e-5..=1e-2).contains(&lr), "{lr}");
            // Four significant digits.
            assert_eq!(format!("{lr:.3e}").parse::<f64>().unwrap(), lr);
            let w = get("adapt.weights.adversarial").as_float().unwrap();
            assert!((0.5..=2.0).contains(&w), "{w}");
            let steps = get("train.steps_per_epoch").as_integer().unwrap();
            assert!((5..=8).contains(&steps));
            seen_ints.insert(steps);
            seen_betas.insert(get("adapt.critic.betas").to_string());
        }
        // Both ends of the integer range and both choices come up in 50 draws.
        assert_eq!(seen_ints.into_iter().collect::<Vec<_>>(), [5, 6, 7, 8]);
        assert_eq!(seen_betas.len(), 2);
        // Distinct trials differ; another stream seed draws other trials.
        assert_ne!(s.values("daa", 1), s.values("daa", 2));
        let other = search(&SPACE.replace("seed = 7", "seed = 8"));
        assert_ne!(s.values("daa", 1), other.values("daa", 1));
        // Removing a key leaves the others' draws as they were.
        let fewer = search(&SPACE.replace("\"train.steps_per_epoch\" = { int = [5, 8] }\n", ""));
        let lr = |s: &Search| s.values("daa", 3).unwrap()[2].clone();
        assert_eq!(lr(&s).0, "optim.lr");
        assert_eq!(lr(&s), fewer.values("daa", 3).unwrap()[2]);
        assert_eq!(s.values("finetune", 1), None);
    }

    #[test]
    fn log_uniform_draws_are_uniform_in_log_space() {
        let s = search(
            "trials = 2000\nseeds = [9]\n[space.m]\n\"optim.lr\" = { log_uniform = [1e-4, 1e-2] }\n",
        );
        let below = (1..=s.trials)
            .filter(|&t| s.values("m", t).unwrap()[0].1.as_float().unwrap() < 1e-3)
            .count();
        // Half of the mass lies below the geometric mean 1e-3: 1000 ± 3 binomial sd (22).
        assert!((934..=1066).contains(&below), "{below}");
    }

    #[test]
    fn sets_write_values_that_overrides_read_back() {
        let values: Values = vec![
            (
                "adapt.critic.betas".into(),
                toml::Value::Array(vec![0.0.into(), 0.9.into()]),
            ),
            (
                "adapt.critic_inputs".into(),
                toml::Value::String("released".into()),
            ),
            ("optim.lr".into(), toml::Value::Float(3.162e-4)),
            ("train.lr".into(), toml::Value::Float(1e30)),
            ("a.b".into(), toml::Value::Float(2.0)),
            ("a.c".into(), toml::Value::Float(-1.5e-7)),
            ("a.d".into(), toml::Value::Integer(3)),
        ];
        let sets = sets(&values);
        for (set, (key, value)) in sets.iter().zip(&values) {
            let (k, v) = crate::config::parse_set(set).unwrap();
            assert_eq!((&k, &v), (key, value));
        }
        assert_eq!(sets[2], "optim.lr=0.0003162");
        assert_eq!(sets[3], "train.lr=1e30");
        assert_eq!(sets[4], "a.b=2.0");
        assert_eq!(sets[5], "a.c=-1.5e-7");
        assert_eq!(sets[0], "adapt.critic.betas=[0.0, 0.9]");
    }

    #[test]
    fn bad_spaces_are_named() {
        let problem = |space: &str| {
            search(&format!("trials = 2\nseeds = [5]\n[space.daa]\n{space}\n"))
                .problem()
                .unwrap()
        };
        assert_eq!(
            problem("\"optim.lr\" = { log_uniform = [0.0, 1.0] }"),
            "[search.space.daa] optim.lr: log_uniform needs 0 < low < high (got [0, 1])"
        );
        assert!(problem("\"a.b\" = { uniform = [2.0, 1.0] }").contains("uniform needs low < high"));
        assert!(problem("\"a.b\" = { int = [3, 1] }").contains("int needs low <= high"));
        assert!(problem("\"a.b\" = { choice = [] }").contains("at least one value"));
        let unknown = toml::from_str::<Search>(
            "trials = 2\nseeds = [5]\n[space.daa]\n\"a.b\" = { loguniform = [1.0, 2.0] }\n",
        );
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown variant `loguniform`")
        );
    }
}
