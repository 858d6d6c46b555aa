//! [`Engine::Tensors`](crate::Engine::Tensors): hd-core's rule evaluated over candle tensors.
//!
//! [`Val`] implements hd-core's [`Real`] for a candle tensor, and each step drives hd-core's
//! generic phases — [`Rule::terms_of`], [`Rule::next_alpha`], [`Rule::apply_to`] — as its own
//! slice driver does. α is a device tensor; the host keeps only the step count and the
//! rule's constants, so a step reads nothing back unless it is asked to check finiteness.

use crate::slices::{mean, per_tensor};
use crate::HdError;
use candle_core::{Device, Tensor, Var};
use hd_core::{Optimizer as Rule, Real, Terms};
use std::sync::Arc;

/// A candle tensor as hd-core's [`Real`]: every operation is one element-wise candle op in
/// f32 (one rounding each; candle fuses no multiply–add), a 0-d operand (α) broadcast.
///
/// [`Real`]'s operations cannot fail, so a candle error is carried in the value and surfaces
/// when the driver takes the result ([`Val::tensor`]), before anything is written.
#[derive(Clone, Debug)]
pub(crate) struct Val(Result<Tensor, Arc<candle_core::Error>>);

impl Val {
    pub(crate) fn new(t: Tensor) -> Val {
        Val(Ok(t))
    }

    /// The tensor, or the first error met computing it.
    pub(crate) fn tensor(self) -> Result<Tensor, HdError> {
        self.0.map_err(|e| {
            HdError::Candle(
                Arc::try_unwrap(e).unwrap_or_else(|e| candle_core::Error::Msg(e.to_string())),
            )
        })
    }

    fn map(&self, f: impl FnOnce(&Tensor) -> candle_core::Result<Tensor>) -> Val {
        Val(match &self.0 {
            Ok(t) => f(t).map_err(Arc::new),
            Err(e) => Err(Arc::clone(e)),
        })
    }

    fn zip(
        &self,
        rhs: &Val,
        f: impl FnOnce(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    ) -> Val {
        match &rhs.0 {
            Ok(r) => self.map(|t| f(t, r)),
            Err(e) => Val(Err(Arc::clone(e))),
        }
    }
}

impl Real for Val {
    fn add(&self, rhs: &Self) -> Self {
        self.zip(rhs, Tensor::broadcast_add)
    }
    fn sub(&self, rhs: &Self) -> Self {
        self.zip(rhs, Tensor::broadcast_sub)
    }
    fn mul(&self, rhs: &Self) -> Self {
        self.zip(rhs, Tensor::broadcast_mul)
    }
    fn div(&self, rhs: &Self) -> Self {
        self.zip(rhs, Tensor::broadcast_div)
    }
    fn scale(&self, k: f32) -> Self {
        // x·k + 0: the same value as x·k (up to the sign of a zero product).
        self.map(|t| t.affine(f64::from(k), 0.0))
    }
    fn shift(&self, k: f32) -> Self {
        // x·1 + k: x·1 is exact, so one rounding, as x + k.
        self.map(|t| t.affine(1.0, f64::from(k)))
    }
    fn sqrt(&self) -> Self {
        self.map(Tensor::sqrt)
    }
    fn max_const(&self, k: f32) -> Self {
        self.map(|t| t.maximum(k))
    }
    fn clamp(&self, lo: f32, hi: f32) -> Self {
        self.map(|t| t.maximum(lo)?.minimum(hi))
    }
    fn sum(&self) -> Self {
        self.map(Tensor::sum_all)
    }
    fn assign(&mut self, value: Self) {
        // A value, not a place: the driver writes the variables and buffers once the whole
        // step has been computed without error.
        *self = value;
    }
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, Tensor::elem_count)
    }
}

/// The tensor engine's state: the step count on the host, every α (`[groups]`) and each
/// variable's buffers (one flat `[n]` tensor per slot) on the device.
#[derive(Debug)]
pub(crate) struct OnDevice {
    pub(crate) step: u64,
    pub(crate) alpha: Tensor,
    pub(crate) buffers: Vec<Vec<Tensor>>,
}

impl OnDevice {
    pub(crate) fn new(rule: &Rule, vars: &[Var], device: &Device) -> Result<OnDevice, HdError> {
        let groups = if per_tensor(rule) { vars.len() } else { 1 };
        // Each slot's initial value from hd-core (zeros, α0 in a per-parameter α slot).
        let mut init = vec![0.0f32; rule.slots()];
        rule.init_buffers(&mut init)?;
        let mut buffers = Vec::with_capacity(vars.len());
        for v in vars {
            let slots = init
                .iter()
                .map(|x| Tensor::full(*x, v.elem_count(), device))
                .collect::<candle_core::Result<Vec<_>>>()?;
            buffers.push(slots);
        }
        Ok(OnDevice {
            step: 0,
            alpha: Tensor::full(rule.init_state().alpha, groups, device)?,
            buffers,
        })
    }

