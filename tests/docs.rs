//! The guide and the generated reference: the committed reference chapter and JSON Schema
//! are what the binary prints, every shipped config validates against the schema (and
//! broken ones do not), the schema's ranges are the validator's, and every internal link
//! of the README and the guide resolves.

mod common;

use std::path::{Path, PathBuf};

use common::{daa, repo, stderr, stdout};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `daa ARGS` in the repository, asserting success; its standard output.
fn printed(args: &[&str]) -> String {
    let out = daa(&repo(), args, &[]);
    assert!(out.status.success(), "daa {args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn the_committed_reference_and_schema_are_what_the_binary_prints() {
    for (file, args) in [
        (
            "docs/src/reference.md",
            &["config", "keys", "--format", "md"][..],
        ),
        ("docs/schema/experiment.json", &["config", "schema"][..]),
    ] {
        let committed = read(&repo().join(file));
        assert!(
            committed == printed(args),
            "{file} is out of date with the configuration types: regenerate it with \
             `cargo run --release -- {} > {file}`",
            args.join(" ")
        );
    }
}

/// Every `.toml` under `dir`.
fn tomls(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(tomls(&path));
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    out
}

fn as_json(toml_text: &str) -> serde_json::Value {
    let value: toml::Value = toml::from_str(toml_text).unwrap();
    serde_json::to_value(value).unwrap()
}

#[test]
fn every_shipped_config_validates_against_the_schema_and_broken_ones_do_not() {
    let schema: serde_json::Value =
        serde_json::from_str(&read(&repo().join("docs/schema/experiment.json"))).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let configs = tomls(&repo().join("configs"));
    assert!(configs.len() > 40, "{}", configs.len());
    for path in &configs {
        let instance = as_json(&read(path));
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
    // An unknown key, a misspelt one, a wrong type, a value out of range or not among the
    // allowed ones: each is refused.
    for broken in [
        "[train]\nepochs = 3\nepoch = 4\n",
        "[trian]\nepochs = 3\n",
        "[train]\nepochs = \"many\"\n",
        "[data]\ntarget_rate = 1.5\n",
        "[adapt]\ncritic_inputs = \"both\"\n",
        "extends = \"base.toml\"\n",
        "[train]\nselect_metric = { task = 3 }\n",
    ] {
        assert!(!validator.is_valid(&as_json(broken)), "accepted: {broken}");
    }
    // What a component slot takes: a name, or a table with the entry's parameters.
    for fine in [
        "[model]\nbackbone = \"ple\"\n",
        "[model]\nbackbone = { use = \"ple\", dropout = 0.1 }\n",
        "[data]\nsource = { profile = \"cpu\" }\n",
        "[train]\nselect_metric = { weights = [1.0, 0.5] }\n",
    ] {
        assert!(validator.is_valid(&as_json(fine)), "refused: {fine}");
    }
}

#[test]
fn the_schema_ranges_are_the_ones_the_validator_enforces() {
    let all: serde_json::Value =
        serde_json::from_str(&printed(&["config", "keys", "--format", "json"])).unwrap();
    let keys = all["experiment"].as_array().unwrap();
    let base = repo().join("configs/base.toml");
    let resolves = |set: &str| {
        let out = daa(
            &repo(),
            &["config", "show", base.to_str().unwrap(), "--set", set],
            &[],
        );
        (out.status.code(), stderr(&out))
    };
    let mut checked = 0;
    for key in keys {
        let Some(allowed) = key["allowed"].as_str() else {
            continue;
        };
        let name = key["key"].as_str().unwrap();
        let integer = key["type"] == "integer";
        for bound in allowed.split(", ") {
            let Some((sign, value)) = bound.split_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            // Unsigned integers' `>= 0` is the type's own bound: a negative value does
            // not parse as one (also refused, by the type).
            let step = if integer { 1.0 } else { 1e-3 };
            let (inside, outside) = match sign {
                ">" => (value + step, Some(value)),
                ">=" => (value, Some(value - step)),
                "<=" => (value, Some(value + step)),
                "<" => (value - step, Some(value)),
                other => panic!("{name}: sign {other}"),
            };
            let text = |x: f64| {
                if integer {
                    format!("{name}={}", x as i64)
                } else {
                    format!("{name}={x:?}")
                }
            };
            let (code, err) = resolves(&text(inside));
            assert_eq!(code, Some(0), "{} refused: {err}", text(inside));
            if let Some(outside) = outside {
                let (code, err) = resolves(&text(outside));
                assert_eq!(code, Some(2), "{} accepted", text(outside));
                assert!(err.contains(name), "{err}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} bounds checked");
}

#[test]
fn every_component_parameter_is_described_and_covers_the_registry_entries() {
    let all: serde_json::Value =
        serde_json::from_str(&printed(&["config", "keys", "--format", "json"])).unwrap();
    let components = all["components"].as_array().unwrap();
    // (directory, kind) -> its parameter keys.
    let mut kinds = std::collections::BTreeMap::new();
    for c in components {
        let keys: Vec<String> = c["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let name = k["key"].as_str().unwrap().to_string();
                assert!(
                    !k["description"].as_str().unwrap().is_empty(),
                    "{}/{}: `{name}` has no doc comment",
                    c["dir"],
                    c["kind"]
                );
                name
            })
            .collect();
        kinds.insert(
            (
                c["dir"].as_str().unwrap().to_string(),
                c["kind"].as_str().unwrap().to_string(),
            ),
            keys,
        );
    }
    let mmoe = &kinds[&("backbones".to_string(), "mmoe".to_string())];
    assert!(mmoe.contains(&"experts".to_string()), "{mmoe:?}");
    // Every key of a shipped registry entry that names its kind is one of that kind's
    // parameters (or a table above them).
    let mut checked = 0;
    for path in tomls(&repo().join("registry")) {
        let entry: toml::Table = toml::from_str(&read(&path)).unwrap();
        let Some(kind) = entry.get("kind").and_then(|k| k.as_str()) else {
            continue;
        };
        let dir = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let Some(params) = kinds.get(&(dir.to_string(), kind.to_string())) else {
            continue;
        };
        for key in entry
            .keys()
            .filter(|k| !["kind", "description", "extends", "use"].contains(&k.as_str()))
        {
            assert!(
                params
                    .iter()
                    .any(|p| p == key || p.starts_with(&format!("{key}."))),
                "{}: `{key}` is not a parameter of kind `{kind}` ({params:?})",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked} entry keys checked");
}

/// GitHub's anchor of a heading: lower case, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut fence = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fence = !fence;
        } else if !fence && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// The targets of a Markdown file's inline links `](target)`.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(t, _)| t.to_string()))
        .collect()
}

#[test]
fn every_internal_link_of_the_readme_and_the_guide_resolves() {
    let guide = repo().join("docs/src");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&guide)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    // The summary lists every page.
    let summary = read(&guide.join("SUMMARY.md"));
    for page in &pages {
        let name = page.file_name().unwrap().to_str().unwrap();
        assert!(
            name == "SUMMARY.md" || summary.contains(&format!("]({name})")),
            "SUMMARY.md does not list {name}"
        );
    }
    pages.push(repo().join("README.md"));
    let mut checked = 0;
    for page in &pages {
        let text = read(page);
        for target in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let path = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            assert!(
                path.exists(),
                "{}: link to {target}: no {}",
                page.display(),
                path.display()
            );
            if !fragment.is_empty() {
                assert!(
                    anchors(&read(&path)).iter().any(|a| a == fragment),
                    "{}: link to {target}: no heading with that anchor",
                    page.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked} links checked");
    assert_eq!(anchor("Your own data"), "your-own-data");
    assert_eq!(
        anchor("Results on real data: MovieLens-1M (`cpu` profile)"),
        "results-on-real-data-movielens-1m-cpu-profile"
    );
}

#[test]
fn the_readme_is_short_and_starts_with_the_two_commands() {
    let readme = read(&repo().join("README.md"));
    assert!(
        readme.lines().count() <= 150,
        "{} lines",
        readme.lines().count()
    );
    let block = readme
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let commands: Vec<&str> = block.lines().collect();
    assert!(commands[0].starts_with("cargo run --release -- run configs/mmoe_nl.toml"));
    assert!(commands[1].starts_with("cargo test --release "));
}
