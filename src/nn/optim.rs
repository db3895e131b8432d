//! Adam with PyTorch's semantics: `Adam` adds the weight decay to the gradient (L2, as
//! torch.optim.Adam), `AdamW` decays the weights directly (torch.optim.AdamW). The state
//! (moments and step count) can be saved and restored, so a resumed run continues exactly.

use std::collections::{BTreeMap, HashMap};

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use crate::config::schema::Optimizer;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

#[derive(Debug)]
pub struct Adam {
    vars: Vec<Var>,
    moments: Vec<Option<(Tensor, Tensor)>>,
    step: u64,
    pub lr: f64,
    pub weight_decay: f64,
    pub kind: Optimizer,
}

impl Adam {
    pub fn new(vars: Vec<Var>, kind: Optimizer, lr: f64, weight_decay: f64) -> Self {
        let moments = vec![None; vars.len()];
        Adam {
            vars,
            moments,
            step: 0,
            lr,
            weight_decay,
            kind,
        }
    }

    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update from the gradients in `grads`; vars without a gradient are left alone
    /// (as PyTorch skips parameters whose grad is None).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let step_size = self.lr / (1.0 - BETA1.powi(t));
        let correction2 = (1.0 - BETA2.powi(t)).sqrt();
        for (var, moments) in self.vars.iter().zip(self.moments.iter_mut()) {
            let Some(grad) = grads.get(var) else { continue };
            let param = var.as_tensor();
            let grad = match self.kind {
                Optimizer::Adam if self.weight_decay != 0.0 => {
                    (grad + (param * self.weight_decay)?)?
                }
                _ => grad.clone(),
            };
            let fresh_m = (&grad * (1.0 - BETA1))?;
            let fresh_v = (grad.sqr()? * (1.0 - BETA2))?;
            let (m, v) = match moments.take() {
                Some((m, v)) => (((m * BETA1)? + fresh_m)?, ((v * BETA2)? + fresh_v)?),
                None => (fresh_m, fresh_v),
            };
            let denom = ((v.sqrt()? / correction2)? + EPS)?;
            let decayed = match self.kind {
                Optimizer::Adamw if self.weight_decay != 0.0 => {
                    (param * (1.0 - self.lr * self.weight_decay))?
                }
                _ => param.clone(),
            };
            var.set(&decayed.sub(&(m.div(&denom)? * step_size)?)?)?;
            *moments = Some((m, v));
        }
        Ok(())
    }

    /// The optimiser state as named tensors (`m.<i>`, `v.<i>`, `step`).
    pub fn state(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        out.insert(
            "step".to_string(),
            Tensor::new(self.step as i64, &candle_core::Device::Cpu)?,
        );
        for (i, moments) in self.moments.iter().enumerate() {
            if let Some((m, v)) = moments {
                out.insert(format!("m.{i}"), m.to_device(&candle_core::Device::Cpu)?);
                out.insert(format!("v.{i}"), v.to_device(&candle_core::Device::Cpu)?);
            }
        }
        Ok(out)
    }

    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.step = state
            .get("step")
            .map(|t| t.to_scalar::<i64>())
            .transpose()?
            .unwrap_or(0) as u64;
        for (i, (var, moments)) in self.vars.iter().zip(self.moments.iter_mut()).enumerate() {
            *moments = match (state.get(&format!("m.{i}")), state.get(&format!("v.{i}"))) {
                (Some(m), Some(v)) => {
                    Some((m.to_device(var.device())?, v.to_device(var.device())?))
                }
                _ => None,
            };
        }
        Ok(())
    }
}
