//! The library's layering, read from its own source: a module imports only from its layer
//! or below (config and the small utilities at the bottom, then data, nn, models, adapt,
//! train, reproduce, and the catalog that composes the families), and no file imports
//! itself back through others. Imports are every `crate::` and `super::` path outside
//! comments and test modules, `use` trees with braces included.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layer of each top-level module of the library, bottom first.
const LAYERS: &[&[&str]] = &[
    &[
        "alignment",
        "alloc",
        "chart",
        "config",
        "device",
        "digest",
        "lock",
        "metrics",
        "rng",
        "whole_file",
    ],
    &["data"],
    &["nn"],
    &["models"],
    &["adapt"],
    &["train", "bench"],
    &["reproduce"],
    &["catalog"],
];

/// The binary's files (`main.rs` and what it declares) sit above the library.
const BINARY: &[&str] = &["main", "cli", "commands"];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Source files of the library, with their module paths (`data/csv/mod.rs` -> data::csv).
fn files(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).unwrap().with_extension("");
                let mut module: Vec<String> = relative
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect();
                if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                    module.pop();
                }
                if module.is_empty() || !BINARY.contains(&module[0].as_str()) {
                    out.insert(module, path);
                }
            }
        }
    }
    out
}

/// The code of a file without comments and without its `#[cfg(test)] mod tests` block.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(chars: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        i += 1;
    }
    (chars[start..i].iter().collect(), i)
}

/// The paths of a use tree starting at `i` (after `crate::` or `super::`): `a::b`,
/// `a::{b, c::d}`, `{a, b}`.
fn tree(chars: &[char], mut i: usize) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i < chars.len() && chars[i] == '{' {
            let mut depth = 0;
            let mut items = vec![i + 1];
            let mut j = i;
            while j < chars.len() {
                match chars[j] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => items.push(j + 1),
                    _ => {}
                }
                j += 1;
            }
            return items
                .into_iter()
                .flat_map(|start| tree(chars, start))
                .map(|rest| prefix.iter().cloned().chain(rest).collect())
                .collect();
        }
        let (name, next) = ident(chars, i);
        if name.is_empty() {
            return vec![prefix];
        }
        prefix.push(name);
        i = next;
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            return vec![prefix];
        }
    }
}

/// Every module path a file refers to, made absolute from its own module `at`.
fn references(text: &str, at: &[String]) -> Vec<Vec<String>> {
    let chars: Vec<char> = code(text).chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let rest: String = chars[i..chars.len().min(i + 7)].iter().collect();
        if boundary && rest.starts_with("crate::") {
            out.extend(tree(&chars, i + 7));
            i += 7;
        } else if boundary && rest.starts_with("super::") {
            let mut j = i;
            let mut ups = 0;
            while chars[j..].iter().take(7).collect::<String>() == "super::" {
                ups += 1;
                j += 7;
            }
            let base = &at[..at.len().saturating_sub(ups)];
            for path in tree(&chars, j) {
                out.push(base.iter().cloned().chain(path).collect());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The file defining the longest prefix of `path`.
fn defining(path: &[String], files: &BTreeMap<Vec<String>, PathBuf>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| files.contains_key(p))
}

#[test]
fn modules_import_only_from_their_layer_or_below_and_files_form_no_cycle() {
    let src = common::repo().join("src");
    let files = files(&src);
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut upward = Vec::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        for reference in references(&text, module) {
            let Some(target) = defining(&reference, &files) else {
                continue;
            };
            if &target == module || module.is_empty() {
                continue;
            }
            let (from, to) = (layer(&module[0]), layer(&target[0]));
            assert!(
                from.is_some() && to.is_some(),
                "{} or {} has no layer: add it to LAYERS",
                module[0],
                target[0]
            );
            if to > from {
                upward.push(format!("{} -> {}", module.join("::"), target.join("::")));
            }
            edges.insert(target);
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a lower layer to a higher one:\n{}",
        upward.join("\n")
    );
    assert!(
        graph.len() > 40,
        "the source tree was read: {} files",
        graph.len()
    );

    // A file cycle shows as a back edge of a depth-first search.
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        path: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(node.clone(), 1);
        path.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                1 => {
                    let from = path.iter().position(|p| p == next).unwrap();
                    let mut cycle: Vec<String> =
                        path[from..].iter().map(|p| p.join("::")).collect();
                    cycle.push(next.join("::"));
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, graph, state, path) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(node.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node).copied().unwrap_or(0) == 0
            && let Some(cycle) = visit(node, &graph, &mut state, &mut Vec::new())
        {
            panic!("import cycle between files: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_reader_sees_braced_super_and_crate_imports() {
    let at = vec!["data".to_string(), "csv".to_string(), "lines".to_string()];
    let text = "use super::avx512::{self, Avx512};\nuse crate::data::{schema::Oov, table::Rows};\n// crate::models::x\nlet x = crate::nn::loss::bce(a);";
    let found = references(text, &at);
    let shown: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        shown,
        [
            "data::csv::avx512::self",
            "data::csv::avx512::Avx512",
            "data::schema::Oov",
            "data::table::Rows",
            "nn::loss::bce"
        ]
    );
}
