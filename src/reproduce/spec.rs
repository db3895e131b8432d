//! A reproduction file (`reproduce/NAME.toml`): the grid of cells, each an ordinary
//! experiment (a config from configs/ plus overrides), the profiles, and what the paper
//! published.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Set;
use serde::Deserialize;

/// One axis of the grid: plain values substituted into the templates, or named values
/// each with its own `--set` overrides.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Axis {
    Values(Vec<String>),
    Named(BTreeMap<String, Vec<String>>),
}

impl Axis {
    fn entries(&self) -> Vec<(String, Vec<String>)> {
        match self {
            Axis::Values(values) => values.iter().map(|v| (v.clone(), Vec::new())).collect(),
            Axis::Named(named) => named.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub seeds: usize,
    /// sbatch options of this profile's array tasks, over the grid's `[slurm]` table
    /// (e.g. `paper = { seeds = 5, slurm = { gres = "gpu:1" } }`).
    #[serde(default)]
    pub slurm: Option<Slurm>,
    /// Trials per method under this profile, over `[search] trials`.
    #[serde(default)]
    pub trials: Option<usize>,
    /// How many of `[search] seeds` (the first K) this profile's trials run with.
    #[serde(default)]
    pub search_seeds: Option<usize>,
}

/// A published result of the paper, as stated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The cell row it concerns (e.g. "mmoe"), matched against the row label's start.
    pub row: String,
    pub method: String,
    pub over: String,
    /// Relative AUC gain, e.g. 0.0685 for +6.85%.
    pub relative_gain: f64,
    pub note: String,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Plot {
    /// One group of bars per row, one bar per column.
    #[default]
    Bars,
    /// One panel per swept parameter (columns named `parameter=value`), one line per row.
    Lines,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub title: String,
    pub description: String,
    /// Axis name -> values, in order; the grid is their cartesian product.
    pub axes: BTreeMap<String, Axis>,
    /// The order in which axes nest (the first varies slowest).
    pub order: Vec<String>,
    /// The experiment config of a cell, with `{axis}` placeholders, relative to the grid file.
    pub config: String,
    /// `--set` overrides of every cell, applied after the profile (the axes' own sets
    /// come after these).
    #[serde(default)]
    pub sets: Vec<String>,
    /// Axes that label a table row; the remaining axis is the column.
    pub rows: Vec<String>,
    pub column: String,
    /// Column values compared: `improve` over each of `baselines` (relative AUC gain).
    #[serde(default)]
    pub improve: Option<String>,
    #[serde(default)]
    pub baselines: Vec<String>,
    /// A column that every other column is compared with, paired by seed (a methods
    /// table: each method against fine-tuning).
    #[serde(default)]
    pub against: Option<String>,
    /// How plot.svg draws the first task: grouped bars (tables) or lines (sweeps).
    #[serde(default)]
    pub plot: Plot,
    pub profiles: BTreeMap<String, Profile>,
    /// Published AUCs per "row label" -> column -> task values (null where unknown).
    #[serde(default)]
    pub published: BTreeMap<String, BTreeMap<String, Vec<Option<f64>>>>,
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// Reference rows shown for context (e.g. MTReclib's full-data single-domain AUCs).
    #[serde(default)]
    pub reference: Option<Reference>,
    /// sbatch options of `--slurm`'s array tasks.
    #[serde(default)]
    pub slurm: Option<Slurm>,
    /// A hyperparameter search per column value: trials on search seeds, the trial with
    /// the best mean validation score then run on the evaluation seeds.
    #[serde(default)]
    pub search: Option<super::search::Search>,
    /// How the report reads its comparisons.
    #[serde(default)]
    pub report: ReportSpec,
    /// The grid file, as given (set by [`Spec::load`]): messages name it as the origin of
    /// its cells' overrides.
    #[serde(skip)]
    pub file: PathBuf,
}

/// The `[report]` table of a grid file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// The family over which Holm's correction adjusts the paired comparisons' p-values.
    #[serde(default)]
    pub family: Family,
}

/// A family of comparisons for the multiple-testing correction.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Every comparison of the grid: the claim "some method differs somewhere" is then
    /// controlled at 5% (the default, and the strictest).
    #[default]
    Grid,
    /// The comparisons of one row (a target), over its methods and tasks.
    Row,
    /// The comparisons of one method against its baseline, over the rows and tasks.
    Method,
}

/// The `[slurm]` table of a grid file (or a profile's `slurm`, or `--set slurm.KEY=VALUE`):
/// sbatch options for every array task.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slurm {
    pub partition: Option<String>,
    /// Generic resources per task, e.g. `gpu:1`.
    pub gres: Option<String>,
    /// Time limit per task, e.g. `02:00:00`.
    pub time: Option<String>,
    pub account: Option<String>,
    pub cpus_per_task: Option<usize>,
    pub mem: Option<String>,
    /// At most this many tasks of an array at once (`%K`).
    pub throttle: Option<usize>,
    /// Further sbatch options, as written on its command line.
    #[serde(default)]
    pub options: Vec<String>,
}

