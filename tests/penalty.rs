//! The WGAN-GP penalty's closed-form input gradient and its gradient with respect to the
//! critic weights, against central finite differences (f64).

mod common;

use candle_core::{Device, Tensor};
use common::critic::{batch, critic, layers, scalar};
use daa::adapt::critic::PenaltyGradient;

const H: f64 = 1e-6;

#[test]
fn closed_form_input_gradient_matches_finite_differences() {
    let layers = layers(1);
    let critic = critic(&layers);
    let x = batch(2, 3);
    let closed = critic.input_gradient(&x).unwrap().to_vec2::<f64>().unwrap();
    let rows = x.to_vec2::<f64>().unwrap();
    for r in 0..rows.len() {
        for c in 0..4 {
            let shifted = |d: f64| {
                let mut m = rows.clone();
                m[r][c] += d;
                let t = Tensor::new(m, &Device::Cpu).unwrap();
                scalar(&critic.forward(&t).unwrap().sum_all().unwrap())
            };
            let numeric = (shifted(H) - shifted(-H)) / (2.0 * H);
            assert!(
                (closed[r][c] - numeric).abs() < 1e-6,
                "[{r}][{c}]: closed {} vs numeric {numeric}",
                closed[r][c]
            );
        }
    }
}

#[test]
fn penalty_gradient_in_the_critic_weights_matches_finite_differences() {
    let layers = layers(3);
    let critic = critic(&layers);
    let (real, fake) = (batch(4, 6), batch(5, 6));
    let penalty = |stream_seed| {
        let mut s = daa::rng::stream(stream_seed, "penalty", 0);
        critic
            .gradient_penalty(&real, &fake, 10.0, PenaltyGradient::ClosedForm, &mut s)
            .unwrap()
    };
    let value = penalty(7);
    assert!(scalar(&value) > 0.0);
    let grads = value.backward().unwrap();
    let mut checked = 0;
    for (w, b) in &layers {
        for var in [w, b] {
            // Biases reach the input gradient only through the LeakyReLU slopes, which are
            // constant almost everywhere: no gradient, and finite differences agree.
            let base = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let analytic = grads.get(var).map_or(vec![0.0; base.len()], |g| {
                g.flatten_all().unwrap().to_vec1::<f64>().unwrap()
            });
            for i in 0..base.len() {
                let at = |d: f64| {
                    let mut v = base.clone();
                    v[i] += d;
                    var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                        .unwrap();
                    scalar(&penalty(7))
                };
                let numeric = (at(H) - at(-H)) / (2.0 * H);
                var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                let scale = numeric.abs().max(1e-6);
                assert!(
                    (analytic[i] - numeric).abs() / scale < 1e-4,
                    "weight {i}: analytic {} vs numeric {numeric}",
                    analytic[i]
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 5 * 4 + 5 + 3 * 5 + 3 + 3 + 1);
}

#[test]
fn released_log_softmax_head_is_identically_zero() {
    let layers = layers(5);
    let critic = daa::adapt::critic::Critic::from_layers(
        layers.clone(),
        0.2,
        daa::adapt::critic::Head::LogSoftmax,
    );
    let x = batch(6, 8);
    let scores = critic.forward(&x).unwrap();
    assert_eq!(scalar(&scores.abs().unwrap().sum_all().unwrap()), 0.0);
    let mut s = daa::rng::stream(1, "penalty", 0);
    let penalty = critic
        .gradient_penalty(&x, &batch(7, 8), 10.0, PenaltyGradient::ClosedForm, &mut s)
        .unwrap();
    assert_eq!(
        scalar(&penalty),
        10.0,
        "the gradient is zero, so the penalty is the constant weight"
    );
}
