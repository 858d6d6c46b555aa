//! The optimizer's state as named tensors, saved and loaded as safetensors (candle's format):
//!
//! - `record`: u8, hd-core's encoding of the hyperparameters, the step count and the first α
//!   ([`hd_core::Optimizer::encode`]);
//! - `alpha`: f32 `[groups]`, every shared α (one, or one per variable for per-tensor scope);
//! - `buffers.{i}`: f32 `[slots, n_i]` for variable i, hd-core's per-element state slot by
//!   slot (absent for plain SGD, which keeps none).
//!
//! f32 values are stored as they are, so a save and a load give back the same bits.

use crate::slices::per_tensor;
use crate::{HdError, HdOptimizer, Store};
use candle_core::{DType, Device, Tensor};
use hd_core::{Optimizer as Rule, State};
use std::collections::HashMap;
use std::path::Path;

impl HdOptimizer {
    /// The state as named tensors on the CPU (see the module's list).
    ///
    /// # Errors
    /// [`HdError::Candle`] if it cannot be read from the device; [`HdError::Core`].
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>, HdError> {
        let alphas = match &self.store {
            Store::Host(h) => h.states.iter().map(|s| s.alpha).collect(),
            Store::Device(d) => d.alpha.to_vec1::<f32>()?,
        };
        let state = State {
            step: self.steps(),
            alpha: alphas.first().copied().unwrap_or(self.config().alpha0),
            ..self.rule.init_state()
        };
        let mut record = vec![0u8; hd_core::RECORD_LEN];
        let n = self.rule.encode(&state, &mut record)?;
        record.truncate(n);
        let mut out = HashMap::new();
        out.insert(
            "record".to_string(),
            Tensor::from_vec(record, n, &Device::Cpu)?,
        );
        let groups = alphas.len();
        out.insert(
            "alpha".to_string(),
            Tensor::from_vec(alphas, groups, &Device::Cpu)?,
        );
        let slots = self.rule.slots();
        if slots > 0 {
            for (i, v) in self.vars.iter().enumerate() {
                let n = v.elem_count();
                let t = match &self.store {
                    Store::Host(h) => {
                        let b = h.buffers.get(i).cloned().unwrap_or_default();
                        Tensor::from_vec(b, (slots, n), &Device::Cpu)?
                    }
                    Store::Device(d) => {
                        let b = d.buffers.get(i).cloned().unwrap_or_default();
                        Tensor::stack(&b, 0)?.to_device(&Device::Cpu)?
                    }
                };
                out.insert(format!("buffers.{i}"), t);
            }
        }
        Ok(out)
    }

    /// Writes [`state_tensors`](HdOptimizer::state_tensors) to a safetensors file.
    ///
    /// # Errors
    /// As `state_tensors`, and [`HdError::Candle`] if the file cannot be written.
    pub fn save_state(&self, path: impl AsRef<Path>) -> Result<(), HdError> {
        candle_core::safetensors::save(&self.state_tensors()?, path)?;
        Ok(())
    }

    /// Reads a safetensors file written by [`save_state`](HdOptimizer::save_state) and
    /// restores it ([`load_state`](HdOptimizer::load_state)).
    ///
    /// # Errors
    /// [`HdError::Candle`] if the file cannot be read; as `load_state`.
    pub fn load_state_file(&mut self, path: impl AsRef<Path>) -> Result<(), HdError> {
        let named = candle_core::safetensors::load(path, &Device::Cpu)?;
        self.load_state(&named)
    }

    /// Restores state from [`state_tensors`](HdOptimizer::state_tensors).
    ///
    /// # Errors
    /// [`HdError::StateMismatch`] for a state of other hyperparameters (another rule, scope,
    /// β, …), other variables (count or shapes), or a tensor missing, extra or of the wrong
    /// dtype; [`HdError::Core`] for a corrupt record. Nothing is changed on error.
    pub fn load_state(&mut self, named: &HashMap<String, Tensor>) -> Result<(), HdError> {
        let get = |name: &str| {
            named
                .get(name)
                .ok_or_else(|| HdError::StateMismatch(format!("no '{name}' tensor")))
        };
        let typed = |name: &str, dtype: DType, dims: &[usize]| -> Result<&Tensor, HdError> {
            let t = get(name)?;
            if t.dtype() != dtype || t.dims() != dims {
                return Err(HdError::StateMismatch(format!(
                    "'{name}' is {:?} {:?}, expected {dtype:?} {dims:?}",
                    t.dtype(),
                    t.dims()
                )));
            }
            Ok(t)
        };
        let record = get("record")?;
        let record = typed("record", DType::U8, &[record.elem_count()])?.to_vec1::<u8>()?;
        let (saved, state) = Rule::decode(&record)?;
        if saved.config() != self.rule.config() {
            return Err(HdError::StateMismatch(format!(
                "saved with {:?}, this optimizer has {:?}",
                saved.config(),
                self.rule.config()
            )));
        }
        let groups = if per_tensor(&self.rule) {
            self.vars.len()
        } else {
            1
        };
        let alphas = typed("alpha", DType::F32, &[groups])?.to_vec1::<f32>()?;
        if alphas.first().map(|a| a.to_bits()) != Some(state.alpha.to_bits()) && groups > 0 {
            return Err(HdError::StateMismatch(
                "the record's α is not the first of 'alpha'".into(),
            ));
        }
        let slots = self.rule.slots();
        let mut buffers = Vec::with_capacity(self.vars.len());
        if slots > 0 {
            for (i, v) in self.vars.iter().enumerate() {
                let dims = [slots, v.elem_count()];
                buffers.push(typed(&format!("buffers.{i}"), DType::F32, &dims)?);
            }
        }
        let expected = 2 + buffers.len();
        if named.len() != expected {
            return Err(HdError::StateMismatch(format!(
                "{} tensors, expected {expected} (record, alpha and one buffer per variable)",
                named.len()
            )));
        }
        // Everything converted before anything is replaced.
        match &mut self.store {
            Store::Host(h) => {
                let host = buffers
                    .iter()
                    .map(|b| b.flatten_all()?.to_vec1::<f32>())
                    .collect::<candle_core::Result<Vec<_>>>()?;
                h.states = alphas
                    .iter()
                    .map(|&alpha| State {
                        step: state.step,
                        alpha,
                        ..state
                    })
                    .collect();
                if slots > 0 {
                    h.buffers = host;
                }
            }
            Store::Device(d) => {
                let device = self.device.clone();
                let mut placed = Vec::with_capacity(buffers.len());
                for b in &buffers {
                    let rows = (0..slots)
                        .map(|k| b.get(k)?.to_device(&device))
                        .collect::<candle_core::Result<Vec<_>>>()?;
                    placed.push(rows);
                }
                let alpha = Tensor::from_vec(alphas, groups, &device)?;
                d.alpha = alpha;
                d.step = state.step;
                if slots > 0 {
                    d.buffers = placed;
                }
            }
        }
        Ok(())
    }
}
