//! Records, for result.json, the candle version from Cargo.lock and the git commit the
//! binary was built from (a run records the code that made it, not whatever the working
//! directory holds when it runs).
fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"candle-core\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    // Not `DAA_`-prefixed: `cargo run` passes these to the binary too, whose configuration
    // reads every `DAA_*` variable as an override.
    println!("cargo:rustc-env=CANDLE_VERSION_OF_DAA={version}");
    // The commit moves with HEAD and its refs; the dirty flag with the sources.
    for watched in [
        ".git/HEAD",
        ".git/refs",
        ".git/packed-refs",
        "src",
        "vendor",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={watched}");
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = match git(&["rev-parse", "HEAD"]) {
        Some(commit) => {
            // Tracked files changed since the commit: the build is not that commit's code.
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        }
        None => String::new(),
    };
    println!("cargo:rustc-env=GIT_COMMIT_OF_DAA={commit}");
    // The CSV reader's AVX-512 kernels can be tested only on a CPU that has them: their
    // tests are ignored, saying why, where the building (and testing) machine lacks them.
    println!("cargo::rustc-check-cfg=cfg(host_avx512)");
    if host_avx512() {
        println!("cargo:rustc-cfg=host_avx512");
    }
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        compile_kernels();
    }
}

/// Whether this machine, building for itself, has the features of the CSV reader's AVX-512
/// kernels (`Avx512::detect`).
fn host_avx512() -> bool {
    let native = std::env::var("HOST").ok() == std::env::var("TARGET").ok();
    #[cfg(target_arch = "x86_64")]
    return native
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512dq")
        && std::is_x86_feature_detected!("avx512vbmi2")
        && std::is_x86_feature_detected!("bmi1")
        && std::is_x86_feature_detected!("bmi2");
    #[cfg(not(target_arch = "x86_64"))]
    return native && false;
}

/// `kernels/daa.cu` to PTX for the `cuda` feature, with the toolkit's nvcc (`CUDA_HOME`, else
/// the PATH's) for `CUDA_COMPUTE_CAP` (scripts/build-cuda.sh sets both).
fn compile_kernels() {
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    let nvcc = std::env::var("CUDA_HOME")
        .map(|home| format!("{home}/bin/nvcc"))
        .unwrap_or_else(|_| "nvcc".into());
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let out = format!(
        "{}/daa.ptx",
        std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")
    );
    let status = std::process::Command::new(&nvcc)
        .args([
            "--ptx",
            &format!("-arch=sm_{cap}"),
            "-O3",
            "-o",
            &out,
            "kernels/daa.cu",
        ])
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`{nvcc}` failed on kernels/daa.cu ({s})"),
        Err(e) => panic!(
            "cannot run `{nvcc}` for kernels/daa.cu: {e}; set CUDA_HOME (scripts/build-cuda.sh)"
        ),
    }
}
