//! Per-step scalars (losses, a distance, a domain loss) kept on their device and read once
//! per epoch for metrics.jsonl: a read waits for the device to finish, and once a step it
//! would stall a GPU at every step.

use candle_core::{DType, Tensor};

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
}
