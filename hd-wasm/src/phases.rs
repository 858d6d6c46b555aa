//! hd-core's [`Optimizer::step`] taken phase by phase, as that function does it, so that the
//! terms α moved by can be kept for the page. One copy serves the trainer and the playground:
//! inlined into each, hd-core's loops for every rule took about 50 KB of the wasm module twice.

use hd_core::{Accumulator, Optimizer, State};

/// One step (hypergradient, α update, apply) of `optimizer`; returns the phase-1 sums.
///
/// # Errors
/// hd-core's; `state` and `params` are then unchanged.
#[inline(never)]
pub(crate) fn step(
    optimizer: &Optimizer,
    state: &mut State,
    params: &mut [f32],
    grads: &[f32],
    buffers: &mut [f32],
) -> Result<Accumulator, hd_core::Error> {
    let mut acc = Accumulator::new();
    optimizer.hypergradient(state, params, grads, buffers, &mut acc)?;
    let mut next = *state;
    optimizer.advance(&mut next, &acc)?;
    optimizer.apply(&next, params, grads, buffers)?;
    *state = next;
    Ok(acc)
}
