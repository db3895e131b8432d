use std::path::Path;

use super::Experiment;

/// The version of daa's numerics: bump it whenever a change moves the bits that training
/// produces (tests/numerics.rs pins a digest per backbone and fails until it is bumped).
/// Experiment hashes and source-pretraining keys include it, so that run directories and
/// pretrained models made by other numerics are never reused.
pub const NUMERICS_VERSION: u32 = 3;

/// A stable name for a resolved experiment: SHA-256 over its canonical JSON (typed values,
/// keys sorted, no descriptions, no output directory), the numerics version, the version
/// of the code that makes each component's output (a generated data set's rows) and the
/// content of every file the run reads (a CSV data set's splits), first 16 hex digits. Key
/// order, whitespace and which file set a value do not change it; a new synthetic
/// generator, or a data file re-prepared in place, does. Paths inside `project` (the folder
/// that holds the registry) enter relative to it, so that a checkout hashes alike wherever
/// it lies. Keys added after runs existed enter as [`LEGACY`] says.
pub fn experiment_hash(experiment: &Experiment, project: &Path) -> String {
    let mut value = serde_json::to_value(experiment).expect("experiments serialize to JSON");
    within(&mut value, project);
    if let serde_json::Value::Object(map) = &mut value {
        map.remove("output");
        map.insert("numerics".into(), NUMERICS_VERSION.into());
    }
    for ((slot, _), component) in super::SLOTS.iter().zip(experiment.components()) {
        let (section, key) = slot.split_once('.').expect("slots are section.key");
        let entry = &mut value[section][key];
        // Where a generated data set is cached (an absolute path) does not change its
        // rows; leaving it out keeps hashes the same on every machine.
        if let Some(params) = entry["params"].as_object_mut() {
            params.remove("dir");
        }
        if component.version > 0 {
            // Named for data sets, so far the only kinds with a version (their generators).
            entry["rows_version"] = component.version.into();
        }
        if !component.reads.is_empty() {
            entry["contents"] = contents(component);
        }
    }
    for rule in LEGACY {
        rule(experiment, &mut value);
    }
    digest(&value)
}

/// The content name of each file that `component` reads, by parameter. A file that cannot
/// be read enters as such: its runs cannot start, and the hash changes once it is there.
fn contents(component: &super::Component) -> serde_json::Value {
    let names = component.reads.iter().map(|key| {
        let name = match component.params[*key].as_str() {
            Some(path) => crate::digest::file_fingerprint(Path::new(path))
                .unwrap_or_else(|e| format!("unreadable ({:?})", e.kind())),
            None => "not a path".to_string(),
        };
        (key.to_string(), serde_json::Value::String(name))
    });
    serde_json::Value::Object(names.collect())
}

/// The canonical form's rules for keys that came after runs existed, oldest first: each
/// lets its key enter the hash only where it differs from the behaviour of the runs made
/// before it, so that those runs keep their directories. A new key with a default that
/// reproduces old runs adds its rule here.
const LEGACY: &[fn(&Experiment, &mut serde_json::Value)] = &[
    bare_method_by_kind,
    kernels_where_they_matter,
    selection_metric_unless_mean,
    validation_rule_if_latest,
];

/// A method without hyperparameters of its own, used under its kind's name, hashes as that
/// name, as before methods were registry entries.
fn bare_method_by_kind(experiment: &Experiment, value: &mut serde_json::Value) {
    let method = &experiment.adapt.method;
    let bare = match &method.params {
        serde_json::Value::Null => true,
        serde_json::Value::Object(params) => params.is_empty(),
        _ => false,
    };
    if bare && method.name == method.kind {
        value["adapt"]["method"] = method.name.clone().into();
    }
}

/// The kernel choice matters only on a CUDA device and where it is not the default.
fn kernels_where_they_matter(experiment: &Experiment, value: &mut serde_json::Value) {
    let train = &experiment.train;
    if train.kernels == super::schema::Kernels::Portable
        || train.device == crate::device::Device::Cpu
    {
        remove(value, "train", "kernels");
    }
}

/// The default selection metric (the mean of the tasks' AUCs) is what came before the key.
fn selection_metric_unless_mean(experiment: &Experiment, value: &mut serde_json::Value) {
    if experiment.train.select_metric == super::schema::SelectMetric::Mean {
        remove(value, "train", "select_metric");
    }
}

/// The validation rule enters where it is `latest` (set, or the default of rows in time
/// order): random validation is what came before the key.
fn validation_rule_if_latest(experiment: &Experiment, value: &mut serde_json::Value) {
    remove(value, "data", "valid");
    if experiment.validation() == super::schema::Validation::Latest {
        value["data"]["valid"] = "latest".into();
    }
}

/// Removes `section.key` from the canonical JSON.
fn remove(value: &mut serde_json::Value, section: &str, key: &str) {
    if let Some(table) = value[section].as_object_mut() {
        table.remove(key);
    }
}

/// Rewrites every absolute path in `value` that lies inside `project` as the path relative
/// to it. Resolution makes the paths of registry entries absolute (a CSV data set's
/// files), which would tie a run's hash to where the checkout lies; no other string of a
/// resolved experiment is absolute. Paths elsewhere (`/data/...`, `~/...`) stay as they are.
fn within(value: &mut serde_json::Value, project: &Path) {
    match value {
        serde_json::Value::String(text) => {
            let path = Path::new(text.as_str());
            if path.is_absolute()
                && let Ok(inside) = path.strip_prefix(project)
            {
                let parts: Vec<_> = inside.iter().map(|part| part.to_string_lossy()).collect();
                *text = parts.join("/");
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| within(v, project)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| within(v, project)),
        _ => {}
    }
}

/// The first 16 hex digits of the SHA-256 of `value`'s canonical JSON.
pub fn digest(value: &serde_json::Value) -> String {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    crate::digest::sha256_short(canonical)
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
