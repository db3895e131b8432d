//! The CUDA kernels' source (`kernels/daa.cu`), compiled as C by the host's compiler with
//! each kernel's grid run as loops, against the Rust twins the CPU tests pin: the kernels'
//! arithmetic and indexing are tested on machines without a GPU (the launch itself, on a
//! GPU, by tests/parity.rs under scripts/gpu-check.sh).

use std::path::Path;
use std::process::Command;

use daa::nn::counter_mask::{StreamKey, keep_threshold, mask_at};
use daa::nn::dropout_scale;
use daa::rng;

/// Runs `main_body` (C statements; the kernels and the emulated `blockIdx`, `blockDim`
/// and `threadIdx` in scope) and returns what it printed.
fn run_c(dir: &Path, main_body: &str) -> String {
    let kernels = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels/daa.cu");
    let source = format!(
        "#include <stdio.h>\n#include <stdlib.h>\n\
         typedef struct {{ unsigned int x, y, z; }} daa_dim3;\n\
         static daa_dim3 blockIdx, threadIdx, blockDim;\n\
         #include \"{}\"\n\
         int main(int argc, char **argv) {{ (void)argc; (void)argv;\n{main_body}\nreturn 0; }}\n",
        kernels.display()
    );
    let (c, exe) = (dir.join("emulate.c"), dir.join("emulate"));
    std::fs::write(&c, source).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = Command::new(&cc)
        .args(["-std=c99", "-O1", "-Wno-unknown-pragmas", "-o"])
        .arg(&exe)
        .arg(&c)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}` (set CC): {e}"));
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let ran = Command::new(&exe).output().unwrap();
    assert!(ran.status.success());
    String::from_utf8(ran.stdout).unwrap()
}

#[test]
fn the_dropout_mask_kernel_computes_the_cpu_streams_mask() {
    let dir = tempfile::tempdir().unwrap();
    let stream = rng::stream(11, "dropout", 4);
    let key = StreamKey::of(&stream);
    // Unaligned and aligned starts, a tail shorter than a block, a grid of several blocks,
    // a block counter past 2^32.
    let cases: [(u64, usize, f64); 5] = [
        (0, 16, 0.5),
        (5, 40, 0.1),
        (1000, 3000, 0.3),
        (17, 1, 0.9),
        ((1 << 36) + 9, 700, 0.5),
    ];
    let mut body = String::new();
    for (start, n, p) in cases {
        let words: Vec<String> = key.key.iter().map(|w| format!("{w}u")).collect();
        body.push_str(&format!(
            "{{ unsigned long long n = {n}, start = {start}ull;\n\
               float *out = calloc(n, sizeof(float));\n\
               unsigned long long blocks = (start + n - 1) / 16 - start / 16 + 1;\n\
               blockDim.x = 256;\n\
               for (blockIdx.x = 0; blockIdx.x < (blocks + 255) / 256; ++blockIdx.x)\n\
                 for (threadIdx.x = 0; threadIdx.x < 256; ++threadIdx.x)\n\
                   dropout_mask_chacha8(out, n, start, {}, {}ull, {}ull, {:?}f);\n\
               for (unsigned long long i = 0; i < n; ++i) printf(\"%a \", out[i]);\n\
               printf(\"\\n\"); free(out); }}\n",
            words.join(", "),
            key.nonce,
            keep_threshold(p),
            dropout_scale(p),
        ));
    }
    let printed = run_c(dir.path(), &body);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for ((start, n, p), line) in cases.into_iter().zip(lines) {
        let kernel: Vec<f32> = line.split_whitespace().map(parse_hex_float).collect();
        let twin = mask_at(&key, start, n, keep_threshold(p), dropout_scale(p));
        assert_eq!(kernel, twin, "{n} words from {start}, p {p}");
        assert!(twin.contains(&0.0) || n < 8, "masks drop some units");
    }
}

/// A C `%a` float (`0x1.2p+1`, `0x0p+0`).
fn parse_hex_float(text: &str) -> f32 {
    let (mantissa, exponent) = text.split_once('p').expect("%a has an exponent");
    let exponent: i32 = exponent.parse().unwrap();
    let digits = mantissa.trim_start_matches("0x");
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let mut value = u64::from_str_radix(whole, 16).unwrap() as f64;
    for (i, d) in fraction.chars().enumerate() {
        value += f64::from(d.to_digit(16).unwrap()) / 16f64.powi(i as i32 + 1);
    }
    (value * 2f64.powi(exponent)) as f32
}
