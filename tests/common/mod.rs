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

/// A child config extending the repository's `configs/base.toml`, plus `body`.
pub fn experiment(body: &str) -> String {
    let base = repo().join("configs/base.toml");
    format!("extends = [{:?}]\n{body}", base.display().to_string())
}
