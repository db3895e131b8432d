//! A method's measurement per step (a distance, a domain loss), averaged over the epoch's
//! steps for metrics.jsonl.

use candle_core::Tensor;

pub struct EpochMean {
    name: &'static str,
    sum: f64,
    steps: usize,
}

impl EpochMean {
    pub const fn new(name: &'static str) -> Self {
        EpochMean {
            name,
            sum: 0.0,
            steps: 0,
        }
    }

    /// Adds a step's scalar.
    pub fn add(&mut self, value: &Tensor) -> candle_core::Result<()> {
        self.sum += f64::from(
            value
                .to_dtype(candle_core::DType::F32)?
                .to_scalar::<f32>()?,
        );
        self.steps += 1;
        Ok(())
    }

    /// `{name: mean over the epoch's steps}`; starts the next epoch's mean.
    pub fn report(&mut self) -> serde_json::Map<String, serde_json::Value> {
        let mean = self.sum / self.steps.max(1) as f64;
        (self.sum, self.steps) = (0.0, 0);
        let mut report = serde_json::Map::new();
        report.insert(self.name.into(), mean.into());
        report
    }
}
