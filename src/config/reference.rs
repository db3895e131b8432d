//! The configuration reference, generated from the config types (their doc comments and
//! serde attributes, through schemars): the JSON Schema of an experiment file, where every
//! key is optional because a file is one layer of many, and the list of keys with their
//! type, default, allowed values and description (`daa config keys`).

use serde::Serialize;
use serde_json::{Value, json};

use super::registry::Catalog;
use super::schema::Experiment;

/// The JSON Schema of an experiment file (or a profile, or any layer): the experiment's
/// sections with every key optional, unknown keys refused, and `extends`.
pub fn file_schema() -> Value {
    let mut schema = schemars::schema_for!(Experiment).to_value();
    layer(&mut schema);
    let root = schema.as_object_mut().expect("a schema is an object");
    root.insert(
        "title".into(),
        json!("daa experiment file (one layer: every key optional)"),
    );
    root["properties"]
        .as_object_mut()
        .expect("the experiment has sections")
        .insert(
            "extends".into(),
            json!({
                "description": "Files this one inherits, depth-first and in order, relative to this file; tables merge deeply, arrays and scalars replace.",
                "type": "array",
                "items": {"type": "string"}
            }),
        );
    schema
}

/// A component slot's schema: a name, or a table with `use` and the entry's parameters.
fn is_component(schema: &Value) -> bool {
    schema["anyOf"]
        .as_array()
        .is_some_and(|a| a.iter().any(|s| s["properties"].get("use").is_some()))
}

/// Makes a schema one of a layer: no key required, no unknown key (but a component's
/// parameters, which depend on its kind), no null (TOML has none).
fn layer(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    object.remove("required");
    if object.contains_key("properties") && !object.contains_key("additionalProperties") {
        object.insert("additionalProperties".into(), json!(false));
    }
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(variants)) = object.get_mut(key) {
            variants.retain(|v| v["type"] != "null");
            // An optional value without its null: the value's schema itself.
            if variants.len() == 1
                && let Some(Value::Object(only)) = variants.pop()
            {
                object.remove(key);
                object.extend(only);
            }
        }
    }
    if is_component(schema) {
        return;
    }
    for child in schema.as_object_mut().expect("an object").values_mut() {
        match child {
            Value::Object(_) => layer(child),
            Value::Array(items) => items.iter_mut().for_each(layer),
            _ => {}
        }
    }
}

/// One key of an experiment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Key {
    /// The dotted path, e.g. `train.epochs`.
    pub key: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// As `configs/base.toml` resolves it (TOML syntax), where it sets it.
    pub default: Option<String>,
    /// The values or range the key accepts, where it is restricted.
    pub allowed: Option<String>,
    pub description: String,
}

/// The definition a `$ref` points at, or the schema itself.
fn deref<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        Some(name) => &root["$defs"][name],
        None => schema,
    }
}

