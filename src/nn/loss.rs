//! Binary cross-entropy, numerically stable on saturated logits.

use candle_core::{Result, Tensor};

/// Mean BCE of logits `x` against 0/1 targets `y`: relu(x) - x y + log(1 + exp(-|x|)),
/// PyTorch's BCEWithLogitsLoss.
pub fn bce_with_logits(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let softplus = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (x.relu()? - (x * y)?)?.add(&softplus)?.mean_all()
}

/// Mean BCE of probabilities, each log clamped at -100 as PyTorch's BCELoss.
pub fn bce(p: &Tensor, y: &Tensor) -> Result<Tensor> {
    let log_p = p.log()?.maximum(-100.0)?;
    let log_q = p.affine(-1.0, 1.0)?.log()?.maximum(-100.0)?;
    let one_minus_y = y.affine(-1.0, 1.0)?;
    ((y * log_p)? + (one_minus_y * log_q)?)?.neg()?.mean_all()
}
