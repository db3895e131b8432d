//! The CUDA kernels' source (`kernels/daa.cu`), compiled as C by the host's compiler with
//! each kernel's grid run as loops, against the Rust twins the CPU tests pin: the kernels'
//! arithmetic and indexing are tested on machines without a GPU (the launch itself, on a
//! GPU, by tests/parity.rs under scripts/gpu-check.sh).

use std::path::Path;
use std::process::Command;

use candle_core::{Device, Tensor};
use daa::nn::counter_mask::{StreamKey, keep_threshold, mask_at};
use daa::nn::dropout_scale;
use daa::nn::lookup::{Lookup, SegmentSum};
use daa::rng;
use rand::Rng;

/// Runs `main_body` (C statements; the kernels and the emulated `blockIdx`, `blockDim`
/// and `threadIdx` in scope) and returns what it printed.
fn run_c(dir: &Path, main_body: &str) -> String {
    let kernels = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels/daa.cu");
    let source = format!(
        "#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n\
         typedef struct {{ unsigned int x, y, z; }} daa_dim3;\n\
         static daa_dim3 blockIdx, threadIdx, blockDim;\n\
         static unsigned int daa_shared[1 << 14];\n\
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
        .arg("-lm")
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

/// A C array literal of `values` (floats as Rust's shortest round-trip digits, which C
/// reads back as the same f32).
fn c_array<T: std::fmt::Debug>(values: &[T], suffix: &str) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:?}{suffix}")).collect();
    format!("{{{}}}", items.join(", "))
}

fn floats(line: &str) -> Vec<f32> {
    line.split_whitespace().map(parse_hex_float).collect()
}

#[test]
fn the_embedding_kernels_compute_the_lookup_and_its_segment_sum() {
    let dir = tempfile::tempdir().unwrap();
    let mut stream = rng::stream(2, "test", 0);
    // A batch that is not a power of two (padded sort), a field with few ids (long
    // segments), rows no id names.
    let (batch, fields, dim, rows) = (37usize, 3usize, 5usize, 40usize);
    let cards = [2u32, 9, 13];
    let offsets = [0u32, 2, 11];
    let ids: Vec<u32> = (0..batch * fields)
        .map(|j| offsets[j % fields] + stream.random_range(0..cards[j % fields]))
        .collect();
    let table: Vec<f32> = (0..rows * dim)
        .map(|_| stream.random::<f32>() - 0.5)
        .collect();
    let grad: Vec<f32> = (0..batch * fields * dim)
        .map(|_| stream.random::<f32>() * 2.0 - 1.0)
        .collect();
    let body = format!(
        "unsigned int ids[] = {ids};\n\
         float table[] = {table};\n\
         float grad[] = {grad};\n\
         float *looked = calloc({n}, sizeof(float)), *summed = calloc({m}, sizeof(float));\n\
         blockDim.x = 64;\n\
         for (blockIdx.x = 0; blockIdx.x < ({n} + 63) / 64; ++blockIdx.x)\n\
           for (threadIdx.x = 0; threadIdx.x < 64; ++threadIdx.x)\n\
             embedding_gather(table, ids, looked, {j}ull, {dim});\n\
         blockDim.x = 1; threadIdx.x = 0;\n\
         for (blockIdx.x = 0; blockIdx.x < {fields}; ++blockIdx.x)\n\
           embedding_segment_sum(grad, ids, summed, {batch}, {fields}, {dim}, 64);\n\
         for (int i = 0; i < {n}; ++i) printf(\"%a \", looked[i]); printf(\"\\n\");\n\
         for (int i = 0; i < {m}; ++i) printf(\"%a \", summed[i]); printf(\"\\n\");",
        ids = c_array(&ids, "u"),
        table = c_array(&table, "f"),
        grad = c_array(&grad, "f"),
        n = batch * fields * dim,
        m = rows * dim,
        j = batch * fields,
    );
    let printed = run_c(dir.path(), &body);
    let lines: Vec<&str> = printed.lines().collect();

    let dev = Device::Cpu;
    let ids = Tensor::from_vec(ids, (batch, fields), &dev).unwrap();
    let table = Tensor::from_vec(table, (rows, dim), &dev).unwrap();
    let grad = Tensor::from_vec(grad, (batch * fields, dim), &dev).unwrap();
    let looked = table.apply_op2_no_bwd(&ids, &Lookup).unwrap();
    let summed = grad.apply_op2_no_bwd(&ids, &SegmentSum { rows }).unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(floats(lines[0]), flat(&looked));
    assert_eq!(floats(lines[1]), flat(&summed));
    assert!(flat(&summed).iter().any(|&g| g != 0.0));
}

