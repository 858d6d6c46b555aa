//! A small MLP with deterministic weights and data, and hd-core's own multi-tensor step on
//! host copies of its parameters: the reference every engine is compared with.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use candle_nn::{loss, Linear, Module};
use hd_core::{Config, Optimizer, Scope, State, TensorMut};

/// Layer sizes: 12 → 16 → 8 → 3, with ReLU (the paper's MLP, smaller).
pub const SIZES: [usize; 4] = [12, 16, 8, 3];
pub const BATCH: usize = 10;

/// A linear congruential generator: reproducible values without candle's (unseeded) RNG.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }
    /// Uniform in [−1, 1).
    pub fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

/// The MLP's variables: w1, b1, w2, b2, w3, b3.
pub fn mlp_vars(seed: u64) -> Vec<Var> {
    let mut rng = Lcg::new(seed);
    let mut vars = Vec::new();
    for w in SIZES.windows(2) {
        let (i, o) = (w[0], w[1]);
        let scale = 1.0 / (i as f32).sqrt();
        vars.push(Var::from_vec(rng.vec(o * i, scale), (o, i), &Device::Cpu).unwrap());
        vars.push(Var::from_vec(rng.vec(o, scale), o, &Device::Cpu).unwrap());
    }
    vars
}

/// Batch `k` of the synthetic data: inputs and labels.
pub fn batch(k: u64) -> (Tensor, Tensor) {
    let mut rng = Lcg::new(1000 + k % 7);
    let x = rng.vec(BATCH * SIZES[0], 1.0);
    let y: Vec<u32> = (0..BATCH)
        .map(|_| ((rng.next() + 1.0) * 1.5) as u32 % 3)
        .collect();
    (
        Tensor::from_vec(x, (BATCH, SIZES[0]), &Device::Cpu).unwrap(),
        Tensor::from_vec(y, BATCH, &Device::Cpu).unwrap(),
    )
}

/// The loss of the MLP on batch `k`, and its gradients.
pub fn gradients(vars: &[Var], k: u64) -> (f32, GradStore) {
    let (x, y) = batch(k);
    let mut h = x;
    for (n, layer) in vars.chunks(2).enumerate() {
        let lin = Linear::new(
            layer[0].as_tensor().clone(),
            Some(layer[1].as_tensor().clone()),
        );
        h = lin.forward(&h).unwrap();
        if n + 1 < vars.len() / 2 {
            h = h.relu().unwrap();
        }
    }
    let l = loss::cross_entropy(&h, &y).unwrap();
    (l.to_scalar::<f32>().unwrap(), l.backward().unwrap())
}

pub fn host(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// hd-core's step over host copies of every variable: one `State` (or one per tensor).
pub struct Reference {
    pub opt: Optimizer,
    pub states: Vec<State>,
    pub params: Vec<Vec<f32>>,
    pub buffers: Vec<Vec<f32>>,
}

impl Reference {
    pub fn new(config: Config, vars: &[Var]) -> Reference {
        let opt = Optimizer::new(config).unwrap();
        let params: Vec<Vec<f32>> = vars.iter().map(|v| host(v.as_tensor())).collect();
        let buffers = params
            .iter()
            .map(|p| {
                let mut b = vec![0.0; opt.buffer_len(p.len()).unwrap()];
                opt.init_buffers(&mut b).unwrap();
                b
            })
            .collect();
        let per_tensor = config.hyper.is_some_and(|h| h.scope == Scope::PerTensor);
        let n = if per_tensor { vars.len() } else { 1 };
        Reference {
            states: vec![opt.init_state(); n],
            opt,
            params,
            buffers,
        }
    }

    pub fn step(&mut self, vars: &[Var], grads: &GradStore) {
        let grads: Vec<Vec<f32>> = vars
            .iter()
            .map(|v| host(grads.get(v.as_tensor()).unwrap()))
            .collect();
        let mut tensors: Vec<TensorMut<'_>> = self
            .params
            .iter_mut()
            .zip(&grads)
            .zip(self.buffers.iter_mut())
            .map(|((params, grads), buffers)| TensorMut {
                params,
                grads,
                buffers,
            })
            .collect();
        self.opt
            .step_tensors(&mut self.states, &mut tensors)
            .unwrap();
    }

    /// Every α, as `HdOptimizer::alphas` lists them.
    pub fn alphas(&self) -> Vec<f32> {
        match self.opt.alpha_slot() {
            Some(slot) => self
                .buffers
                .iter()
                .zip(&self.params)
                .flat_map(|(b, p)| b[slot * p.len()..(slot + 1) * p.len()].to_vec())
                .collect(),
            None => self.states.iter().map(|s| s.alpha).collect(),
        }
    }
}

/// Bits of every variable.
pub fn bits(vars: &[Var]) -> Vec<Vec<u32>> {
    vars.iter()
        .map(|v| host(v.as_tensor()).iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// The nine variants with the paper's hyperparameters, in each of the three scopes, and the
/// options beyond them (L2, clamp, the §5.1 transition, Adam's 1/√t).
pub fn configs() -> Vec<(String, Config)> {
    use hd_core::{paper, Transition, Variant};
    let mut out = Vec::new();
    for v in Variant::ALL {
        let beta = match v.id() {
            id if id.ends_with("-hdm") => paper::BETA_MULT,
            id if id.starts_with("adam") => 1e-4,
            _ => paper::BETA_SGD,
        };
        let base = v.config(0.05, beta, paper::MU);
        if v.rule().is_none() {
            out.push((v.id().to_string(), base));
            continue;
        }
        for scope in [Scope::Global, Scope::PerTensor, Scope::PerParameter] {
            // HDM has no per-parameter form (hd-core refuses it).
            if Optimizer::new(base.with_scope(scope)).is_ok() {
                out.push((format!("{}/{scope:?}", v.id()), base.with_scope(scope)));
            }
        }
    }
    let sgd_hd = Config::sgd(0.05).with_hd(paper::BETA_SGD);
    out.push(("sgd-hd+l2".into(), sgd_hd.with_weight_decay(1e-3)));
    out.push(("sgd-hd+clamp".into(), sgd_hd.with_clamp(0.0, 0.0501)));
    out.push((
        "sgdn-hd+transition".into(),
        Config::sgdn(0.05, 0.9)
            .with_hd(paper::BETA_SGD)
            .with_transition(Transition {
                power: 2.0,
                alpha_inf: 0.005,
            }),
    ));
    out.push((
        "adam-hd+sqrt".into(),
        Config::adam(0.05).with_hd(1e-4).with_sqrt_decay().unwrap(),
    ));
    out
}
