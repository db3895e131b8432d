//! Gradients against central finite differences, and small f64 matrices, for the tests of
//! differentiable terms.

use candle_core::{Device, Tensor, Var};

/// An f64 matrix on the CPU from its rows.
pub fn matrix(rows: &[&[f64]]) -> Tensor {
    let data: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_vec(data, (rows.len(), rows[0].len()), &Device::Cpu).unwrap()
}

/// Checks the gradients of the scalar `f(a, b)` with respect to both f64 inputs against
/// central differences of step `eps`, to absolute tolerance `tol`.
pub fn check_both(
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    eps: f64,
    tol: f64,
) {
    let (va, vb) = (Var::from_tensor(a).unwrap(), Var::from_tensor(b).unwrap());
    let grads = f(va.as_tensor(), vb.as_tensor())
        .unwrap()
        .backward()
        .unwrap();
    let value = |a: &Tensor, b: &Tensor| f(a, b).unwrap().to_scalar::<f64>().unwrap();
    for (which, input) in [(0, a), (1, b)] {
        let var = if which == 0 { &va } else { &vb };
        let analytic = grads
            .get(var.as_tensor())
            .map(|g| g.flatten_all().unwrap().to_vec1::<f64>().unwrap())
            .unwrap_or_else(|| vec![0.0; input.elem_count()]);
        let flat = input.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for (i, &g) in analytic.iter().enumerate() {
            let moved = |delta: f64| {
                let mut x = flat.clone();
                x[i] += delta;
                Tensor::from_vec(x, input.shape(), input.device()).unwrap()
            };
            let numeric = if which == 0 {
                (value(&moved(eps), b) - value(&moved(-eps), b)) / (2.0 * eps)
            } else {
                (value(a, &moved(eps)) - value(a, &moved(-eps))) / (2.0 * eps)
            };
            assert!(
                (numeric - g).abs() < tol,
                "input {which} element {i}: analytic {g}, finite difference {numeric}"
            );
        }
    }
}
