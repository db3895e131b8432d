//! The synthetic multi-domain generator, the embedded default data set.
//!
//! One world (seeded) holds a ground-truth label function shared by every domain: per-field
//! category effects, low-rank field interactions (click only), and a small random network
//! over the numerical columns. Each domain shifts the world: its category marginals and
//! numerical distributions (covariate shift, large) and its label effects and base rates
//! (concept shift, smaller). Labels are drawn from known probabilities, which every row
//! keeps, so the oracle AUC of each domain is known.

use std::path::{Path, PathBuf};

use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::table::{Header, Rows, TableWriter, ordered};
use super::vecmath::{sigmoid, tanh};
use super::{DataError, Schema, Table};
use crate::config::check::{self, Invalid, Validate};
use crate::rng;

mod shift;
pub use shift::Shift;

/// Bump when the generator's output changes: cached domains are then rebuilt.
pub const GENERATOR_VERSION: u32 = 2;
const LATENT: usize = 4;
const HIDDEN: usize = 16;
const CHUNK_ROWS: usize = 1 << 15;
/// Base rate of the first label (CTR), and of each later label given the previous one.
const FIRST_RATE: f64 = 0.04;
const NEXT_RATE: f64 = 0.06;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Seconds to build: for tests.
    Smoke,
    /// The default: minutes of training on a laptop CPU.
    Cpu,
    /// Of the order of the real data set.
    Paper,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A large domain to pretrain on.
    Source,
    /// A domain whose training rows are made scarce.
    Target,
}

/// One domain of the synthetic multi-domain generator, built on first use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SyntheticConfig {
    pub schema: Schema,
    /// The domain's name: it seeds the domain's covariate and concept shift.
    pub domain: String,
    pub role: Role,
    pub profile: Profile,
    /// Seed of the generator's world (shared label function and all domains).
    pub seed: u64,
    /// Where generated domains are cached: as written, relative to the entry's file;
    /// absolute once resolved.
    pub dir: PathBuf,
    /// A controlled shift away from another domain (the shift study's targets); absent
    /// for the embedded domains, which shift from the world by their name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<Shift>,
}

impl Validate for SyntheticConfig {
    fn validate(&self) -> Result<(), Invalid> {
        self.schema.validate_as_field()?;
        check::ensure(
            !self.domain.is_empty()
                && self
                    .domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "domain",
            "must be a plain name such as nl",
        )?;
        if let Some(shift) = &self.shift {
            for (kind, m) in shift.magnitudes() {
                check::ensure(
                    (0.0..=1.0).contains(&m),
                    &format!("shift.{kind}"),
                    "must be a magnitude in [0, 1]",
                )?;
            }
        }
        Ok(())
    }

    fn paths_mut(&mut self) -> Vec<(&'static str, &mut PathBuf)> {
        vec![("dir", &mut self.dir)]
    }
}

/// Rows of (train, test) for a domain of `role` under `profile`.
pub fn sizes(profile: Profile, role: Role) -> (usize, usize) {
    match (profile, role) {
        (Profile::Smoke, Role::Source) => (40_000, 5_000),
        (Profile::Smoke, Role::Target) => (20_000, 10_000),
        (Profile::Cpu, Role::Source) => (500_000, 50_000),
        (Profile::Cpu, Role::Target) => (200_000, 100_000),
        (Profile::Paper, Role::Source) => (20_000_000, 2_000_000),
        (Profile::Paper, Role::Target) => (4_000_000, 2_000_000),
    }
}

fn normal(stream: &mut rng::Stream, std: f32) -> f32 {
    std * stream.sample::<f32, _>(StandardNormal)
}

fn normals(stream: &mut rng::Stream, n: usize, std: f32) -> Vec<f32> {
    (0..n).map(|_| normal(stream, std)).collect()
}

/// The label function and the neutral feature distributions, shared by all domains.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    cardinalities: Vec<u32>,
    numerical: usize,
    tasks: usize,
    cascade: bool,
    /// [field][category] logits of the category marginals.
    popularity: Vec<Vec<f32>>,
    /// [task][field][category] additive effects on each task's logit.
    effects: Vec<Vec<Vec<f32>>>,
    /// [field][category * LATENT] factors of the click interactions.
    latent: Vec<Vec<f32>>,
    location: Vec<f32>,
    scale: Vec<f32>,
    zero: Vec<f32>,
    /// [numerical][HIDDEN]: column j holds every hidden unit's weight on input j.
    w1: Vec<f32>,
    b1: Vec<f32>,
    /// [task][HIDDEN]
    w2: Vec<Vec<f32>>,
    bias: Vec<f32>,
}

