use figment::Figment;
use figment::error::Kind;
use figment::value::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ConfigError, suggest};

/// A range or consistency violation found by [`Validate`]: the key (relative to the
/// validated table) and what is wrong with it.
#[derive(Debug)]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        Invalid {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Checks that a typed configuration's values are in range.
pub trait Validate {
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }

    /// The file-system paths among the values, by key, so that registry entries resolve
    /// them against the file that wrote them ([`super::paths::resolve`]).
    fn paths_mut(&mut self) -> Vec<(&'static str, &mut std::path::PathBuf)> {
        Vec::new()
    }
}

/// `Ok` when `condition` holds, else an [`Invalid`] for `key`.
pub fn ensure(condition: bool, key: &str, message: &str) -> Result<(), Invalid> {
    if condition {
        Ok(())
    } else {
        Err(Invalid::new(key, message))
    }
}

/// Where the value at `key` came from: a file path, `--set ...` or an environment variable.
pub fn origin(figment: &Figment, key: &str) -> String {
    let mut probe = key;
    loop {
        if let Some(meta) = figment.find_metadata(probe) {
            return meta.name.to_string();
        }
        match probe.rsplit_once('.') {
            Some((parent, _)) => probe = parent,
            None => return "configuration".to_string(),
        }
    }
}

/// Extracts the table at `path` as `T`, checks its ranges and that it has no keys `T`
/// does not know (keys whose full path `skip` accepts excepted), and returns it.
pub fn extract<T>(
    figment: &Figment,
    path: &str,
    skip: &dyn Fn(&str) -> bool,
) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Validate,
{
    let resolved = if path.is_empty() {
        figment
            .extract::<figment::value::Dict>()
            .map(|d| Value::Dict(Default::default(), d))
    } else {
        figment.find_value(path)
    };
    // JSON has no infinity or NaN: such a value would serialize as null, leaving the
    // experiment's hash and its typed parameters without it. No key of an experiment
    // means anything at an infinite value, so it is refused where it is written.
    if let Some((key, value)) = resolved.as_ref().ok().and_then(non_finite) {
        let key = join(path, &key);
        return Err(ConfigError::BadValue {
            origin: origin(figment, &key),
            key,
            message: format!("{value} is not a finite number; give a finite value"),
        });
    }
    let typed: T = if path.is_empty() {
        figment.extract()
    } else {
        figment.extract_inner(path)
    }
    .map_err(|e| from_figment(figment, path, e))?;
    typed.validate().map_err(|invalid| {
        let key = join(path, &invalid.key);
        ConfigError::BadValue {
            origin: origin(figment, &key),
            key,
            message: invalid.message,
        }
    })?;
    let known = serde_json::to_value(&typed).expect("configuration types serialize to JSON");
    if let Some((key, value)) = beyond_f32(&known) {
        let key = join(path, &key);
        return Err(ConfigError::BadValue {
            origin: origin(figment, &key),
            key,
            message: format!(
                "{value:e} is beyond the range of f32 (±{:e}), in which training computes",
                f32::MAX
            ),
        });
    }
    let resolved = resolved.map_err(|e| from_figment(figment, path, e))?;
    unknown_keys(figment, &resolved, &known, path, skip)?;
    Ok(typed)
}

/// The first number of `value` (its key path, and the number) that f32 cannot hold: a
/// weight or rate that becomes infinite the moment training uses it.
fn beyond_f32(value: &serde_json::Value) -> Option<(String, f64)> {
    match value {
        serde_json::Value::Number(n) => n
            .as_f64()
            .filter(|v| n.is_f64() && v.abs() > f64::from(f32::MAX))
            .map(|v| (String::new(), v)),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| beyond_f32(item).map(|(key, v)| (join(&i.to_string(), &key), v))),
        serde_json::Value::Object(fields) => fields
            .iter()
            .find_map(|(name, item)| beyond_f32(item).map(|(key, v)| (join(name, &key), v))),
        _ => None,
    }
}

/// The first float of `value` (its key path, and the float) that is infinite or NaN.
fn non_finite(value: &Value) -> Option<(String, f64)> {
    match value {
        Value::Num(_, number) => number
            .to_f64()
            .filter(|v| !v.is_finite())
            .map(|v| (String::new(), v)),
        Value::Array(_, items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| non_finite(item).map(|(key, v)| (join(&i.to_string(), &key), v))),
        Value::Dict(_, fields) => fields
            .iter()
            .find_map(|(name, item)| non_finite(item).map(|(key, v)| (join(name, &key), v))),
        _ => None,
    }
}

/// Fails on the first key of `resolved` (in sorted order) that `known` lacks, suggesting
/// the nearest valid key. Keys whose full path `skip` accepts are not checked.
fn unknown_keys(
    figment: &Figment,
    resolved: &Value,
    known: &serde_json::Value,
    path: &str,
    skip: &dyn Fn(&str) -> bool,
) -> Result<(), ConfigError> {
    match (resolved, known) {
        (Value::Dict(_, dict), serde_json::Value::Object(fields)) => {
            for (key, value) in dict {
                let full = join(path, key);
                if skip(&full) {
                    continue;
                }
                match fields.get(key) {
                    Some(field) => unknown_keys(figment, value, field, &full, skip)?,
                    None => {
                        return Err(ConfigError::UnknownKey {
                            origin: origin(figment, &full),
                            suggestion: suggest::nearest(key, fields.keys().map(String::as_str))
                                .map(|s| join(path, &s)),
                            key: full,
                        });
                    }
                }
            }
            Ok(())
        }
        (Value::Array(_, items), serde_json::Value::Array(fields)) => items
            .iter()
            .zip(fields)
            .try_for_each(|(item, field)| unknown_keys(figment, item, field, path, skip)),
        _ => Ok(()),
    }
}

/// Turns figment's deserialization error into one that names the key and its origin.
pub fn from_figment(figment: &Figment, base: &str, error: figment::Error) -> ConfigError {
    // figment's `extract_inner(base)` appends `base`'s parts after the failing key's
    // (`dropout.model.backbone`): they are put back in front.
    let base_parts: Vec<&str> = base.split('.').filter(|p| !p.is_empty()).collect();
    let mut parts: Vec<&str> = error.path.iter().map(String::as_str).collect();
    if parts.ends_with(&base_parts) {
        parts.truncate(parts.len() - base_parts.len());
    }
    let key = join(base, &parts.join("."));
    let origin = origin(figment, &key);
    match error.kind {
        Kind::InvalidType(found, expected) => ConfigError::WrongType {
            origin,
            key,
            expected,
            found: found.to_string(),
        },
        // A value missing under `key` names its field; a missing `key` itself (a failed
        // `find_value`) names the whole path.
        Kind::MissingField(field) => ConfigError::MissingKey {
            origin,
            key: if field == key.as_str() {
                key
            } else {
                join(&key, &field)
            },
        },
        Kind::UnknownVariant(value, expected) => ConfigError::BadValue {
            origin,
            key,
            message: format!(
                "unknown value `{value}`; expected one of: {}",
                expected.join(", ")
            ),
        },
        Kind::InvalidValue(found, expected) => ConfigError::BadValue {
            origin,
            key,
            message: format!("{found} is not allowed; expected {expected}"),
        },
        other => ConfigError::BadValue {
            origin,
            key,
            message: other.to_string(),
        },
    }
}

pub fn join(path: &str, key: &str) -> String {
    match (path.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (_, true) => path.to_string(),
        _ => format!("{path}.{key}"),
    }
}
