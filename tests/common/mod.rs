#![allow(dead_code)]

pub mod critic;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `daa` binary run in `dir` with the repository's registry, no inherited `DAA_*`.
pub fn daa(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(dir, args, env)
        .output()
        .expect("the daa binary runs")
}

/// The command [`daa`] runs, to spawn it with other pipes.
pub fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_daa"));
    command
        .current_dir(dir)
        .args(args)
        .arg("--registry")
        .arg(repo().join("registry"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("DAA_")) {
        command.env_remove(key);
    }
    command.envs(env.iter().copied());
    command
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `files` (relative path, contents) under a fresh temporary directory.
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// Copies the directory tree `from` into `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A child config extending the repository's `configs/base.toml`, plus `body`.
pub fn experiment(body: &str) -> String {
    let base = repo().join("configs/base.toml");
    format!("extends = [{:?}]\n{body}", base.display().to_string())
}

/// `daa run CONFIG --profile smoke` with its runs and data under `dir`, then `sets` as
/// `--set` flags and `extra` arguments.
pub fn smoke_run_args(dir: &Path, config: &Path, sets: &[&str], extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["-q", "run", config.to_str().unwrap(), "--profile", "smoke"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let data = dir.join("data");
    let fixed = [
        "output.runs_dir='runs'".to_string(),
        format!("data.source.dir='{}'", data.display()),
        format!("data.target.dir='{}'", data.display()),
    ];
    for set in fixed.iter().map(String::as_str).chain(sets.iter().copied()) {
        args.push("--set".into());
        args.push(set.to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The run directory named in a `daa run` output ("run directory: ..." or, when stopped
/// early, "... --resume (DIR)"), under `dir`.
pub fn named_run_dir(dir: &Path, output: &Output) -> PathBuf {
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(output),
        stderr(output)
    );
    let text = stdout(output);
    let line = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("run directory: ")
                .or_else(|| l.split("--resume (").nth(1))
        })
        .unwrap_or_else(|| panic!("no run directory in {text}"));
    dir.join(line.split(" (").next().unwrap().trim_end_matches(')'))
}

/// The short SHA-256 of a safetensors file's tensor bytes (its header, which holds a
/// checksum, left out).
pub fn tensor_digest(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    daa::digest::sha256_short(&bytes[8 + n..])
}

/// A grid `grid.toml` in `dir` over `configs/mmoe_nl.toml` (as `exp.toml`), its runs and
/// data under `dir`: the method axis `methods` (name -> quoted overrides), `sets` for every
/// cell, `top` keys before the tables and `tail` tables after them; 2 smoke seeds.
pub fn grid_file(dir: &Path, methods: &[(&str, &str)], sets: &[&str], top: &str, tail: &str) {
    let base = repo().join("configs/mmoe_nl.toml");
    std::fs::write(
        dir.join("exp.toml"),
        format!("extends = [{:?}]\n", base.display().to_string()),
    )
    .unwrap();
    let data = dir.join("data");
    let mut all = vec![
        "\"output.runs_dir='runs'\"".to_string(),
        format!("\"data.source.dir='{}'\"", data.display()),
        format!("\"data.target.dir='{}'\"", data.display()),
    ];
    all.extend(sets.iter().map(|s| format!("\"{s}\"")));
    let axis: String = methods
        .iter()
        .map(|(name, sets)| format!("{name} = [{sets}]\n"))
        .collect();
    std::fs::write(
        dir.join("grid.toml"),
        format!(
            "title = \"Methods\"\ndescription = \"methods\"\norder = [\"method\"]\n\
             config = \"exp.toml\"\nrows = []\ncolumn = \"method\"\n{top}\nsets = [{}]\n\
             [axes.method]\n{axis}[profiles]\nsmoke = {{ seeds = 2 }}\n{tail}",
            all.join(", ")
        ),
    )
    .unwrap();
}

/// `daa -q reproduce grid.toml --profile smoke --out out` in `dir`, with `extra` arguments.
pub fn reproduce_grid(dir: &Path, extra: &[&str]) -> Output {
    reproduce_grid_command(dir, extra)
        .output()
        .expect("the daa binary runs")
}

/// The command [`reproduce_grid`] runs, to spawn it.
pub fn reproduce_grid_command(dir: &Path, extra: &[&str]) -> Command {
    let grid = dir.join("grid.toml");
    let out = dir.join("out");
    let mut args = vec![
        "-q",
        "reproduce",
        grid.to_str().unwrap(),
        "--profile",
        "smoke",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    command(dir, &args, &[])
}