#[test]
fn the_adam_kernels_update_as_the_cpu_kernels_do() {
    use candle_core::Var;
    use daa::config::schema::Optimizer;
    use daa::nn::optim::Adam;
    let dir = tempfile::tempdir().unwrap();
    let mut stream = rng::stream(3, "test", 0);
    let n = 1000;
    let start: Vec<f32> = (0..n).map(|_| stream.random::<f32>() - 0.5).collect();
    let weights: Vec<f32> = (0..n).map(|_| stream.random::<f32>() * 4.0 - 2.0).collect();
    let (lr, decay, steps) = (1e-3, 0.01, 3);
    for kind in [Optimizer::Adam, Optimizer::Adamw] {
        // The CPU: three steps on sum(p * w), whose gradient is w.
        let dev = Device::Cpu;
        let p = Var::from_tensor(&Tensor::new(start.as_slice(), &dev).unwrap()).unwrap();
        let w = Tensor::new(weights.as_slice(), &dev).unwrap();
        let mut adam = Adam::new(vec![p.clone()], kind, lr, decay);
        for _ in 0..steps {
            let grads = (p.as_tensor() * &w)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            adam.step(&grads).unwrap();
        }
        // The kernels, with the terms Adam computes per step.
        let (l2, decoupled) = match kind {
            Optimizer::Adam => (decay as f32, 0.0f32),
            Optimizer::Adamw => (0.0, (lr * decay) as f32),
        };
        let mut body = format!(
            "float p[] = {}; float w[] = {}; float *mv = calloc({}, sizeof(float));\n\
             blockDim.x = 128; threadIdx.x = 0;\n",
            c_array(&start, "f"),
            c_array(&weights, "f"),
            2 * n
        );
        for t in 1..=steps {
            let step_size = (lr / (1.0 - 0.9f64.powi(t))) as f32;
            let correction2 = (1.0 - 0.999f64.powi(t)).sqrt() as f32;
            body.push_str(&format!(
                "for (blockIdx.x = 0; blockIdx.x < 8; ++blockIdx.x)\n\
                   for (threadIdx.x = 0; threadIdx.x < 128; ++threadIdx.x)\n\
                     adam_moments(mv, w, p, {n}ull, 0.9f, 0.999f, {l2:?}f);\n\
                 for (blockIdx.x = 0; blockIdx.x < 8; ++blockIdx.x)\n\
                   for (threadIdx.x = 0; threadIdx.x < 128; ++threadIdx.x)\n\
                     adam_apply(p, mv, {n}ull, {step_size:?}f, {correction2:?}f, 1e-8f, {decoupled:?}f);\n"
            ));
        }
        body.push_str("for (int i = 0; i < 1000; ++i) printf(\"%a \", p[i]); printf(\"\\n\");");
        let printed = run_c(dir.path(), &body);
        let cpu = p.as_tensor().to_vec1::<f32>().unwrap();
        assert_eq!(floats(printed.trim_end()), cpu, "{kind:?}");
        assert!(
            cpu.iter().zip(&start).all(|(a, b)| a != b),
            "every parameter moved"
        );
    }
}

