//! The closed-form penalty against candle's double backprop, which needs
//! CANDLE_GRAD_DO_NOT_DETACH=1 (read once per thread): this test binary sets it first.

mod common;

use common::critic::{batch, critic, layers, scalar};
use daa::adapt::critic::PenaltyGradient;

#[test]
fn closed_form_penalty_equals_double_backprop_in_value_and_weight_gradients() {
    // SAFETY: set before any backward pass in this test binary, which has no other tests.
    unsafe { std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1") };
    let layers = layers(9);
    let critic = critic(&layers);
    let (real, fake) = (batch(10, 5), batch(11, 5));
    let run = |mode| {
        let mut s = daa::rng::stream(3, "penalty", 0);
        let value = critic
            .gradient_penalty(&real, &fake, 10.0, mode, &mut s)
            .unwrap();
        let grads = value.backward().unwrap();
        let weights: Vec<Vec<f64>> = layers
            .iter()
            .flat_map(|(w, b)| [w, b])
            .map(|v| {
                grads
                    .get(v)
                    .map(|g| g.flatten_all().unwrap().to_vec1::<f64>().unwrap())
                    .unwrap_or_else(|| vec![0.0; v.elem_count()])
            })
            .collect();
        (scalar(&value), weights)
    };
    let (closed, closed_grads) = run(PenaltyGradient::ClosedForm);
    let (double, double_grads) = run(PenaltyGradient::DoubleBackprop);
    assert!(
        (closed - double).abs() <= 1e-10 * closed.abs(),
        "{closed} vs {double}"
    );
    for (a, b) in closed_grads
        .iter()
        .flatten()
        .zip(double_grads.iter().flatten())
    {
        assert!((a - b).abs() <= 1e-4 * b.abs().max(1e-6), "{a} vs {b}");
    }
}
