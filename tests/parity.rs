//! Parity with PyTorch: fixtures from tools/make_parity_fixtures.py hold MTReclib-defined
//! backbones' weights, eval-mode outputs on the sample rows, and one training step's loss,
//! gradients and BatchNorm statistics. Every backbone must match: forward within 1e-5,
//! loss and gradients within 1e-4 relative, through the fused CPU kernels and through the
//! portable paths other devices take. `PARITY_DEVICE=cuda:0` (a `--features cuda` build)
//! runs the same checks on a GPU, through candle's operations and through daa's CUDA
//! kernels (`train.kernels = "device"`), and holds those kernels to the CPU's bits.

mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use daa::data::batch::{Batches, LastBatch, field_offsets};
use daa::data::cache::load_csv;
use daa::models::{Dims, build_backbone};
use daa::nn::embedding::Config as Embedding;
use daa::nn::{Mode, Params};
use serde_json::json;

/// The device under test: `PARITY_DEVICE` (`cpu`, `cuda:N`), the CPU by default.
fn device() -> Device {
    std::env::var("PARITY_DEVICE")
        .map(|name| name.parse::<daa::device::Device>().unwrap().open().unwrap())
        .unwrap_or(Device::Cpu)
}

fn registry() -> daa::config::Registry {
    daa::catalog::registry(common::repo().join("registry"))
}

fn schema() -> daa::data::Schema {
    serde_json::from_value(
        registry().entry("schemas", "aliexpress").unwrap().params["schema"].clone(),
    )
    .unwrap()
}

/// The AliExpress schema's sizes, the embedding narrowed as `SMALL` narrows it in
/// tools/make_parity_fixtures.py.
fn dims() -> Dims {
    let schema = schema();
    let mut embedding: Embedding =
        serde_json::from_value(registry().entry("embeddings", "fields").unwrap().params).unwrap();
    embedding.dim = 8;
    Dims {
        cardinalities: schema.categorical.cardinalities.clone(),
        numerical: schema.numerical_names().len(),
        tasks: schema.labels.len(),
        embedding,
    }
}

/// The registry's backbone entry (its experts, gates and critics) at the fixtures' small
/// widths (`SMALL` in tools/make_parity_fixtures.py).
fn config(kind: &str) -> serde_json::Value {
    let mut params = registry().entry("backbones", kind).unwrap().params;
    params["bottom_dims"] = json!([16, 8]);
    params["tower_dims"] = json!([8, 4]);
    params["dropout"] = json!(0.0);
    params
}

/// The 100 sample rows as one batch of tensors.
fn sample(device: &Device) -> (Tensor, Tensor, Tensor) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("train.csv");
    std::fs::copy(
        common::repo().join("tests/fixtures/aliexpress-sample/train.csv"),
        &csv,
    )
    .unwrap();
    let schema = schema();
    let table = load_csv(&csv, &schema).unwrap().table;
    let order = (0..table.rows() as u32).collect();
    let batch = Batches::new(
        &table,
        order,
        100,
        LastBatch::Keep,
        Some(field_offsets(&schema.categorical.cardinalities)),
    )
    .next()
    .unwrap();
    let t = batch.to_tensors(16, 63, device).unwrap();
    (t.categorical, t.numerical, t.labels)
}

fn fixture(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        common::repo().join("tests/fixtures/parity").join(name),
        &Device::Cpu,
    )
    .unwrap()
}

