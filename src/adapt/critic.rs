//! The domain critics of DAA: MLPs scored with WGAN-GP.

use serde::{Deserialize, Serialize};

use crate::config::check::{Invalid, Validate, ensure};
use crate::config::registry::{Kind, typed};
use crate::config::schema::Optimizer;
use crate::nn::mlp::check_dims;

pub const CRITICS: &[Kind<()>] = &[Kind::new("wgan_gp", typed::<Config>(), ())];

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// A linear score: a true Wasserstein critic.
    Linear,
    /// Released-code behaviour: LogSoftmax over one output, identically zero.
    LogSoftmax,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PenaltyGradient {
    /// The input gradient of the MLP in closed form (first-order backprop only).
    ClosedForm,
    /// candle's double backprop; needs CANDLE_GRAD_DO_NOT_DETACH=1.
    DoubleBackprop,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Config {
    /// Hidden sizes of each critic's MLP.
    pub hidden_dims: Vec<usize>,
    /// Negative slope of the critic's LeakyReLU.
    pub leaky_slope: f64,
    /// Standard deviation of the N(0, std) weight initialisation (biases start at 0).
    pub init_std: f64,
    pub head: Head,
    /// Weight of the gradient penalty.
    pub penalty_weight: f64,
    pub penalty_gradient: PenaltyGradient,
    /// Critic steps per target-model step.
    pub n_critic: usize,
    pub optimizer: Optimizer,
    /// The critics' Adam learning rate.
    pub lr: f64,
    /// Adam's decay rates of the critics' moments (beta1, beta2): PyTorch's (0.9, 0.999)
    /// in the released code, (0, 0.9) in WGAN-GP (Gulrajani et al. 2017).
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// The critics' weight decay; absent means the target model's `optim.weight_decay`.
    pub weight_decay: Option<f64>,
}

fn default_betas() -> [f64; 2] {
    crate::nn::optim::BETAS
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        check_dims(&self.hidden_dims, "hidden_dims")?;
        ensure(
            self.leaky_slope >= 0.0 && self.leaky_slope < 1.0,
            "leaky_slope",
            "must be in [0, 1)",
        )?;
        ensure(self.init_std > 0.0, "init_std", "must be positive")?;
        ensure(
            self.penalty_weight >= 0.0,
            "penalty_weight",
            "must be zero or positive",
        )?;
        ensure(self.n_critic > 0, "n_critic", "must be positive")?;
        ensure(self.lr > 0.0, "lr", "must be positive")?;
        ensure(
            self.betas.iter().all(|b| (0.0..1.0).contains(b)),
            "betas",
            "must be two numbers in [0, 1)",
        )?;
        ensure(
            self.weight_decay.is_none_or(|w| w >= 0.0),
            "weight_decay",
            "must be zero or positive",
        )
    }
}

/// An MLP critic: Linear -> LeakyReLU per hidden size, then Linear(-> 1) and the head.
pub struct Critic {
    layers: Vec<(candle_core::Var, candle_core::Var)>,
    slope: f64,
    head: Head,
}

impl Critic {
    /// A critic named `prefix` over `input`-wide features, weights N(0, init_std), biases 0.
    pub fn new(
        params: &mut crate::nn::Params,
        prefix: &str,
        input: usize,
        config: &Config,
    ) -> candle_core::Result<Self> {
        use crate::nn::params::{Init, Role};
        let mut layers = Vec::new();
        let mut width = input;
        for (i, &dim) in config
            .hidden_dims
            .iter()
            .chain(std::iter::once(&1))
            .enumerate()
        {
            let name = |p: &str| vec![format!("{prefix}.{}.{p}", 2 * i)];
            let w = params.add(
                &name("weight"),
                &[dim, width],
                Init::Gaussian(config.init_std),
                Role::Trainable,
            )?;
            let b = params.add(&name("bias"), &[dim], Init::Constant(0.0), Role::Trainable)?;
            layers.push((w, b));
            width = dim;
        }
        Ok(Critic {
            layers,
            slope: config.leaky_slope,
            head: config.head,
        })
    }

    /// A critic with the given `(weight, bias)` layers (tests use f64 weights).
    pub fn from_layers(
        layers: Vec<(candle_core::Var, candle_core::Var)>,
        slope: f64,
        head: Head,
    ) -> Self {
        Critic {
            layers,
            slope,
            head,
        }
    }

    fn leaky(&self, z: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        (z.relu()? * (1.0 - self.slope))? + (z * self.slope)?
    }

