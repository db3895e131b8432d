use super::{ConfigError, Layer};

/// The prefix of environment variables that override experiment keys; `__` separates
/// nested keys: `DAA_TRAIN__SEED=7` sets `train.seed`.
pub const ENV_PREFIX: &str = "DAA_";

/// The log filter's variable (`DAA_LOG=debug`, tracing's filter syntax): the prefix's one
/// name that is not an experiment key.
pub const LOG_VARIABLE: &str = "DAA_LOG";

/// Overlays, environment and command-line overrides, in the order they apply (later wins).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Overlay files (profiles) applied over the experiment file, before the environment.
    pub files: Vec<std::path::PathBuf>,
    pub env: Vec<(String, String)>,
    pub sets: Vec<Set>,
}

/// A `key.path=value` override and where it was written, for messages: a `--set` flag, or
/// a grid file's sets, axes and search trials (so that an error in a grid is not blamed on
/// a flag the user never typed).
#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    pub arg: String,
    pub origin: String,
}

impl Set {
    /// A `--set` flag of the command line.
    pub fn flag(arg: impl Into<String>) -> Self {
        let arg = arg.into();
        Set {
            origin: format!("--set {arg}"),
            arg,
        }
    }

    /// An override that `origin` wrote (e.g. `reproduce/x.toml, [search] trial 3`).
    pub fn written(arg: impl Into<String>, origin: impl std::fmt::Display) -> Self {
        let arg = arg.into();
        Set {
            origin: format!("{origin} ({arg})"),
            arg,
        }
    }
}

impl Overrides {
    /// Takes the `DAA_*` variables of this process (sorted, so the order is stable) and the
    /// `key.path=value` overrides.
    pub fn from_process(sets: Vec<Set>) -> Self {
        Self::from_variables(std::env::vars(), sets)
    }

    /// [`Overrides::from_process`] with the given environment.
    fn from_variables(variables: impl Iterator<Item = (String, String)>, sets: Vec<Set>) -> Self {
        let mut env: Vec<(String, String)> = variables
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k != LOG_VARIABLE)
            .collect();
        env.sort();
        Overrides {
            files: Vec::new(),
            env,
            sets,
        }
    }

    pub fn layers(&self) -> Result<Vec<Layer>, ConfigError> {
        let mut layers = Vec::new();
        for file in &self.files {
            let chain = super::layer::load_chain(file)?;
            layers.extend(chain.into_iter().map(|l| Layer { overlay: true, ..l }));
        }
        let env = self.env.iter().map(|(name, value)| {
            let key = name[ENV_PREFIX.len()..].to_lowercase().replace("__", ".");
            let origin = format!("environment variable {name}");
            let (key, value) = key_value(&format!("{name}={value}"), &key, value)?;
            Ok(layer(origin, &key, value))
        });
        let sets = self.sets.iter().map(|set| {
            let (key, value) = parse_set(&set.arg)?;
            Ok(layer(set.origin.clone(), &key, value))
        });
        layers.extend(env.chain(sets).collect::<Result<Vec<_>, _>>()?);
        Ok(layers)
    }
}

/// A `key.path=value` flag as its key and TOML value (see [`parse_value`]).
pub fn parse_set(arg: &str) -> Result<(String, toml::Value), ConfigError> {
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| malformed(arg, "expected key.path=value"))?;
    key_value(arg, key.trim(), raw.trim())
}

fn key_value(arg: &str, key: &str, raw: &str) -> Result<(String, toml::Value), ConfigError> {
    let valid_segment = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !key.split('.').all(valid_segment) {
        return Err(malformed(
            arg,
            &format!("`{key}` is not a dotted key path such as train.seed"),
        ));
    }
    let value = parse_value(raw).ok_or_else(|| {
        malformed(
            arg,
            &format!("`{raw}` is not a TOML value (quote strings: 'text'; arrays: [1, 2])"),
        )
    })?;
    Ok((key.to_string(), value))
}

/// The layer that sets `key` (a dotted path) to `value`.
fn layer(origin: String, key: &str, value: toml::Value) -> Layer {
    let mut table = toml::Table::new();
    table.insert(key.rsplit('.').next().unwrap_or(key).to_string(), value);
    let parent = key.rsplit_once('.').map(|(p, _)| p);
    let layer = Layer::named(origin, table);
    match parent {
        Some(p) => layer.nested_under(p),
        None => layer,
    }
}

/// A value as TOML (`7`, `0.5`, `true`, `[1, 2]`, `"text"`), or a bare word as a string
/// (`ple`, `cuda:0`). Text that looks like a broken TOML value is rejected.
fn parse_value(raw: &str) -> Option<toml::Value> {
    let document = format!("v = {raw}");
    if let Ok(mut table) = document.parse::<toml::Table>() {
        return table.remove("v");
    }
    let bare = !raw.is_empty() && !raw.contains(['[', ']', '{', '}', '"', '\'', '=', ',', ' ']);
    bare.then(|| toml::Value::String(raw.to_string()))
}

fn malformed(arg: &str, reason: &str) -> ConfigError {
    ConfigError::MalformedOverride {
        arg: arg.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_toml_or_bare_words() {
        assert_eq!(parse_value("7"), Some(toml::Value::Integer(7)));
        assert_eq!(parse_value("0.5"), Some(toml::Value::Float(0.5)));
        assert_eq!(parse_value("ple"), Some(toml::Value::String("ple".into())));
        assert_eq!(
            parse_value("cuda:1"),
            Some(toml::Value::String("cuda:1".into()))
        );
        assert_eq!(parse_value("[1, 2]").unwrap().as_array().unwrap().len(), 2);
        assert_eq!(parse_value("[1, 2"), None);
        assert_eq!(parse_value(""), None);
    }

    #[test]
    fn env_names_become_nested_keys() {
        let o = Overrides {
            env: vec![("DAA_TRAIN__SELECT_ON".into(), "test".into())],
            ..Overrides::default()
        };
        let layers = o.layers().unwrap();
        let train = layers[0].table["train"].as_table().unwrap();
        assert_eq!(train["select_on"].as_str(), Some("test"));
    }

    #[test]
    fn the_log_filter_is_no_key() {
        let variables = [
            ("DAA_LOG", "daa::reproduce=info"),
            ("DAA_TRAIN__SEED", "7"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let o = Overrides::from_variables(variables.into_iter(), Vec::new());
        assert_eq!(o.env, vec![("DAA_TRAIN__SEED".into(), "7".into())]);
        assert_eq!(o.layers().unwrap().len(), 1);
    }

    #[test]
    fn malformed_sets_are_rejected() {
        for bad in ["train.seed", "=3", "train..seed=3", "train.seed=[1,"] {
            let o = Overrides {
                sets: vec![Set::flag(bad)],
                ..Overrides::default()
            };
            assert!(
                matches!(o.layers(), Err(ConfigError::MalformedOverride { .. })),
                "{bad}"
            );
        }
    }
}