#[test]
fn the_mixture_kernels_compute_the_cpu_kernels_sums() {
    use candle_core::Var;
    let dir = tempfile::tempdir().unwrap();
    let mut stream = rng::stream(5, "test", 0);
    // A width with a tail after the eight-wide chunks of the gate gradient's dot product.
    let (n_e, batch, n_g, width) = (3usize, 7usize, 2usize, 19usize);
    let mut draw =
        |n: usize| -> Vec<f32> { (0..n).map(|_| stream.random::<f32>() * 2.0 - 1.0).collect() };
    let (experts, gates, grad) = (
        draw(n_e * batch * width),
        draw(batch * n_g * n_e),
        draw(batch * n_g * width),
    );
    let (n_out, n_packed) = (batch * n_g * width, n_e * batch * width + batch * n_g * n_e);
    let body = format!(
        "float experts[] = {}; float gates[] = {}; float grad[] = {};\n\
         float *out = calloc({n_out}, sizeof(float)), *packed = calloc({n_packed}, sizeof(float));\n\
         blockDim.x = 32;\n\
         for (blockIdx.x = 0; blockIdx.x < {fb}; ++blockIdx.x)\n\
           for (threadIdx.x = 0; threadIdx.x < 32; ++threadIdx.x)\n\
             mixture_forward(experts, gates, out, {n_e}, {batch}, {n_g}, {width});\n\
         for (blockIdx.x = 0; blockIdx.x < {bb}; ++blockIdx.x)\n\
           for (threadIdx.x = 0; threadIdx.x < 32; ++threadIdx.x)\n\
             mixture_backward(experts, gates, grad, packed, {n_e}, {batch}, {n_g}, {width});\n\
         for (int i = 0; i < {n_out}; ++i) printf(\"%a \", out[i]); printf(\"\\n\");\n\
         for (int i = 0; i < {n_packed}; ++i) printf(\"%a \", packed[i]); printf(\"\\n\");",
        c_array(&experts, "f"),
        c_array(&gates, "f"),
        c_array(&grad, "f"),
        fb = n_out.div_ceil(32),
        bb = n_packed.div_ceil(32),
    );
    let printed = run_c(dir.path(), &body);
    let lines: Vec<&str> = printed.lines().collect();

    // The CPU kernels: the mixture, and its backward on sum(out * grad).
    let dev = Device::Cpu;
    let e =
        Var::from_tensor(&Tensor::from_vec(experts, (n_e, batch, width), &dev).unwrap()).unwrap();
    let g = Var::from_tensor(&Tensor::from_vec(gates, (batch, n_g, n_e), &dev).unwrap()).unwrap();
    let w = Tensor::from_vec(grad, (batch, n_g, width), &dev).unwrap();
    let out = daa::nn::mixture::mixture(e.as_tensor(), g.as_tensor()).unwrap();
    let grads = (&out * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(floats(lines[0]), flat(&out));
    let mut packed = flat(grads.get(&e).unwrap());
    packed.extend(flat(grads.get(&g).unwrap()));
    assert_eq!(floats(lines[1]), packed);
}

#[test]
fn the_batchnorm_kernels_compute_the_cpu_kernels_forward_and_backward() {
    use candle_core::Var;
    use daa::nn::batchnorm::BatchNorm;
    use daa::nn::{Mode, Params, dropout_mask};
    let dir = tempfile::tempdir().unwrap();
    // Three fused layers of four features, batch 9: the layers side by side in one product
    // (batch dim 0: one group, its features split into three output planes) or stacked
    // (batch dim 1: three groups); with and without dropout.
    for (batch_dim, dropout) in [(0usize, true), (0, false), (1, true), (1, false)] {
        let (groups, batch, features, split) = match batch_dim {
            0 => (1usize, 9usize, 12usize, 3usize),
            _ => (3, 9, 4, 1),
        };
        let dev = Device::Cpu;
        let mut params = Params::new(&dev, 0);
        let norm = BatchNorm::new(&mut params, &["a", "b", "c"].map(String::from), 4).unwrap();
        let mut values = rng::stream(8, "test", batch_dim as u64);
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n).map(|_| values.random_range(-1.0f32..1.0)).collect() };
        let (weight, bias) = (draw(12), draw(12));
        for (name, var) in params.named_trainable() {
            let value = if name.ends_with("weight") {
                &weight
            } else {
                &bias
            };
            var.set(&Tensor::from_slice(value, 12, &dev).unwrap())
                .unwrap();
        }
        let x_values = draw(108);
        let x = Var::from_tensor(
            &Tensor::from_slice(
                &x_values,
                if batch_dim == 0 {
                    &[9, 12][..]
                } else {
                    &[3, 9, 4]
                },
                &dev,
            )
            .unwrap(),
        )
        .unwrap();
        let weights = draw(108);
        let shift = Tensor::from_vec(draw(12), 12, &dev).unwrap();
        let mut noise = dropout.then(|| rng::stream(7, "dropout", 0));
        let mask = noise.clone().map(|mut s| dropout_mask(108, 0.5, &mut s));
        let y = norm
            .norm_relu_dropout(
                x.as_tensor(),
                &shift,
                batch_dim,
                0.5,
                &mut Mode::train(noise.as_mut()),
            )
            .unwrap();
        let w = Tensor::from_slice(&weights, (3, 9, 4), &dev).unwrap();
        let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut packed = flat(grads.get(&x).unwrap());
        // The packed gradients: dx, then the weight's and the bias's (in that order).
        for (_, var) in params.named_trainable() {
            packed.extend(flat(grads.get(&var).unwrap()));
        }

        let (columns, n) = (groups * features, groups * batch * features);
        let mask_c = match &mask {
            Some(mask) => format!("float mask[] = {};", c_array(mask, "f")),
            None => "float *mask = 0;".into(),
        };
        let grid = |threads: usize, call: &str| {
            format!(
                "blockDim.x = 32;\n\
                 for (blockIdx.x = 0; blockIdx.x < {}; ++blockIdx.x)\n\
                   for (threadIdx.x = 0; threadIdx.x < 32; ++threadIdx.x) {call};\n",
                threads.div_ceil(32)
            )
        };
        let dims = format!("{groups}, {batch}, {features}, {split}");
        let body = format!(
            "float x[] = {}; float weight[] = {}; float bias[] = {}; float grad[] = {}; {mask_c}\n\
             float *stats = calloc({}, sizeof(float)), *terms = calloc({}, sizeof(float));\n\
             float *y = calloc({n}, sizeof(float)), *packed = calloc({}, sizeof(float));\n\
             {}{}{}{}\
             for (int i = 0; i < {n}; ++i) printf(\"%a \", y[i]); printf(\"\\n\");\n\
             for (int i = 0; i < {}; ++i) printf(\"%a \", packed[i]); printf(\"\\n\");",
            c_array(&x_values, "f"),
            c_array(&weight, "f"),
            c_array(&bias, "f"),
            c_array(&weights, "f"),
            3 * columns,
            3 * columns,
            n + 2 * columns,
            grid(
                columns,
                &format!(
                    "norm_stats(x, weight, bias, stats, terms, {groups}, {batch}, {features})"
                )
            ),
            grid(n, &format!("norm_apply(x, terms, mask, y, {dims})")),
            grid(
                columns,
                &format!(
                    "norm_grad_sums(x, y, grad, stats, weight, packed, terms, {:?}f, {dims})",
                    if dropout { 2.0f32 } else { 1.0 }
                )
            ),
            grid(
                n,
                &format!(
                    "norm_grad_input(x, y, grad, stats, terms, packed, {:?}f, {dims})",
                    if dropout { 2.0f32 } else { 1.0 }
                )
            ),
            n + 2 * columns,
        );
        let printed = run_c(dir.path(), &body);
        let lines: Vec<&str> = printed.lines().collect();
        let case = format!("batch dim {batch_dim}, dropout {dropout}");
        assert_eq!(floats(lines[0]), flat(&y), "{case}: output");
        assert_eq!(floats(lines[1]), packed, "{case}: dx, dw, db");
    }
}

/// A C `%a` float (`0x1.2p+1`, `0x0p+0`).
fn parse_hex_float(text: &str) -> f32 {
    if let Some(positive) = text.strip_prefix('-') {
        return -parse_hex_float(positive);
    }
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
