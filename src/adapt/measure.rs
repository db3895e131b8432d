//! Per-step scalars (losses, a distance, a domain loss) kept on their device and read once
//! per epoch for metrics.jsonl: a read waits for the device to finish, and once a step it
//! would stall a GPU at every step.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

/// One scalar per step, in step order, read when the epoch ends.
#[derive(Default)]
pub struct StepScalars {
    values: Vec<Tensor>,
}

impl StepScalars {
    /// Keeps a step's scalar (detached: the step's graph is not kept alive).
    pub fn push(&mut self, value: &Tensor) {
        self.values.push(value.detach());
    }

    /// The steps' values in order, as f32 (what a per-step read gave), and starts afresh.
    pub fn take(&mut self) -> candle_core::Result<Vec<f32>> {
        let values = std::mem::take(&mut self.values);
        if values.is_empty() {
            return Ok(Vec::new());
        }
        Tensor::stack(&values, 0)?.to_dtype(DType::F32)?.to_vec1()
    }
}

/// The sum in step order, in f64, and the first non-finite step (0-based) if any.
pub fn sum_and_first_non_finite(values: &[f32]) -> (f64, Option<usize>) {
    let sum = values.iter().map(|&v| f64::from(v)).sum();
    (sum, values.iter().position(|v| !v.is_finite()))
}

/// A method's measurement averaged over the epoch's steps.
pub struct EpochMean {
    name: &'static str,
    steps: StepScalars,
}

impl EpochMean {
    pub fn new(name: &'static str) -> Self {
        EpochMean {
            name,
            steps: StepScalars::default(),
        }
    }

    /// Adds a step's scalar.
    pub fn add(&mut self, value: &Tensor) {
        self.steps.push(value);
    }

    /// `{name: mean over the epoch's steps}`; starts the next epoch's mean.
    pub fn report(&mut self) -> candle_core::Result<serde_json::Map<String, serde_json::Value>> {
        let values = self.steps.take()?;
        let (sum, _) = sum_and_first_non_finite(&values);
        let mut report = serde_json::Map::new();
        report.insert(self.name.into(), (sum / values.len().max(1) as f64).into());
        Ok(report)
    }
}

/// How strongly a method's term pulls against the task loss: ||g_objective - g_task|| /
/// ||g_task||, the gradients of the whole objective and of the (weighted) task loss alone
/// with respect to the trained `vars`, as a scalar tensor (read with the epoch's others).
/// A variable that one of the two does not reach counts as a zero gradient there.
pub fn term_gradient_ratio(
    objective: &GradStore,
    task: &GradStore,
    vars: &[Var],
) -> candle_core::Result<Tensor> {
    let mut term_squares: Option<Tensor> = None;
    let mut task_squares: Option<Tensor> = None;
    let add = |sum: &mut Option<Tensor>, g: &Tensor| -> candle_core::Result<()> {
        let s = g.to_dtype(DType::F64)?.sqr()?.sum_all()?;
        *sum = Some(match sum.take() {
            Some(total) => (total + s)?,
            None => s,
        });
        Ok(())
    };
    for var in vars {
        match (objective.get(var), task.get(var)) {
            (Some(all), Some(own)) => {
                add(&mut term_squares, &(all - own)?)?;
                add(&mut task_squares, own)?;
            }
            (Some(all), None) => add(&mut term_squares, all)?,
            (None, Some(own)) => {
                add(&mut term_squares, own)?;
                add(&mut task_squares, own)?;
            }
            (None, None) => {}
        }
    }
    let zero = || Tensor::new(0f64, &candle_core::Device::Cpu);
    let term = term_squares.map_or_else(zero, Ok)?;
    let task = task_squares.map_or_else(zero, Ok)?;
    term.sqrt()? / task.to_device(term.device())?.sqrt()?
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn scalars_come_back_in_step_order_and_the_first_non_finite_is_found() {
        let mut steps = StepScalars::default();
        for v in [1.5f32, 2.25, f32::NAN, f32::INFINITY] {
            steps.push(&Tensor::new(v, &Device::Cpu).unwrap());
        }
        let values = steps.take().unwrap();
        assert_eq!(&values[..2], &[1.5, 2.25]);
        assert_eq!(sum_and_first_non_finite(&values).1, Some(2));
        assert!(steps.take().unwrap().is_empty());
        let mut mean = EpochMean::new("d");
        mean.add(&Tensor::new(1.0f64, &Device::Cpu).unwrap());
        mean.add(&Tensor::new(2.0f64, &Device::Cpu).unwrap());
        assert_eq!(mean.report().unwrap()["d"], 1.5);
        assert_eq!(mean.report().unwrap()["d"], 0.0);
    }

    #[test]
    fn the_term_gradient_ratio_is_the_hand_computed_one() {
        // task = (w . x)^2 with x = (1, 1), w = (1, 2): its gradient 2 (w . x) x = (6, 6);
        // term = ||w||^2 / 2: gradient w = (1, 2). Ratio ||(1, 2)|| / ||(6, 6)||.
        let w = Var::new(&[1.0f64, 2.0], &Device::Cpu).unwrap();
        let u = Var::new(&[3.0f64], &Device::Cpu).unwrap();
        let task = w.as_tensor().sum_all().unwrap().sqr().unwrap();
        let term = (w.as_tensor().sqr().unwrap().sum_all().unwrap() * 0.5).unwrap();
        // A variable that only the term reaches (u^2 / 2: gradient 3) counts as the term's.
        let only_term = (u.as_tensor().sqr().unwrap().sum_all().unwrap() * 0.5).unwrap();
        let objective = ((&task + term).unwrap() + only_term).unwrap();
        let ratio = term_gradient_ratio(
            &objective.backward().unwrap(),
            &task.backward().unwrap(),
            &[w, u],
        )
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
        let expected = (1.0f64 + 4.0 + 9.0).sqrt() / 72f64.sqrt();
        assert!((ratio - expected).abs() < 1e-12, "{ratio} vs {expected}");
    }
}
