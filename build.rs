//! Records the candle version from Cargo.lock, for result.json.
fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"candle-core\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    // Not `DAA_`-prefixed: `cargo run` passes this to the binary too, whose configuration
    // reads every `DAA_*` variable as an override.
    println!("cargo:rustc-env=CANDLE_VERSION_OF_DAA={version}");
}