impl Slurm {
    /// These options with `later`'s over them: a key `later` sets wins; the `options`
    /// lists add up.
    pub fn then(mut self, later: Slurm) -> Slurm {
        let Slurm {
            partition,
            gres,
            time,
            account,
            cpus_per_task,
            mem,
            throttle,
            options,
        } = later;
        self.partition = partition.or(self.partition);
        self.gres = gres.or(self.gres);
        self.time = time.or(self.time);
        self.account = account.or(self.account);
        self.cpus_per_task = cpus_per_task.or(self.cpus_per_task);
        self.mem = mem.or(self.mem);
        self.throttle = throttle.or(self.throttle);
        self.options.extend(options);
        self
    }

    /// The options one `--set slurm.KEY=VALUE` flag sets (`key` without `slurm.`).
    pub fn from_set(key: &str, value: toml::Value) -> Result<Slurm, String> {
        let mut table = toml::Table::new();
        table.insert(key.to_string(), value);
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_string())
    }

    pub fn directives(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |key: &str, value: &Option<String>| {
            if let Some(v) = value {
                out.push(format!("--{key}={v}"));
            }
        };
        add("partition", &self.partition);
        add("gres", &self.gres);
        add("time", &self.time);
        add("account", &self.account);
        add("cpus-per-task", &self.cpus_per_task.map(|c| c.to_string()));
        add("mem", &self.mem);
        out.extend(self.options.iter().cloned());
        out
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub note: String,
    /// Row label -> per task AUCs.
    pub rows: BTreeMap<String, Vec<f64>>,
}

/// One experiment of the grid.
#[derive(Debug, Clone)]
pub struct Cell {
    /// e.g. "mmoe/nl/daa/seed1".
    pub name: String,
    /// Axis name -> value.
    pub labels: BTreeMap<String, String>,
    pub seed: u64,
    pub config: PathBuf,
    pub sets: Vec<Set>,
    /// The search trial whose values the cell runs: a trial cell's own, or the selected
    /// trial of an evaluation cell.
    pub tuned: Option<Tuned>,
}

impl Cell {
    /// The search trial this cell runs on a search seed, if it is one.
    pub fn trial(&self) -> Option<usize> {
        self.tuned.as_ref().filter(|t| t.is_trial).map(|t| t.trial)
    }
}

/// A search trial's values in a cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuned {
    /// Counted from 1.
    pub trial: usize,
    pub values: super::search::Values,
    /// A trial cell (on a search seed), not the selected trial on an evaluation seed.
    pub is_trial: bool,
}

/// One combination of axis values.
#[derive(Debug, Clone, Default)]
pub struct Combo {
    /// Axis name -> value.
    pub labels: BTreeMap<String, String>,
    /// The values in the grid's axis order (the cell name's start).
    pub path: Vec<String>,
    /// The axes' own overrides, in axis order.
    pub sets: Vec<Set>,
}