impl World {
    pub fn new(schema: &Schema, seed: u64) -> Self {
        let s = &mut rng::stream(seed, "synthetic/world", 0);
        let cardinalities = schema.categorical.cardinalities.clone();
        let numerical = schema.numerical_names().len();
        let tasks = schema.labels.len();
        let popularity = cardinalities
            .iter()
            .map(|&c| (0..c).map(|i| normal(s, 1.0) - 0.1 * i as f32).collect())
            .collect();
        let first: Vec<Vec<f32>> = cardinalities
            .iter()
            .map(|&c| normals(s, c as usize, 0.4))
            .collect();
        let mut effects = vec![first.clone()];
        for _ in 1..tasks {
            effects.push(
                first
                    .iter()
                    .map(|f| f.iter().map(|&e| 0.5 * e + normal(s, 0.3)).collect())
                    .collect(),
            );
        }
        let latent = cardinalities
            .iter()
            .map(|&c| normals(s, c as usize * LATENT, 0.15))
            .collect();
        let location = normals(s, numerical, 1.0).iter().map(|l| l - 1.0).collect();
        let scale = (0..numerical).map(|_| s.random_range(0.5..1.5)).collect();
        let zero = (0..numerical).map(|_| s.random_range(0.0..0.6)).collect();
        let w1_std = 1.5 / ((numerical as f32 * 0.3).sqrt().max(1.0));
        let w1 = normals(s, numerical * HIDDEN, w1_std);
        let b1 = normals(s, HIDDEN, 0.5);
        let w2 = (0..tasks)
            .map(|_| normals(s, HIDDEN, 1.2 / (HIDDEN as f32).sqrt()))
            .collect();
        let mut world = World {
            cardinalities,
            numerical,
            tasks,
            cascade: schema.cascade,
            popularity,
            effects,
            latent,
            location,
            scale,
            zero,
            w1,
            b1,
            w2,
            bias: vec![0.0; tasks],
        };
        world.bias = world.calibrated_bias(seed);
        world
    }

    /// Per-task biases that give the neutral domain its target base rates.
    fn calibrated_bias(&self, seed: u64) -> Vec<f32> {
        let neutral = Domain::neutral(self);
        let mut s = rng::stream(seed, "synthetic/calibrate", 0);
        let mut logits = vec![Vec::new(); self.tasks];
        let mut row = RowBuffers::new(self);
        for _ in 0..20_000 {
            neutral.features(&mut s, &mut row);
            for (t, l) in logits.iter_mut().enumerate() {
                l.push(neutral.logit(t, &row));
            }
        }
        logits
            .iter()
            .enumerate()
            .map(|(t, z)| {
                let target = if t == 0 || !self.cascade {
                    FIRST_RATE
                } else {
                    NEXT_RATE
                };
                let (mut lo, mut hi) = (-20.0f32, 20.0f32);
                for _ in 0..50 {
                    let mid = 0.5 * (lo + hi);
                    let mean = z.iter().map(|&x| f64::from(sigmoid(x + mid))).sum::<f64>()
                        / z.len() as f64;
                    if mean < target { lo = mid } else { hi = mid }
                }
                0.5 * (lo + hi)
            })
            .collect()
    }
}

/// One domain: the world with its shifts applied.
#[derive(Debug, Clone)]
pub struct Domain {
    world: World,
    /// [field] cumulative category probabilities.
    cdf: Vec<Vec<f32>>,
    /// [field][category]: the index a row shows for each category (representation shift).
    shown: Vec<Vec<u32>>,
    /// [numerical]: whether a column shows 1 - x (representation shift).
    mirrored: Vec<bool>,
}

struct RowBuffers {
    categories: Vec<u32>,
    numbers: Vec<f32>,
    zeroed: Vec<bool>,
    hidden: Vec<f32>,
}

impl RowBuffers {
    fn new(world: &World) -> Self {
        RowBuffers {
            categories: vec![0; world.cardinalities.len()],
            numbers: vec![0.0; world.numerical],
            zeroed: vec![false; world.numerical],
            hidden: vec![0.0; HIDDEN],
        }
    }
}

impl Domain {
    fn neutral(world: &World) -> Self {
        let cdf = world
            .popularity
            .iter()
            .map(|logits| cumulative(logits))
            .collect();
        Domain::with(world.clone(), cdf)
    }

    fn with(world: World, cdf: Vec<Vec<f32>>) -> Self {
        Domain {
            shown: world
                .cardinalities
                .iter()
                .map(|&c| (0..c).collect())
                .collect(),
            mirrored: vec![false; world.numerical],
            world,
            cdf,
        }
    }

