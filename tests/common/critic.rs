//! A small f64 critic with fixed random weights, for the gradient-penalty tests.

use candle_core::{DType, Device, Tensor, Var};
use daa::adapt::critic::{Critic, Head};
use rand::Rng;

pub fn layers(seed: u64) -> Vec<(Var, Var)> {
    let mut s = daa::rng::stream(seed, "test/critic", 0);
    let dims = [(5, 4), (3, 5), (1, 3)];
    dims.iter()
        .map(|&(out, input)| {
            let w: Vec<f64> = (0..out * input)
                .map(|_| s.random_range(-1.0..1.0))
                .collect();
            let b: Vec<f64> = (0..out).map(|_| s.random_range(-0.5..0.5)).collect();
            (
                Var::from_tensor(&Tensor::from_vec(w, (out, input), &Device::Cpu).unwrap())
                    .unwrap(),
                Var::from_tensor(&Tensor::from_vec(b, out, &Device::Cpu).unwrap()).unwrap(),
            )
        })
        .collect()
}

pub fn critic(layers: &[(Var, Var)]) -> Critic {
    Critic::from_layers(layers.to_vec(), 0.2, Head::Linear)
}

pub fn batch(seed: u64, rows: usize) -> Tensor {
    let mut s = daa::rng::stream(seed, "test/batch", 0);
    let v: Vec<f64> = (0..rows * 4).map(|_| s.random_range(-2.0..2.0)).collect();
    Tensor::from_vec(v, (rows, 4), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
}

pub fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}