impl Spec {
    pub fn load(path: &Path) -> Result<Spec, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut spec: Spec = toml::from_str(&text).map_err(|e| {
            format!(
                "{}: {}",
                path.display(),
                crate::config::layer::syntax_message(&text, &e)
            )
        })?;
        spec.file = path.to_path_buf();
        for name in spec
            .order
            .iter()
            .chain(&spec.rows)
            .chain(std::iter::once(&spec.column))
        {
            if !spec.axes.contains_key(name) {
                return Err(format!(
                    "{}: `{name}` is not an axis (axes: {})",
                    path.display(),
                    spec.axes.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if spec.order.len() != spec.axes.len() {
            return Err(format!(
                "{}: `order` must list every axis once",
                path.display()
            ));
        }
        if let Some(search) = &spec.search {
            spec.check_search(search)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(spec)
    }

    /// A search selects per (row, column value): every axis must be a row axis or the
    /// column, and each space must name a value of the column.
    fn check_search(&self, search: &super::search::Search) -> Result<(), String> {
        if let Some(problem) = search.problem() {
            return Err(problem);
        }
        if let Some(axis) = self
            .order
            .iter()
            .find(|a| **a != self.column && !self.rows.contains(a))
        {
            return Err(format!(
                "[search] selects per row and column: axis `{axis}` is neither (add it to `rows`)"
            ));
        }
        let columns: Vec<String> = self.axes[&self.column]
            .entries()
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        match search.space.keys().find(|m| !columns.contains(m)) {
            Some(method) => Err(format!(
                "[search.space.{method}]: `{method}` is not a value of the column axis `{}` ({})",
                self.column,
                columns.join(", ")
            )),
            None => Ok(()),
        }
    }

    /// The grid's combinations of axis values, in grid order.
    pub fn combos(&self) -> Vec<Combo> {
        let mut combos = vec![Combo::default()];
        for axis in &self.order {
            let entries = self.axes[axis].entries();
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    entries.iter().map(move |(value, sets)| {
                        let mut next = c.clone();
                        next.labels.insert(axis.clone(), value.clone());
                        next.path.push(value.clone());
                        let origin = format!("{}, axis {axis} = {value}", self.file.display());
                        next.sets
                            .extend(sets.iter().map(|x| Set::written(x.clone(), &origin)));
                        next
                    })
                })
                .collect();
        }
        combos
    }

    /// The cell of `combo` at `seed`: the grid's sets, the axes' own, `extra` (the command
    /// line's), then `tuned`'s values (a search trial's, or the selected trial's for an
    /// evaluation cell) and the seed. A trial cell is named `<combo>/trial<K>/seed<S>`.
    pub fn cell(
        &self,
        base: &Path,
        combo: &Combo,
        seed: u64,
        extra: &[String],
        tuned: Option<Tuned>,
    ) -> Cell {
        let fill = |template: &str| {
            combo.labels.iter().fold(template.to_string(), |t, (a, v)| {
                t.replace(&format!("{{{a}}}"), v)
            })
        };
        let file = self.file.display();
        let mut sets: Vec<Set> = self
            .sets
            .iter()
            .map(|x| Set::written(fill(x), format!("{file}, sets")))
            .chain(combo.sets.iter().map(|x| Set {
                arg: fill(&x.arg),
                ..x.clone()
            }))
            .chain(extra.iter().map(Set::flag))
            .collect();
        let mut name = combo.path.join("/");
        if let Some(tuned) = &tuned {
            let origin = format!("{file}, [search] trial {}", tuned.trial);
            sets.extend(
                super::search::sets(&tuned.values)
                    .into_iter()
                    .map(|x| Set::written(x, &origin)),
            );
            if tuned.is_trial {
                name.push_str(&format!("/trial{}", tuned.trial));
            }
        }
        sets.push(Set::written(
            format!("train.seed={seed}"),
            format!("{file}, seed"),
        ));
        Cell {
            name: format!("{name}/seed{seed}"),
            labels: combo.labels.clone(),
            seed,
            config: base.join(fill(&self.config)),
            sets,
            tuned,
        }
    }

    /// Every cell for `seeds` seeds (1..=seeds) at the config as written, in grid order.
    pub fn cells(&self, base: &Path, seeds: usize, extra: &[String]) -> Vec<Cell> {
        self.combos()
            .iter()
            .flat_map(|combo| {
                (1..=seeds as u64).map(move |seed| self.cell(base, combo, seed, extra, None))
            })
            .collect()
    }

    /// A cell's row label, e.g. "mmoe/nl".
    pub fn row_label(&self, cell: &Cell) -> String {
        self.rows
            .iter()
            .map(|r| cell.labels[r].as_str())
            .collect::<Vec<_>>()
            .join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_options_of_a_profile_and_the_command_line_go_over_the_grid() {
        let grid = Slurm {
            partition: Some("cpu".into()),
            time: Some("01:00:00".into()),
            options: vec!["--qos=low".into()],
            ..Slurm::default()
        };
        let profile = Slurm {
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            options: vec!["--constraint=h100".into()],
            ..Slurm::default()
        };
        let set = Slurm::from_set("time", toml::Value::String("04:00:00".into())).unwrap();
        let throttle = Slurm::from_set("throttle", toml::Value::Integer(8)).unwrap();
        let all = grid.then(profile).then(set).then(throttle);
        assert_eq!(
            all.directives(),
            [
                "--partition=gpu",
                "--gres=gpu:1",
                "--time=04:00:00",
                "--qos=low",
                "--constraint=h100"
            ]
        );
        assert_eq!(all.throttle, Some(8));
        let bad = Slurm::from_set("partitoin", toml::Value::String("gpu".into()));
        assert!(bad.unwrap_err().contains("unknown field `partitoin`"));
        let wrong = Slurm::from_set("throttle", toml::Value::String("many".into()));
        assert!(wrong.is_err());
    }

    #[test]
    fn grid_sets_come_before_each_axis_own_and_the_seed() {
        let spec: Spec = toml::from_str(
            "title = \"t\"\ndescription = \"d\"\norder = [\"backbone\", \"method\"]\n\
             config = \"../configs/{backbone}.toml\"\nsets = [\"data.target_rate=0.01\", \
             \"model.backbone={backbone}\"]\nrows = [\"backbone\"]\ncolumn = \"method\"\n\
             [axes]\nbackbone = [\"mmoe\"]\n[axes.method]\n\
             full = [\"data.target_rate=0.9\"]\n[profiles]\ncpu = { seeds = 2 }\n",
        )
        .unwrap();
        let cells = spec.cells(Path::new("/grids"), 2, &["train.epochs=3".into()]);
        assert_eq!(cells.len(), 2);
        assert_eq!(
            cells[1]
                .sets
                .iter()
                .map(|s| s.arg.as_str())
                .collect::<Vec<_>>(),
            [
                "data.target_rate=0.01",
                "model.backbone=mmoe",
                "data.target_rate=0.9",
                "train.epochs=3",
                "train.seed=2"
            ]
        );
        assert_eq!(cells[0].config, Path::new("/grids/../configs/mmoe.toml"));
    }
}
