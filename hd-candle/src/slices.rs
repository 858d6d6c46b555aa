//! [`Engine::Slices`](crate::Engine::Slices): hd-core's slice loops over each variable's CPU
//! storage. Phase 1 reads the variables and gradients where they are; phase 2 writes each
//! variable in place through a candle in-place op, so no tensor is allocated or copied.

use crate::HdError;
use candle_core::{CpuStorage, InplaceOp2, Layout, Storage, Tensor, Var};
use hd_core::{Accumulator, Optimizer as Rule, Scope, State};
use std::cell::RefCell;

/// The slice engine's state: hd-core's [`State`] (one, or one per variable for per-tensor
/// scope) and each variable's buffers, slot-major as hd-core lays them out.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) states: Vec<State>,
    pub(crate) buffers: Vec<Vec<f32>>,
}

/// True when α is one per variable.
pub(crate) fn per_tensor(rule: &Rule) -> bool {
    rule.config()
        .hyper
        .is_some_and(|h| h.scope == Scope::PerTensor)
}

impl Host {
    pub(crate) fn new(rule: &Rule, vars: &[Var]) -> Result<Host, HdError> {
        let groups = if per_tensor(rule) { vars.len() } else { 1 };
        let mut buffers = Vec::with_capacity(vars.len());
        for v in vars {
            let len = rule
                .buffer_len(v.elem_count())
                .ok_or(hd_core::Error::LengthMismatch {
                    name: "params",
                    expected: usize::MAX,
                    found: v.elem_count(),
                })?;
            let mut b = vec![0.0f32; len];
            rule.init_buffers(&mut b)?;
            buffers.push(b);
        }
        Ok(Host {
            states: vec![rule.init_state(); groups],
            buffers,
        })
    }

    pub(crate) fn steps(&self) -> u64 {
        self.states.iter().map(|s| s.step).max().unwrap_or(0)
    }

    /// The state variable `i` steps with.
    fn group(&self, rule: &Rule, i: usize) -> usize {
        if per_tensor(rule) {
            i
        } else {
            0
        }
    }

    /// One step: phase 1 over every variable with a gradient, α advanced on copies of the
    /// states, then phase 2; the states are replaced only when every variable has moved.
    pub(crate) fn step(
        &mut self,
        rule: &Rule,
        vars: &[Var],
        grads: &[Option<Tensor>],
    ) -> Result<(), HdError> {
        // Gradients the loops can read as one slice, and not sharing the variable's storage
        // (phase 2 writes the variable while it reads the gradient).
        let mut ready = Vec::with_capacity(vars.len());
        for (v, g) in vars.iter().zip(grads) {
            ready.push(match g {
                Some(g) if !g.is_contiguous() || overlaps(v, g)? => Some(g.copy()?),
                Some(g) => Some(g.contiguous()?),
                None => None,
            });
        }
        let mut next = self.states.clone();
        let mut accs = vec![Accumulator::new(); self.states.len()];
        for (i, (v, g)) in vars.iter().zip(&ready).enumerate() {
            let (Some(g), Some(buffers)) = (g, self.buffers.get(i)) else {
                continue;
            };
            let k = self.group(rule, i);
            let (Some(state), Some(acc)) = (self.states.get(k), accs.get_mut(k)) else {
                continue;
            };
            with_f32(v, |p| {
                with_f32(g, |g| rule.hypergradient(state, p, g, buffers, acc))
            })???;
        }
        // Every state advances, so t is the optimizer's step count; a variable without a
        // gradient adds nothing, so its own α (per-tensor scope) does not change.
        for (state, acc) in next.iter_mut().zip(&accs) {
            rule.advance(state, acc)?;
        }
        for (i, (v, g)) in vars.iter().zip(&ready).enumerate() {
            let Some(g) = g else { continue };
            let k = self.group(rule, i);
            let (Some(state), Some(buffers)) = (next.get(k), self.buffers.get_mut(i)) else {
                continue;
            };
            let op = Apply {
                rule,
                state,
                buffers: RefCell::new(buffers),
            };
            v.as_tensor().inplace_op2(g, &op)?;
        }
        self.states = next;
        Ok(())
    }

    /// The current α, as `learning_rate` reports it.
    pub(crate) fn alpha(&self, rule: &Rule) -> f32 {
        mean(&self.alphas(rule))
    }

    pub(crate) fn alphas(&self, rule: &Rule) -> Vec<f32> {
        match rule.alpha_slot() {
            Some(slot) => self
                .buffers
                .iter()
                .flat_map(|b| {
                    let n = b.len() / rule.slots().max(1);
                    b.iter().skip(slot * n).take(n).copied()
                })
                .collect(),
            None => self.states.iter().map(|s| s.alpha).collect(),
        }
    }

    pub(crate) fn set_alpha(&mut self, rule: &Rule, alpha: f32) {
        for s in &mut self.states {
            s.alpha = alpha;
        }
        if let Some(slot) = rule.alpha_slot() {
            for b in &mut self.buffers {
                let n = b.len() / rule.slots().max(1);
                b.iter_mut().skip(slot * n).take(n).for_each(|a| *a = alpha);
            }
        }
    }
}

/// The mean of `values` (summed in f64), or 0 for none.
pub(crate) fn mean(values: &[f32]) -> f32 {
    let sum: f64 = values.iter().map(|a| f64::from(*a)).sum();
    (sum / values.len().max(1) as f64) as f32
}

/// `f` over the contiguous f32 elements of a CPU tensor.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R, HdError> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(candle_core::Error::Msg("the slice engine needs CPU tensors".into()).into());
    };
    Ok(f(elements(cpu.as_slice::<f32>()?, layout)?))
}

/// The elements a contiguous layout selects.
fn elements<'a>(data: &'a [f32], layout: &Layout) -> candle_core::Result<&'a [f32]> {
    layout
        .contiguous_offsets()
        .and_then(|(a, b)| data.get(a..b))
        .ok_or_else(|| candle_core::Error::Msg("a tensor is not contiguous".into()))
}

/// True when the gradient's memory overlaps the variable's (a gradient store built by hand).
fn overlaps(v: &Var, g: &Tensor) -> Result<bool, HdError> {
    let range = |s: &[f32]| s.as_ptr_range();
    let vr = with_f32(v, |s| range(s))?;
    let gr = with_f32(g, |s| range(s))?;
    Ok(vr.start < gr.end && gr.start < vr.end)
}

/// Phase 2 for one variable, as a candle in-place op: hd-core's `apply` with the state just
/// advanced, over the variable's storage, its gradient and its buffers.
struct Apply<'a> {
    rule: &'a Rule,
    state: &'a State,
    /// `InplaceOp2::cpu_fwd` takes `&self`; the buffers are written once, inside it.
    buffers: RefCell<&'a mut Vec<f32>>,
}

impl InplaceOp2 for Apply<'_> {
    fn name(&self) -> &'static str {
        "hd-apply"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let CpuStorage::F32(data) = s1 else {
            candle_core::bail!("hd-apply: the variable is not f32")
        };
        let (a, b) = l1
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("hd-apply: not contiguous".into()))?;
        let params = data
            .get_mut(a..b)
            .ok_or_else(|| candle_core::Error::Msg("hd-apply: layout out of range".into()))?;
        let grads = elements(s2.as_slice::<f32>()?, l2)?;
        let mut buffers = self.buffers.borrow_mut();
        self.rule
            .apply(self.state, params, grads, buffers.as_mut_slice())
            .map_err(|e| candle_core::Error::wrap(HdError::Core(e)))
    }
}