/// A value as TOML writes it inline.
fn toml_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(format!("{s:?}")),
        Value::Array(items) => Some(format!(
            "[{}]",
            items
                .iter()
                .filter_map(toml_text)
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Value::Object(map) => Some(format!(
            "{{ {} }}",
            map.iter()
                .filter_map(|(k, v)| toml_text(v).map(|t| format!("{k} = {t}")))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        other => Some(other.to_string()),
    }
}

/// The first sentence of a doc comment.
fn first_sentence(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.find(". ") {
        Some(i) => text[..=i].to_string(),
        None => text,
    }
}

/// The variants of an enumeration: (value as written, its description).
fn variants(root: &Value, schema: &Value) -> Vec<(String, String)> {
    let schema = deref(root, schema);
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .filter_map(|v| toml_text(v).map(|t| (t, String::new())))
            .collect();
    }
    let Some(alternatives) = schema["oneOf"].as_array() else {
        return Vec::new();
    };
    alternatives
        .iter()
        .filter_map(|alt| {
            let written = if let Some(c) = alt.get("const") {
                toml_text(c)?
            } else if let Some(values) = alt["enum"].as_array() {
                values
                    .iter()
                    .filter_map(toml_text)
                    .collect::<Vec<_>>()
                    .join(" | ")
            } else {
                let (name, inner) = alt["properties"].as_object()?.iter().next()?;
                format!("{{ {name} = {} }}", type_name(root, inner))
            };
            let about = alt["description"]
                .as_str()
                .map(first_sentence)
                .unwrap_or_default();
            Some((written, about))
        })
        .collect()
}

/// A short type name of a leaf schema.
fn type_name(root: &Value, schema: &Value) -> String {
    let schema = deref(root, schema);
    if is_component(schema) {
        return "registry entry: name or table".into();
    }
    if schema.get("oneOf").is_some() || schema.get("enum").is_some() {
        let mut kinds: Vec<&str> = schema["oneOf"]
            .as_array()
            .map(|alts| {
                alts.iter()
                    .map(|a| {
                        if a.get("properties").is_some() {
                            "table"
                        } else {
                            "string"
                        }
                    })
                    .collect()
            })
            .unwrap_or_else(|| vec!["string"]);
        kinds.dedup();
        return kinds.join(" or ");
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "value".into(),
    };
    match kind.as_str() {
        "array" => format!("array of {}", type_name(root, &schema["items"])),
        "number" => "float".into(),
        "object" => "table".into(),
        _ => kind,
    }
}

/// The range a numeric schema declares, e.g. `> 0, <= 1`.
fn range(schema: &Value) -> Option<String> {
    let bounds: Vec<String> = [
        ("exclusiveMinimum", ">"),
        ("minimum", ">="),
        ("exclusiveMaximum", "<"),
        ("maximum", "<="),
    ]
    .iter()
    .filter_map(|(key, sign)| schema.get(*key).map(|v| format!("{sign} {v}")))
    .collect();
    (!bounds.is_empty()).then(|| bounds.join(", "))
}

/// Every key of an experiment under the file schema `schema`, in key order, with its
/// default from `defaults` (a resolved experiment as JSON).
pub fn keys(schema: &Value, defaults: &Value) -> Vec<Key> {
    let mut out = Vec::new();
    walk(schema, schema, "", defaults, &mut out);
    out
}

fn walk(root: &Value, schema: &Value, prefix: &str, defaults: &Value, out: &mut Vec<Key>) {
    let Some(properties) = deref(root, schema)["properties"].as_object() else {
        return;
    };
    for (name, field) in properties {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let target = deref(root, field);
        let value = &defaults[name];
        if target.get("properties").is_some() && !is_component(target) {
            walk(root, target, &key, value, out);
            continue;
        }
        let description = field["description"]
            .as_str()
            .or(target["description"].as_str())
            .unwrap_or_default();
        let choices = variants(root, field);
        let mut description = description.split_whitespace().collect::<Vec<_>>().join(" ");
        for (written, about) in choices.iter().filter(|(_, a)| !a.is_empty()) {
            description.push_str(&format!(" `{written}`: {about}"));
        }
        let default = if is_component(target) {
            value["use"].as_str().map(|s| format!("{s:?}"))
        } else {
            toml_text(value)
        };
        let allowed = if choices.is_empty() {
            range(target)
        } else {
            Some(
                choices
                    .iter()
                    .map(|(w, _)| w.clone())
                    .collect::<Vec<_>>()
                    .join(" | "),
            )
        };
        out.push(Key {
            key,
            kind: type_name(root, field),
            default,
            allowed,
            description,
        });
    }
}

/// The parameters of one kind of registry entry.
#[derive(Debug, Clone, Serialize)]
pub struct KindKeys {
    /// The registry directory, e.g. `backbones`.
    pub dir: String,
    pub kind: String,
    pub keys: Vec<Key>,
}

/// The parameters of every kind of every registry directory of `catalog`, from the JSON
/// Schema of each kind's parameter type (kinds without parameters of their own are left
/// out). Their defaults are each entry's, so none is given here.
pub fn component_keys(catalog: &Catalog) -> Vec<KindKeys> {
    let mut out = Vec::new();
    for dir in catalog.directories {
        for (kind, schema) in dir.kinds.schemas() {
            let Some(schema) = schema else { continue };
            let mut schema = schema.to_value();
            layer(&mut schema);
            let mut keys = Vec::new();
            walk(&schema, &schema, "", &Value::Null, &mut keys);
            out.push(KindKeys {
                dir: dir.name.to_string(),
                kind: kind.to_string(),
                keys,
            });
        }
    }
    out
}

/// Text in a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// `text` in code quotes, or a dash where there is none.
fn code(text: Option<&str>) -> String {
    text.map_or("-".into(), |t| format!("`{}`", cell(t)))
}

/// The keys as a Markdown page: the experiment's, then each component kind's parameters.
pub fn markdown(keys: &[Key], components: &[KindKeys]) -> String {
    let mut text = String::from(
        "# Configuration reference\n\n\
         Generated by `daa config keys --format md` from the configuration types' doc \
         comments; do not edit by hand. Defaults are what `configs/base.toml` resolves \
         (the paper's protocol on the synthetic data). A key set to a registry entry \
         (`data.source`, `model.backbone`, `adapt.method`, ...) also takes a table that \
         overrides the entry's parameters (see \"Component parameters\" below). Editors \
         validate and complete files with the JSON Schema `docs/schema/experiment.json` \
         (`daa config schema`).\n\n\
         | key | type | default | allowed | description |\n|---|---|---|---|---|\n",
    );
    for k in keys {
        text.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            k.key,
            k.kind,
            code(k.default.as_deref()),
            code(k.allowed.as_deref()),
            cell(&k.description)
        ));
    }
    text.push_str(
        "\n## Component parameters\n\n\
         The parameters of each kind of registry entry, by registry directory. An entry's \
         file sets them (its `kind` says which table applies); an experiment overrides them \
         with a table (`model.backbone = { use = \"ple\", dropout = 0.1 }`) or a flag \
         (`--set model.backbone.dropout=0.1`). Their defaults are each entry's: `daa \
         registry list DIR` lists the entries, `daa config show FILE` prints the values in \
         force. Kinds without parameters of their own (most methods) are left out.\n",
    );
    for c in components {
        text.push_str(&format!(
            "\n### `{}`: kind `{}`\n\n| key | type | allowed | description |\n|---|---|---|---|\n",
            c.dir, c.kind
        ));
        for k in &c.keys {
            text.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                k.key,
                k.kind,
                code(k.allowed.as_deref()),
                cell(&k.description)
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_requires_nothing_refuses_unknown_keys_and_knows_extends() {
        let schema = file_schema();
        let text = schema.to_string();
        assert!(!text.contains("\"required\""), "{text}");
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema["properties"]["extends"].is_object());
        let defs = &schema["$defs"];
        assert_eq!(defs["TrainConfig"]["additionalProperties"], false);
        // A component slot takes a name or a table with its parameters.
        let source = &defs["DataConfig"]["properties"]["source"];
        assert!(is_component(source), "{source}");
    }

    #[test]
    fn keys_carry_types_defaults_ranges_choices_and_descriptions() {
        let schema = file_schema();
        let defaults = json!({
            "train": {"epochs": 50, "device": "cpu", "select_metric": "mean"},
            "data": {"target_rate": 0.001, "source": {"use": "synthetic_ru", "kind": "synthetic"}},
            "adapt": {"critic_inputs": "symmetric"}
        });
        let keys = keys(&schema, &defaults);
        let key = |k: &str| {
            keys.iter()
                .find(|x| x.key == k)
                .unwrap_or_else(|| panic!("{k}"))
        };
        let epochs = key("train.epochs");
        assert_eq!(epochs.kind, "integer");
        assert_eq!(epochs.default.as_deref(), Some("50"));
        assert_eq!(epochs.allowed.as_deref(), Some(">= 1"));
        assert!(
            epochs
                .description
                .starts_with("The most epochs of target training")
        );
        let rate = key("data.target_rate");
        assert_eq!(rate.kind, "float");
        assert_eq!(rate.allowed.as_deref(), Some("> 0.0, <= 1.0"));
        let source = key("data.source");
        assert_eq!(source.kind, "registry entry: name or table");
        assert_eq!(source.default.as_deref(), Some("\"synthetic_ru\""));
        let inputs = key("adapt.critic_inputs");
        assert_eq!(
            inputs.allowed.as_deref(),
            Some("\"symmetric\" | \"released\"")
        );
        assert!(
            inputs
                .description
                .contains("`\"released\"`: As the released code feeds them"),
            "{}",
            inputs.description
        );
        let metric = key("train.select_metric");
        assert_eq!(
            metric.allowed.as_deref(),
            Some("\"mean\" | { task = string } | { weights = array of float }")
        );
        assert_eq!(metric.kind, "string or table");
        assert_eq!(key("train.device").kind, "string");
        assert_eq!(key("train.device").default.as_deref(), Some("\"cpu\""));
        // An optional key: its values, no null; absent from the defaults.
        let valid = key("data.valid");
        assert_eq!(valid.allowed.as_deref(), Some("\"latest\" | \"random\""));
        assert_eq!(valid.default, None);
        // No key is left out, none is listed twice, and no section is a key.
        let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        let mut sorted = names.clone();
        sorted.dedup();
        assert_eq!(names.len(), sorted.len());
        assert!(!names.contains(&"train"));
        assert!(names.contains(&"output.runs_dir") && names.contains(&"extends"));
    }
}