    /// One step: every value computed first, then written (variables with `Var::set`).
    pub(crate) fn step(
        &mut self,
        rule: &Rule,
        vars: &[Var],
        grads: &[Option<Tensor>],
        checked: bool,
    ) -> Result<(), HdError> {
        let step = self
            .step
            .checked_add(1)
            .ok_or(hd_core::Error::StepOverflow)?;
        let c = rule.constants(step);
        let per_tensor = per_tensor(rule);
        let group = |i: usize| if per_tensor { i } else { 0 };
        let groups = self.alpha.elem_count();
        let alphas: Vec<Val> = (0..groups)
            .map(|k| self.alpha.get(k).map(Val::new))
            .collect::<candle_core::Result<_>>()?;
        let inputs = |i: usize, v: &Var, g: &Tensor| -> Result<_, HdError> {
            let slots: Vec<Val> = self
                .buffers
                .get(i)
                .map(|b| b.iter().cloned().map(Val::new).collect())
                .unwrap_or_default();
            Ok((
                Val::new(v.as_tensor().flatten_all()?),
                Val::new(g.flatten_all()?),
                slots,
            ))
        };
        let mut next = alphas.clone();
        // Phase 1 (a base rule needs it only for the finiteness check).
        if rule.config().hyper.is_some() || checked {
            let mut terms: Vec<Option<Terms<Val>>> = vec![None; groups];
            for (i, (v, g)) in vars.iter().zip(grads).enumerate() {
                let Some(g) = g else { continue };
                let (p, g, s) = inputs(i, v, g)?;
                let t = rule.terms_of(&c, &p, &g, &s)?;
                if let Some(merged) = terms.get_mut(group(i)) {
                    *merged = Some(match merged.take() {
                        Some(acc) => acc.merge(&t),
                        None => t,
                    });
                }
            }
            let mut check = Vec::new();
            for (k, t) in terms.iter().enumerate() {
                let (Some(t), Some(a), Some(n)) = (t, alphas.get(k), next.get_mut(k)) else {
                    continue;
                };
                *n = rule.next_alpha(a, t);
                check.push(t.dot.clone());
                if let Some((gg, dd)) = &t.norms {
                    check.extend([gg.clone(), dd.clone()]);
                }
                check.push(n.clone());
            }
            if checked && !check.is_empty() {
                // As hd-core's `advance`: every term, and every new α, finite.
                let scalars = check
                    .into_iter()
                    .map(|v| v.tensor()?.reshape(1).map_err(HdError::from))
                    .collect::<Result<Vec<_>, _>>()?;
                let values = Tensor::cat(&scalars, 0)?.to_vec1::<f32>()?;
                if !values.iter().all(|x| x.is_finite()) {
                    return Err(hd_core::Error::NonFinite.into());
                }
            }
        }
        // Phase 2 with the new α, every result held until all are computed.
        let mut moved = Vec::new();
        for (i, (v, g)) in vars.iter().zip(grads).enumerate() {
            let (Some(g), Some(alpha)) = (g, next.get(group(i))) else {
                continue;
            };
            let (mut p, g, mut s) = inputs(i, v, g)?;
            rule.apply_to(&c, alpha, &mut p, &g, &mut s)?;
            let p = p.tensor()?.reshape(v.shape())?;
            let s = s
                .into_iter()
                .map(Val::tensor)
                .collect::<Result<Vec<_>, _>>()?;
            moved.push((i, p, s));
        }
        let alpha = Tensor::stack(
            &next
                .into_iter()
                .map(Val::tensor)
                .collect::<Result<Vec<_>, _>>()?,
            0,
        )?;
        for (i, p, s) in moved {
            if let (Some(v), Some(b)) = (vars.get(i), self.buffers.get_mut(i)) {
                v.set(&p)?;
                *b = s;
            }
        }
        self.alpha = alpha;
        self.step = step;
        Ok(())
    }

    /// The current α, as `learning_rate` reports it.
    pub(crate) fn alpha(&self, rule: &Rule) -> Result<f32, HdError> {
        Ok(mean(&self.alphas(rule)?))
    }

    pub(crate) fn alphas(&self, rule: &Rule) -> Result<Vec<f32>, HdError> {
        match rule.alpha_slot() {
            Some(slot) => {
                let mut out = Vec::new();
                for b in &self.buffers {
                    if let Some(a) = b.get(slot) {
                        out.extend(a.to_vec1::<f32>()?);
                    }
                }
                Ok(out)
            }
            None => Ok(self.alpha.to_vec1::<f32>()?),
        }
    }

    pub(crate) fn set_alpha(&mut self, rule: &Rule, alpha: f32) -> Result<(), HdError> {
        let device = self.alpha.device().clone();
        let next_alpha = Tensor::full(alpha, self.alpha.elem_count(), &device)?;
        if let Some(slot) = rule.alpha_slot() {
            let mut filled = Vec::with_capacity(self.buffers.len());
            for b in &self.buffers {
                let n = b.first().map_or(0, Tensor::elem_count);
                filled.push(Tensor::full(alpha, n, &device)?);
            }
            for (b, a) in self.buffers.iter_mut().zip(filled) {
                if let Some(s) = b.get_mut(slot) {
                    *s = a;
                }
            }
        }
        self.alpha = next_alpha;
        Ok(())
    }
}