    /// The domain `name` of `world`: covariate shift (marginals, numerical distributions)
    /// and a smaller concept shift (label effects, base rates, numerical response).
    pub fn new(world: &World, seed: u64, name: &str) -> Self {
        let s = &mut rng::stream(seed, &format!("synthetic/domain/{name}"), 0);
        let mut w = world.clone();
        for logits in &mut w.popularity {
            logits.iter_mut().for_each(|l| *l += normal(s, 0.7));
        }
        w.location.iter_mut().for_each(|l| *l += normal(s, 0.6));
        w.zero
            .iter_mut()
            .for_each(|z| *z = (*z + normal(s, 0.1)).clamp(0.0, 0.95));
        for task in &mut w.effects {
            task.iter_mut()
                .flatten()
                .for_each(|e| *e += normal(s, 0.15));
        }
        w.w2.iter_mut().flatten().for_each(|v| *v += normal(s, 0.1));
        w.bias.iter_mut().for_each(|b| *b += normal(s, 0.15));
        let cdf = w
            .popularity
            .iter()
            .map(|logits| cumulative(logits))
            .collect();
        Domain::with(w, cdf)
    }

    fn features(&self, s: &mut rng::Stream, row: &mut RowBuffers) {
        let w = &self.world;
        for (f, cdf) in self.cdf.iter().enumerate() {
            let u: f32 = s.random();
            row.categories[f] =
                (cdf.partition_point(|&p| p < u) as u32).min(w.cardinalities[f] - 1);
        }
        for j in 0..w.numerical {
            row.zeroed[j] = s.random::<f32>() < w.zero[j];
            row.numbers[j] = w.location[j] + w.scale[j] * s.sample::<f32, _>(StandardNormal);
        }
        // Branch-free loops over whole rows, so that they vectorise.
        for (x, &zeroed) in row.numbers.iter_mut().zip(&row.zeroed) {
            let v = sigmoid(*x);
            *x = if zeroed { 0.0 } else { v };
        }
        let mut hidden = [0f32; HIDDEN];
        hidden.copy_from_slice(&w.b1);
        for (column, &x) in w.w1.chunks_exact(HIDDEN).zip(&row.numbers) {
            let column: &[f32; HIDDEN] = column.try_into().expect("HIDDEN-wide columns");
            for (h, &weight) in hidden.iter_mut().zip(column) {
                *h += weight * x;
            }
        }
        for (out, h) in row.hidden.iter_mut().zip(hidden) {
            *out = tanh(h);
        }
    }

    fn logit(&self, task: usize, row: &RowBuffers) -> f32 {
        let w = &self.world;
        let mut z = w.bias[task]
            + w.w2[task]
                .iter()
                .zip(&row.hidden)
                .map(|(a, b)| a * b)
                .sum::<f32>();
        for (f, &c) in row.categories.iter().enumerate() {
            z += w.effects[task][f][c as usize];
        }
        if task == 0 {
            let mut total = [0f32; LATENT];
            let mut squares = 0f32;
            for (f, &c) in row.categories.iter().enumerate() {
                let v = &w.latent[f][c as usize * LATENT..(c as usize + 1) * LATENT];
                for k in 0..LATENT {
                    total[k] += v[k];
                    squares += v[k] * v[k];
                }
            }
            z += 0.5 * (total.iter().map(|t| t * t).sum::<f32>() - squares);
        }
        z
    }

    /// Generates rows `chunk * CHUNK_ROWS ..` (at most `n`) of the stream `purpose`.
    fn chunk(&self, seed: u64, purpose: &str, chunk: usize, n: usize) -> Rows {
        let w = &self.world;
        let s = &mut rng::stream(seed, purpose, chunk as u64);
        let mut row = RowBuffers::new(w);
        let mut rows = Rows::default();
        let mut labels = vec![0u8; w.tasks];
        let mut probabilities = vec![0f32; w.tasks];
        for _ in 0..n {
            self.features(s, &mut row);
            for t in 0..w.tasks {
                let q = sigmoid(self.logit(t, &row));
                let chained = t > 0 && w.cascade;
                probabilities[t] = if chained { probabilities[t - 1] * q } else { q };
                let hit = s.random::<f32>() < q;
                labels[t] = u8::from(if chained {
                    labels[t - 1] == 1 && hit
                } else {
                    hit
                });
            }
            // The label function saw the categories and numbers; a representation shift
            // changes only what the row shows of them.
            rows.categorical.extend(
                row.categories
                    .iter()
                    .zip(&self.shown)
                    .map(|(&c, shown)| shown[c as usize]),
            );
            rows.numerical.extend(
                row.numbers
                    .iter()
                    .zip(&self.mirrored)
                    .map(|(&x, &mirror)| if mirror { 1.0 - x } else { x }),
            );
            rows.labels.extend_from_slice(&labels);
            rows.probabilities.extend_from_slice(&probabilities);
        }
        rows
    }
}

