//! The optimizer's state in a checkpoint: [`HdOptimizer::state_tensors`] and
//! [`HdOptimizer::load_state`].

use super::{HdOptimizer, OptimError};
use hd_core::{Optimizer, State};
use std::collections::HashMap;
use tch::{Device, Kind, TchError, Tensor};

impl HdOptimizer {
    /// The optimizer's state as named tensors (on the CPU) for a checkpoint:
    /// `record` (hd-core's encoding of the hyperparameters, step and α), `alpha` (every α) and
    /// `buffers` (the per-element state, `[slots, parameters]`, padding removed).
    ///
    /// # Errors
    /// A libtorch or encoding error.
    pub fn state_tensors(&self) -> Result<Vec<(String, Tensor)>, OptimError> {
        let alpha = self.alpha.f_to(Device::Cpu)?;
        let mut record = vec![0u8; hd_core::RECORD_LEN];
        let first = alpha.f_double_value(&[0])? as f32;
        let n = self.rule.encode(
            &State {
                step: self.step,
                alpha: first,
                ..self.rule.init_state()
            },
            &mut record,
        )?;
        record.truncate(n);
        let mut out = vec![
            ("record".to_string(), Tensor::f_from_slice(&record)?),
            ("alpha".to_string(), alpha),
        ];
        if self.rule.slots() > 0 {
            out.push(("buffers".to_string(), self.packed_buffers()?));
        }
        Ok(out)
    }

    /// The buffers without the alignment padding, `[slots, parameters]` on the CPU.
    fn packed_buffers(&self) -> Result<Tensor, TchError> {
        let mut parts = Vec::with_capacity(self.vars.len());
        for v in &self.vars {
            parts.push(self.buffers.f_narrow(1, v.offset, v.len)?);
        }
        Tensor::f_cat(&parts, 1)?.f_to(Device::Cpu)
    }

    /// Restores state saved by [`state_tensors`](HdOptimizer::state_tensors).
    ///
    /// # Errors
    /// [`OptimError::StateMismatch`] if a tensor is missing or has the wrong shape, or the saved
    /// hyperparameters differ from this optimizer's; [`OptimError::Core`] for a corrupt record.
    /// Nothing is changed on error.
    pub fn load_state(&mut self, named: &HashMap<String, Tensor>) -> Result<(), OptimError> {
        let get = |name: &str| {
            named
                .get(name)
                .ok_or_else(|| OptimError::StateMismatch(format!("no '{name}' tensor")))
        };
        let record = get("record")?;
        if record.kind() != Kind::Uint8 {
            // Converting would read other bytes than were written.
            return Err(OptimError::StateMismatch(format!(
                "record is {:?}, expected Uint8",
                record.kind()
            )));
        }
        let mut bytes = vec![0u8; record.numel()];
        record.f_copy_data_u8(&mut bytes, record.numel())?;
        let (saved, state) = Optimizer::decode(&bytes)?;
        if saved.config() != self.rule.config() {
            return Err(OptimError::StateMismatch(format!(
                "saved with {:?}, now {:?}",
                saved.config(),
                self.rule.config()
            )));
        }
        let alpha = get("alpha")?;
        if alpha.size() != self.alpha.size() || alpha.kind() != Kind::Float {
            return Err(OptimError::StateMismatch(format!(
                "alpha is {:?} {:?}, expected {:?} Float",
                alpha.size(),
                alpha.kind(),
                self.alpha.size()
            )));
        }
        let slots = self.rule.slots() as i64;
        let buffers = if slots > 0 {
            let b = get("buffers")?;
            let want = [slots, self.num_parameters()];
            if b.size() != want || b.kind() != Kind::Float {
                return Err(OptimError::StateMismatch(format!(
                    "buffers are {:?} {:?}, expected {want:?} Float",
                    b.size(),
                    b.kind()
                )));
            }
            Some(b)
        } else {
            None
        };
        tch::no_grad(|| -> Result<(), TchError> {
            self.alpha.f_copy_(alpha)?;
            if let Some(b) = buffers {
                let mut at = 0;
                for v in &self.vars {
                    self.buffers
                        .f_narrow(1, v.offset, v.len)?
                        .f_copy_(&b.f_narrow(1, at, v.len)?)?;
                    at += v.len;
                }
            }
            Ok(())
        })?;
        self.step = state.step;
        Ok(())
    }
}
