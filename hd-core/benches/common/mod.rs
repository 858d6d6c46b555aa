//! What both benchmarks share: the rules as benchmarked, their data, the bytes a step moves,
//! and the two bandwidth baselines.

use hd_core::{Config, HyperRule, Variant};

/// Bytes one step of `v` really moves per parameter: DESIGN §7's model, plus the 4-byte read
/// of g that base rules make to refuse a non-finite gradient before writing.
pub fn bytes(v: Variant) -> usize {
    v.model_bytes_per_parameter() + if v.rule().is_none() { 4 } else { 0 }
}

/// `v` as benchmarked: α0 = 0.001, μ = 0.9. β is tiny so that millions of steps on one fixed
/// gradient never overflow α; the work a step does does not depend on β's value.
pub fn config(v: Variant) -> Config {
    let beta = match v.rule() {
        Some(HyperRule::Multiplicative) => 1e-9,
        _ => 1e-12,
    };
    v.config(1e-3, beta, 0.9)
}

/// n values in about [−0.8, 0.9], different for each seed.
pub fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 * 1e-7 - 0.8)
        .collect()
}

/// Bytes per element the copy baseline is counted as moving (read 4, write 4). It really moves
/// more: its destination is read before it is written (write-allocate), and on large arrays the
/// C library's `memcpy` switches to non-temporal stores, which on some machines run at half
/// the bandwidth.
pub const COPY_BYTES: usize = 8;

/// The copy baseline: n f32s.
#[inline]
pub fn copy(dst: &mut [f32], src: &[f32]) {
    dst.copy_from_slice(src);
}

/// Bytes per element of the streaming baseline (read a and b, write a).
pub const STREAM_BYTES: usize = 12;

/// The streaming baseline: a ← a·h + b·h in place, the access pattern of an optimizer step
/// (with h = ½, a stays bounded however often it runs).
#[inline]
pub fn stream(a: &mut [f32], b: &[f32], h: f32) {
    for (a, b) in a.iter_mut().zip(b) {
        *a = *a * h + *b * h;
    }
}