fn cumulative(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = weights.iter().sum();
    weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w / total;
            Some(*acc)
        })
        .collect()
}

/// Where a synthetic domain's splits live.
pub fn domain_dir(config: &SyntheticConfig) -> PathBuf {
    let profile = serde_json::to_value(config.profile).expect("profiles serialize");
    config
        .dir
        .join(profile.as_str().unwrap_or("profile"))
        .join(format!("seed{}", config.seed))
        .join(match &config.shift {
            None => config.domain.clone(),
            Some(shift) => format!(
                "{}-{}",
                config.domain,
                crate::digest::sha256_short(serde_json::to_vec(shift).expect("shifts serialize"))
            ),
        })
}

/// What a domain's rows depend on (not where they are stored).
fn recipe(config: &SyntheticConfig) -> String {
    let mut value = serde_json::to_value(config).expect("synthetic configs serialize");
    value
        .as_object_mut()
        .expect("a config is an object")
        .remove("dir");
    let json = serde_json::to_vec(&value).expect("JSON values serialize");
    format!(
        "synthetic v{GENERATOR_VERSION} {}",
        crate::digest::sha256_short(json)
    )
}

/// The (train, test) tables of a synthetic domain, generated if missing or stale.
pub fn ensure(config: &SyntheticConfig) -> Result<(Table, Table), DataError> {
    let dir = domain_dir(config);
    let source = recipe(config);
    let paths = [dir.join("train.table"), dir.join("test.table")];
    // Tables that are there and current are read without the writer's lock (each is
    // checksummed and written by a rename), so that data on read-only storage serves.
    let current = |p: &Path| Table::open(p).ok().filter(|t| t.header.source == source);
    if let (Some(train), Some(test)) = (current(&paths[0]), current(&paths[1])) {
        return Ok((train, test));
    }
    let _lock = crate::lock::lock_dir(&dir, "this synthetic domain")?;
    let fresh = |p: &Path| match Table::open(p) {
        Ok(t) => Some(t).filter(|t| t.header.source == source),
        Err(DataError::Corrupt { message, .. }) => {
            tracing::warn!(table = %p.display(), "generated table unusable ({message}): generating it again");
            None
        }
        Err(_) => None,
    };
    if let (Some(train), Some(test)) = (fresh(&paths[0]), fresh(&paths[1])) {
        return Ok((train, test));
    }
    tracing::info!(domain = %config.domain, dir = %dir.display(), "generating synthetic domain");
    let (train_rows, test_rows) = sizes(config.profile, config.role);
    for (path, split, rows) in [
        (&paths[0], "train", train_rows),
        (&paths[1], "test", test_rows),
    ] {
        generate(config, split, rows, path)?;
    }
    Ok((Table::open(&paths[0])?, Table::open(&paths[1])?))
}

/// Writes `rows` rows of split `split` of the domain of `config` as a table at `path`.
pub fn generate(
    config: &SyntheticConfig,
    split: &str,
    rows: usize,
    path: &Path,
) -> Result<(), DataError> {
    let source = recipe(config);
    let mut writer = TableWriter::create(path, Header::new(&config.schema, true, source), rows)?;
    generate_rows(config, split, rows, |part| writer.append(&part))?;
    writer.finish()?;
    Ok(())
}

/// Generates `rows` rows of split `split` of the domain of `config`, in parallel pieces
/// handed to `consume` in order.
pub fn generate_rows<E: Send>(
    config: &SyntheticConfig,
    split: &str,
    rows: usize,
    consume: impl FnMut(Rows) -> Result<(), E> + Send,
) -> Result<(), E> {
    let world = World::new(&config.schema, config.seed);
    let domain = match &config.shift {
        None => Domain::new(&world, config.seed, &config.domain),
        Some(shift) => Domain::new(&world, config.seed, &shift.base).shifted(config.seed, shift),
    };
    let purpose = format!("synthetic/rows/{}/{split}", config.domain);
    let chunks: Vec<usize> = (0..rows.div_ceil(CHUNK_ROWS)).collect();
    ordered(
        &chunks,
        |&c| {
            domain.chunk(
                config.seed,
                &purpose,
                c,
                CHUNK_ROWS.min(rows - c * CHUNK_ROWS),
            )
        },
        consume,
    )
}
