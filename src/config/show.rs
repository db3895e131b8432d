use figment::value::{Dict, Value};

use super::{Resolved, check};

/// The resolved experiment as TOML; with `origins`, each key is followed by a comment
/// naming the file, variable or flag that set it.
pub fn render(resolved: &Resolved, origins: bool) -> String {
    let dict: Dict = resolved
        .figment
        .extract()
        .expect("a resolved experiment extracts as a dict");
    let mut lines = vec![format!(
        "# resolved from {}; config hash {}",
        resolved.path.display(),
        resolved.hash
    )];
    section(resolved, &dict, "", origins, &mut lines);
    lines.push(String::new());
    lines.join("\n")
}

fn section(resolved: &Resolved, dict: &Dict, path: &str, origins: bool, lines: &mut Vec<String>) {
    let (tables, values): (Vec<_>, Vec<_>) =
        dict.iter().partition(|(_, v)| matches!(v, Value::Dict(..)));
    if !values.is_empty() && !path.is_empty() {
        lines.push(String::new());
        lines.push(format!("[{path}]"));
    }
    for (key, value) in values {
        let text = toml::Value::try_from(value)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| "?".into());
        let full = check::join(path, key);
        let line = format!("{key} = {text}");
        lines.push(if origins {
            format!("{line:<48} # {}", check::origin(&resolved.figment, &full))
        } else {
            line
        });
    }
    for (key, value) in tables {
        if let Value::Dict(_, inner) = value {
            section(resolved, inner, &check::join(path, key), origins, lines);
        }
    }
}