    /// Pre-activations of the hidden layers and the raw score.
    fn trace(
        &self,
        x: &candle_core::Tensor,
    ) -> candle_core::Result<(Vec<candle_core::Tensor>, candle_core::Tensor)> {
        let mut h = x.clone();
        let mut pre = Vec::new();
        let (last, hidden) = self
            .layers
            .split_last()
            .expect("a critic has an output layer");
        for (w, b) in hidden {
            let z = h.matmul(&w.t()?)?.broadcast_add(b.as_tensor())?;
            h = self.leaky(&z)?;
            pre.push(z);
        }
        let score = h.matmul(&last.0.t()?)?.broadcast_add(last.1.as_tensor())?;
        Ok((pre, score))
    }

    /// `(B, 1)` scores. With the released code's `log_softmax` head the score is
    /// log_softmax over one output: identically zero, carrying no gradient.
    pub fn forward(&self, x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        let (_, score) = self.trace(x)?;
        match self.head {
            Head::Linear => Ok(score),
            Head::LogSoftmax => candle_nn::ops::log_softmax(&score, 1),
        }
    }

    /// The gradient of the summed scores with respect to the input, in closed form: with
    /// LeakyReLU slopes m_l = slope + (1 - slope) [z_l > 0] (constant almost everywhere),
    /// g_L = m_L * w_out, g_l = (g_{l+1} W_{l+1}) * m_l, grad_x = g_1 W_1. Differentiable in
    /// the weights with first-order backprop only.
    pub fn input_gradient(
        &self,
        x: &candle_core::Tensor,
    ) -> candle_core::Result<candle_core::Tensor> {
        if self.head == Head::LogSoftmax {
            return x.zeros_like();
        }
        let (pre, _) = self.trace(x)?;
        let mut g = self
            .layers
            .last()
            .expect("output layer")
            .0
            .as_tensor()
            .clone();
        for (l, z) in pre.iter().enumerate().rev() {
            let slope = z
                .detach()
                .gt(0.0)?
                .to_dtype(z.dtype())?
                .affine(1.0 - self.slope, self.slope)?;
            g = g.broadcast_mul(&slope)?;
            g = g.matmul(self.layers[l].0.as_tensor())?;
        }
        Ok(g)
    }

    /// The gradient of the summed scores with respect to the input by candle's double
    /// backprop. Correct only with CANDLE_GRAD_DO_NOT_DETACH=1 (read once per thread).
    pub fn input_gradient_double_backprop(
        &self,
        x: &candle_core::Tensor,
    ) -> candle_core::Result<candle_core::Tensor> {
        if std::env::var("CANDLE_GRAD_DO_NOT_DETACH").as_deref() != Ok("1") {
            return Err(candle_core::Error::Msg(
                "penalty_gradient = \"double_backprop\" needs CANDLE_GRAD_DO_NOT_DETACH=1 in the environment (else candle detaches the gradient and the penalty is silently wrong)".into(),
            ));
        }
        let input = candle_core::Var::from_tensor(&x.detach())?;
        let score = self.forward(input.as_tensor())?.sum_all()?;
        let grads = score.backward()?;
        match grads.get(&input) {
            Some(g) => Ok(g.clone()),
            None => input.as_tensor().zeros_like(),
        }
    }

    /// WGAN-GP penalty: weight * mean((||grad_x D(x_hat)||_2 - 1)^2) at per-sample random
    /// interpolates x_hat = e real + (1 - e) fake, e ~ U(0, 1) from `stream`.
    pub fn gradient_penalty(
        &self,
        real: &candle_core::Tensor,
        fake: &candle_core::Tensor,
        weight: f64,
        mode: PenaltyGradient,
        stream: &mut crate::rng::Stream,
    ) -> candle_core::Result<candle_core::Tensor> {
        use rand::Rng;
        let batch = real.dim(0)?.min(fake.dim(0)?);
        let (real, fake) = (
            real.narrow(0, 0, batch)?.detach(),
            fake.narrow(0, 0, batch)?.detach(),
        );
        let e: Vec<f32> = (0..batch).map(|_| stream.random::<f32>()).collect();
        let e =
            candle_core::Tensor::from_vec(e, (batch, 1), real.device())?.to_dtype(real.dtype())?;
        let x_hat = (real.broadcast_mul(&e)? + fake.broadcast_mul(&e.affine(-1.0, 1.0)?)?)?;
        let gradient = match mode {
            PenaltyGradient::ClosedForm => self.input_gradient(&x_hat)?,
            PenaltyGradient::DoubleBackprop => self.input_gradient_double_backprop(&x_hat)?,
        };
        let norm = gradient.sqr()?.sum(1)?.sqrt()?;
        (norm - 1.0)?.sqr()?.mean_all()? * weight
    }
}