/// max |a - b| / max(max |b|, floor).
fn relative_error(a: &Tensor, b: &Tensor, floor: f32) -> f32 {
    let diff = (a.to_device(b.device()).unwrap() - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let scale = b
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    diff / scale.max(floor)
}

/// Runs `f` with daa's CUDA kernels (`train.kernels = "device"`): on a CUDA device the
/// backbones' BatchNorm, mixture and lookup run as those kernels; the CPU is unchanged.
fn with_device_kernels(f: impl FnOnce()) {
    let _kernels = daa::nn::use_kernels(daa::config::schema::Kernels::Device);
    f()
}

fn check(kind: &str) {
    let expected = fixture(&format!("{kind}.expected.safetensors"));
    let device = device();
    let mut params = Params::new(&device, 0);
    let model = build_backbone(kind, &config(kind), &dims(), &mut params).unwrap();
    params
        .load(&common::repo().join(format!("tests/fixtures/parity/{kind}.safetensors")))
        .unwrap();
    let (categorical, numerical, labels) = sample(&device);

    let eval = model
        .forward(&categorical, &numerical, &mut Mode::eval())
        .unwrap();
    let diff = relative_error(&eval.probabilities, &expected["eval.probabilities"], 1.0);
    assert!(diff <= 1e-5, "{kind}: eval probabilities differ by {diff}");
    assert_eq!(eval.feature.dims(), &[100, model.feature_width()]);

    let mut train = Mode::train(None);
    let out = model.forward(&categorical, &numerical, &mut train).unwrap();
    let losses = out.task_losses(&labels).unwrap();
    let loss = losses
        .iter()
        .skip(1)
        .fold(losses[0].clone(), |a, b| (a + b).unwrap());
    let error = relative_error(&loss, &expected["train.loss"], 1e-8);
    assert!(
        error <= 1e-4,
        "{kind}: loss differs, relative error {error}"
    );

    let grads = loss.backward().unwrap();
    let fused: Vec<_> = params
        .trainable()
        .into_iter()
        .map(|v| {
            let g = grads
                .get(&v)
                .cloned()
                .unwrap_or_else(|| v.zeros_like().unwrap())
                .to_device(&Device::Cpu)
                .unwrap();
            (v, g)
        })
        .collect();
    let by_name = params.split_by_name(&fused).unwrap();
    let expected_grads: Vec<_> = expected.keys().filter(|k| k.starts_with("grad.")).collect();
    assert_eq!(
        by_name.len(),
        expected_grads.len(),
        "{kind}: one gradient per parameter"
    );
    let largest = |t: &Tensor| {
        t.abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let scale = expected
        .iter()
        .filter(|(k, _)| k.starts_with("grad."))
        .map(|(_, g)| largest(g))
        .fold(0.0, f32::max);
    let mut compared = 0;
    for (name, grad) in &by_name {
        let reference = &expected[&format!("grad.{name}")];
        if largest(reference) <= 1e-5 * scale {
            // A direction a train-mode BatchNorm cancels (a bias feeding it, directly or
            // through a constant shift): the true gradient is zero and both frameworks
            // hold float32 noise, which must stay at that level.
            assert!(
                largest(grad) <= 1e-5 * scale,
                "{kind}: {name} should have a zero gradient, ours is {}",
                largest(grad)
            );
            continue;
        }
        compared += 1;
        let error = relative_error(grad, reference, 1e-6);
        assert!(
            error <= 1e-4,
            "{kind}: gradient of {name} differs, relative error {error}"
        );
    }
    assert!(
        compared * 2 > by_name.len(),
        "{kind}: most gradients are compared by value"
    );
    let state = params.state_dict().unwrap();
    for (key, value) in expected.iter().filter(|(k, _)| k.starts_with("after.")) {
        let name = &key["after.".len()..];
        let ours = &state[name];
        if name.ends_with("num_batches_tracked") {
            assert_eq!(
                ours.to_scalar::<i64>().unwrap(),
                value.to_scalar::<i64>().unwrap(),
                "{kind}: {name}"
            );
        } else {
            let error = relative_error(ours, value, 1e-6);
            assert!(
                error <= 1e-5,
                "{kind}: BatchNorm statistic {name} differs, relative error {error}"
            );
        }
    }
}

/// Every backbone of the table against its PyTorch fixture: a backbone added without one
/// fails here.
#[test]
fn every_backbone_matches_pytorch() {
    for kind in daa::models::BACKBONES.iter().map(|k| k.name) {
        check(kind);
        daa::nn::with_portable_kernels(|| check(kind));
        with_device_kernels(|| check(kind));
    }
}

/// On the device under test with daa's kernels (`train.kernels = "device"`), dropout draws
/// the CPU's masks bit for bit and leaves its stream where the CPU leaves it. On the CPU
/// both sides are the CPU's draw; the check is for `PARITY_DEVICE=cuda:N`.
#[test]
fn device_kernels_draw_the_cpu_dropout_masks() {
    let device = device();
    let _kernels = daa::nn::use_kernels(daa::config::schema::Kernels::Device);
    for (shape, p) in [((3usize, 5usize), 0.5), ((64, 1000), 0.1), ((7, 33), 0.9)] {
        let x = Tensor::ones(shape, candle_core::DType::F32, &device).unwrap();
        let mut on_device = daa::rng::stream(5, "dropout", 1);
        let mut on_host = daa::rng::stream(5, "dropout", 1);
        // Start both mid-block, as a layer after an odd-sized one does.
        daa::nn::dropout_mask(3, p, &mut on_device);
        daa::nn::dropout_mask(3, p, &mut on_host);
        let mut mode = Mode::train(Some(&mut on_device));
        let got = daa::nn::dropout(&x, p, &mut mode).unwrap();
        let expected = daa::nn::dropout_mask(shape.0 * shape.1, p, &mut on_host);
        assert_eq!(
            got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            expected,
            "{shape:?}, p {p}"
        );
        assert_eq!(on_device.get_word_pos(), on_host.get_word_pos());
    }
}

/// With daa's kernels, the input layer's lookup and its table gradient (a segment sum on
/// CUDA) are the CPU's `index_select` and `index_add`, bit for bit.
#[test]
fn device_kernels_look_up_and_sum_embeddings_as_the_cpu_does() {
    use candle_core::Var;
    use rand::Rng;
    let device = device();
    let mut stream = daa::rng::stream(9, "test", 0);
    let (batch, fields, dim, rows) = (300usize, 4usize, 8usize, 50u32);
    let ids: Vec<u32> = (0..batch * fields)
        .map(|j| (j % fields) as u32 * rows + stream.random_range(0..(1 + 3 * (j % fields) as u32)))
        .collect();
    let table: Vec<f32> = (0..rows as usize * fields * dim)
        .map(|_| stream.random::<f32>() - 0.5)
        .collect();
    let weights: Vec<f32> = (0..batch * fields * dim).map(|_| stream.random()).collect();
    // Candle's lookup (index_select, backward index_add) or daa's (`Lookup`).
    let step = |device: &Device, ours: bool| {
        let ids = Tensor::from_slice(&ids, (batch, fields), device).unwrap();
        let table = Var::from_tensor(
            &Tensor::from_slice(&table, (rows as usize * fields, dim), device).unwrap(),
        )
        .unwrap();
        let weights = Tensor::from_slice(&weights, (batch * fields, dim), device).unwrap();
        let looked = if ours {
            table.as_tensor().apply_op2(&ids, daa::nn::lookup::Lookup)
        } else {
            table.embedding(&ids.flatten_all().unwrap())
        }
        .unwrap();
        let grads = (&looked * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        (flat(&looked), flat(grads.get(&table).unwrap()))
    };
    let cpu = step(&Device::Cpu, false);
    let ours = step(&device, true);
    assert_eq!(ours.0, cpu.0, "lookup");
    assert_eq!(ours.1, cpu.1, "table gradient");
}

/// With daa's kernels, Adam and AdamW update parameters and moments as the CPU's fused
/// kernels do, bit for bit.
#[test]
fn device_kernels_take_adam_steps_as_the_cpu_does() {
    use candle_core::Var;
    use daa::config::schema::Optimizer;
    use rand::Rng;
    let device = device();
    let mut stream = daa::rng::stream(4, "test", 0);
    let start: Vec<f32> = (0..5000).map(|_| stream.random::<f32>() - 0.5).collect();
    let weights: Vec<f32> = (0..5000)
        .map(|_| stream.random::<f32>() * 4.0 - 2.0)
        .collect();
    for kind in [Optimizer::Adam, Optimizer::Adamw] {
        let train = |device: &Device| {
            let p =
                Var::from_tensor(&Tensor::from_slice(&start, (50, 100), device).unwrap()).unwrap();
            let w = Tensor::from_slice(&weights, (50, 100), device).unwrap();
            let mut adam = daa::nn::optim::Adam::new(vec![p.clone()], kind, 1e-3, 0.01);
            for _ in 0..3 {
                let loss = (p.as_tensor() * &w)
                    .unwrap()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap();
                adam.step(&loss.backward().unwrap()).unwrap();
            }
            p.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let cpu = train(&Device::Cpu);
        let _kernels = daa::nn::use_kernels(daa::config::schema::Kernels::Device);
        assert_eq!(train(&device), cpu, "{kind:?}");
    }
}

/// With daa's kernels, the gated mixture and its gradients are the CPU kernel's, bit for
/// bit.
#[test]
fn device_kernels_mix_experts_as_the_cpu_does() {
    use candle_core::Var;
    use rand::Rng;
    let device = device();
    let mut stream = daa::rng::stream(6, "test", 0);
    let (n_e, batch, n_g, width) = (8usize, 300usize, 2usize, 37usize);
    let mut draw =
        |n: usize| -> Vec<f32> { (0..n).map(|_| stream.random::<f32>() - 0.5).collect() };
    let (experts, gates, weights) = (
        draw(n_e * batch * width),
        draw(batch * n_g * n_e),
        draw(batch * n_g * width),
    );
    let mix = |device: &Device| {
        let var = |v: &[f32], shape: (usize, usize, usize)| {
            Var::from_tensor(&Tensor::from_slice(v, shape, device).unwrap()).unwrap()
        };
        let (e, g) = (
            var(&experts, (n_e, batch, width)),
            var(&gates, (batch, n_g, n_e)),
        );
        let w = Tensor::from_slice(&weights, (batch, n_g, width), device).unwrap();
        let out = daa::models::mix(e.as_tensor(), g.as_tensor()).unwrap();
        let grads = (&out * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        [
            flat(&out),
            flat(grads.get(&e).unwrap()),
            flat(grads.get(&g).unwrap()),
        ]
    };
    let cpu = mix(&Device::Cpu);
    let _kernels = daa::nn::use_kernels(daa::config::schema::Kernels::Device);
    assert_eq!(mix(&device), cpu);
}

/// With daa's kernels, training-mode BatchNorm -> ReLU -> dropout (output, gradients of
/// the input, weight and bias, running statistics) is the CPU's fused kernel, bit for bit.
#[test]
fn device_kernels_normalise_as_the_cpu_does() {
    use candle_core::Var;
    use daa::nn::batchnorm::BatchNorm;
    use rand::Rng;
    let device = device();
    let mut stream = daa::rng::stream(10, "test", 0);
    let mut draw =
        |n: usize| -> Vec<f32> { (0..n).map(|_| stream.random::<f32>() * 2.0 - 1.0).collect() };
    let (x, shift, weights) = (draw(3 * 200 * 40), draw(120), draw(3 * 200 * 40));
    for batch_dim in [0, 1] {
        let shape: &[usize] = if batch_dim == 0 {
            &[200, 120]
        } else {
            &[3, 200, 40]
        };
        let step = |device: &Device| {
            let mut params = Params::new(device, 0);
            let norm = BatchNorm::new(&mut params, &["a", "b", "c"].map(String::from), 40).unwrap();
            let x = Var::from_tensor(&Tensor::from_slice(&x, shape, device).unwrap()).unwrap();
            let shift = Tensor::from_slice(&shift, 120, device).unwrap();
            let w = Tensor::from_slice(&weights, (3, 200, 40), device).unwrap();
            let mut noise = daa::rng::stream(7, "dropout", 0);
            let y = norm
                .norm_relu_dropout(
                    x.as_tensor(),
                    &shift,
                    batch_dim,
                    0.3,
                    &mut Mode::train(Some(&mut noise)),
                )
                .unwrap();
            let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let mut out = vec![flat(&y), flat(grads.get(&x).unwrap())];
            for (_, var) in params.named_trainable() {
                out.push(flat(grads.get(&var).unwrap()));
            }
            for (name, value) in params.state_dict().unwrap() {
                if name.contains("running") {
                    out.push(flat(&value));
                }
            }
            out
        };
        let cpu = step(&Device::Cpu);
        let _kernels = daa::nn::use_kernels(daa::config::schema::Kernels::Device);
        assert_eq!(step(&device), cpu, "batch dim {batch_dim}");
    }
}
