//! Adam with PyTorch's semantics: `Adam` adds the weight decay to the gradient (L2, as
//! torch.optim.Adam), `AdamW` decays the weights directly (torch.optim.AdamW). The state
//! (moments and step count) can be saved and restored, so a resumed run continues exactly.

use std::collections::{BTreeMap, HashMap};

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use super::fused_adam::{Apply, Moments};
use crate::config::schema::Optimizer;

/// PyTorch's default betas, what every optimiser but a critic's uses.
pub const BETAS: [f64; 2] = [0.9, 0.999];
const EPS: f64 = 1e-8;

#[derive(Debug)]
pub struct Adam {
    vars: Vec<Var>,
    /// Per var, its first and second moments as one `(2, n)` tensor.
    moments: Vec<Option<Tensor>>,
    step: u64,
    pub lr: f64,
    pub weight_decay: f64,
    pub kind: Optimizer,
    /// The moments' decay rates (beta1, beta2).
    pub betas: [f64; 2],
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
            betas: BETAS,
        }
    }

    /// The same optimiser with the moments' decay rates `betas` (WGAN-GP's critics: (0, 0.9)).
    pub fn with_betas(self, betas: [f64; 2]) -> Self {
        Adam { betas, ..self }
    }

    /// The variables it updates.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update from the gradients in `grads`; vars without a gradient are left alone
    /// (as PyTorch skips parameters whose grad is None).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let [beta1, beta2] = self.betas;
        let step_size = self.lr / (1.0 - beta1.powi(t));
        let correction2 = (1.0 - beta2.powi(t)).sqrt();
        let (l2, decoupled) = match self.kind {
            Optimizer::Adam => (self.weight_decay, 0.0),
            Optimizer::Adamw => (0.0, self.lr * self.weight_decay),
        };
        for (var, moments) in self.vars.iter().zip(self.moments.iter_mut()) {
            let Some(grad) = grads.get(var) else { continue };
            let param = var.as_tensor();
            let state = match moments {
                Some(state) => state,
                None => moments.insert(Tensor::zeros(
                    (2, param.elem_count()),
                    param.dtype(),
                    param.device(),
                )?),
            };
            if super::fused_kernels(param.device()) || super::device_kernels(param.device()) {
                let grad = grad.contiguous()?;
                state.inplace_op3(
                    &grad,
                    param,
                    &Moments {
                        beta1: beta1 as f32,
                        beta2: beta2 as f32,
                        l2: l2 as f32,
                    },
                )?;
                let apply = Apply {
                    step_size: step_size as f32,
                    correction2: correction2 as f32,
                    eps: EPS as f32,
                    decoupled: decoupled as f32,
                };
                param.inplace_op2(state, &apply)?;
                continue;
            }
            let grad = (grad + (param * l2)?)?.flatten_all()?;
            let m = ((state.get(0)? * beta1)? + (&grad * (1.0 - beta1))?)?;
            let v = ((state.get(1)? * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
            let denom = ((v.sqrt()? / correction2)? + EPS)?;
            let update = (m.div(&denom)? * step_size)?.reshape(param.shape())?;
            var.set(&(param * (1.0 - decoupled))?.sub(&update)?)?;
            *state = Tensor::stack(&[m, v], 0)?;
        }
        Ok(())
    }

    /// The optimiser state as named tensors (`moments.<i>`: first and second moments of
    /// var i, `step`).
    pub fn state(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        out.insert(
            "step".to_string(),
            Tensor::new(self.step as i64, &candle_core::Device::Cpu)?,
        );
        for (i, moments) in self.moments.iter().enumerate() {
            if let Some(state) = moments {
                // A copy: the moments are updated in place.
                out.insert(
                    format!("moments.{i}"),
                    state.to_device(&candle_core::Device::Cpu)?.copy()?,
                );
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
            *moments = state
                .get(&format!("moments.{i}"))
                .map(|t| t.to_device(var.device())?.copy())
                .transpose()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    /// PyTorch's update rules in f64, written out.
    fn reference(
        kind: Optimizer,
        p0: f64,
        grads: &[f64],
        lr: f64,
        wd: f64,
        betas: [f64; 2],
    ) -> f64 {
        let [beta1, beta2] = betas;
        let (mut p, mut m, mut v) = (p0, 0.0, 0.0);
        for (t, g) in grads.iter().enumerate() {
            let t = t as i32 + 1;
            let g = if kind == Optimizer::Adam {
                g + wd * p
            } else {
                *g
            };
            if kind == Optimizer::Adamw {
                p *= 1.0 - lr * wd;
            }
            m = beta1 * m + (1.0 - beta1) * g;
            v = beta2 * v + (1.0 - beta2) * g * g;
            let denom = v.sqrt() / (1.0 - beta2.powi(t)).sqrt() + EPS;
            p -= lr / (1.0 - beta1.powi(t)) * m / denom;
        }
        p
    }

    #[test]
    fn adam_and_adamw_follow_pytorch_rules_and_resume_exactly() {
        check_adam_rules();
        crate::nn::with_portable_kernels(check_adam_rules);
    }

    fn check_adam_rules() {
        for (kind, betas) in [
            (Optimizer::Adam, BETAS),
            (Optimizer::Adamw, BETAS),
            (Optimizer::Adam, [0.0, 0.9]),
            (Optimizer::Adamw, [0.5, 0.9]),
        ] {
            let grads = [0.5, -0.25, 0.125, 1.0];
            let var = Var::new(&[2.0f32, -1.0], &Device::Cpu).unwrap();
            let mut adam = Adam::new(vec![var.clone()], kind, 0.1, 0.05).with_betas(betas);
            let mut resumed = None;
            for (i, g) in grads.iter().enumerate() {
                let loss = (var.as_tensor() * (*g)).unwrap().sum_all().unwrap();
                adam.step(&loss.backward().unwrap()).unwrap();
                if i == 1 {
                    let state: std::collections::HashMap<_, _> =
                        adam.state().unwrap().into_iter().collect();
                    let copy = Var::from_tensor(&var.as_tensor().copy().unwrap()).unwrap();
                    let mut restored =
                        Adam::new(vec![copy.clone()], kind, 0.1, 0.05).with_betas(betas);
                    restored.load_state(&state).unwrap();
                    resumed = Some((restored, copy));
                }
                if i >= 2 {
                    let (restored, copy) = resumed.as_mut().unwrap();
                    let loss = (copy.as_tensor() * (*g)).unwrap().sum_all().unwrap();
                    restored.step(&loss.backward().unwrap()).unwrap();
                }
            }
            let ours = var.as_tensor().to_vec1::<f32>().unwrap();
            for (got, p0) in ours.iter().zip([2.0, -1.0]) {
                let expected = reference(kind, p0, &grads, 0.1, 0.05, betas);
                assert!(
                    (f64::from(*got) - expected).abs() < 1e-5,
                    "{kind:?}: {got} vs {expected}"
                );
            }
            let (_, copy) = resumed.unwrap();
            assert_eq!(
                copy.as_tensor().to_vec1::<f32>().unwrap(),
                ours,
                "{kind:?}: a restored state continues bit for bit"
            );
        }
    }
}
