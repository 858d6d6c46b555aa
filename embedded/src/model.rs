//! Multinomial logistic regression on 8×8 digits: the paper's LogReg model, shrunk to fit.
//!
//! Parameters θ are one flat buffer: the 10×64 weight matrix W (row-major, one row per class)
//! followed by the 10 biases b. For an image x with label y, p = softmax(W x + b) and the loss is
//! the cross-entropy −log p_y; its gradient is ∂/∂W_kj = (p_k − [k = y]) x_j and
//! ∂/∂b_k = p_k − [k = y]. A minibatch averages both.
//!
//! This is model code only: the update rules (and the L2 term, coupled into the gradient by
//! hd-core's `weight_decay`) live in hd-core.

use crate::data::{Digits, Example, CLASSES, PIXELS};

/// Number of parameters: W then b.
pub const PARAMS: usize = CLASSES * PIXELS + CLASSES;

/// Class probabilities softmax(W x + b), computed stably (the maximum logit is subtracted).
fn probabilities(params: &[f32; PARAMS], x: &[f32; PIXELS]) -> [f32; CLASSES] {
    let (weights, bias) = params.split_at(CLASSES * PIXELS);
    let mut p = [0.0; CLASSES];
    for ((pk, row), bk) in p.iter_mut().zip(weights.chunks_exact(PIXELS)).zip(bias) {
        *pk = row.iter().zip(x).fold(*bk, |acc, (w, xj)| acc + w * xj);
    }
    let max = p.iter().fold(f32::NEG_INFINITY, |m, &z| m.max(z));
    let mut total = 0.0;
    for pk in &mut p {
        *pk = libm::expf(*pk - max);
        total += *pk;
    }
    for pk in &mut p {
        *pk /= total;
    }
    p
}

/// Cross-entropy −log p_y of one example, floored so a confident mistake stays finite.
fn example_loss(p: &[f32; CLASSES], label: usize) -> f32 {
    -libm::logf(p.get(label).copied().unwrap_or(0.0).max(1e-30))
}

/// Writes the mean gradient over `batch` (indices into `set`) into `grads` and returns the
/// batch's mean loss.
pub fn gradient(
    params: &[f32; PARAMS],
    set: Digits,
    batch: &[u16],
    grads: &mut [f32; PARAMS],
) -> f32 {
    grads.fill(0.0);
    let scale = 1.0 / batch.len().max(1) as f32;
    let mut loss = 0.0;
    for Example { label, pixels } in batch.iter().filter_map(|&i| set.get(usize::from(i))) {
        let p = probabilities(params, &pixels);
        loss += example_loss(&p, label);
        let (dw, db) = grads.split_at_mut(CLASSES * PIXELS);
        for (k, ((pk, row), bk)) in p
            .iter()
            .zip(dw.chunks_exact_mut(PIXELS))
            .zip(db)
            .enumerate()
        {
            let err = (pk - if k == label { 1.0 } else { 0.0 }) * scale;
            *bk += err;
            for (g, xj) in row.iter_mut().zip(&pixels) {
                *g += err * xj;
            }
        }
    }
    loss * scale
}

/// Mean cross-entropy over a whole set and the fraction classified correctly.
pub fn evaluate(params: &[f32; PARAMS], set: Digits) -> (f32, f32) {
    let mut loss = 0.0;
    let mut correct = 0usize;
    for Example { label, pixels } in (0..set.len()).filter_map(|i| set.get(i)) {
        let p = probabilities(params, &pixels);
        loss += example_loss(&p, label);
        let predicted = (0..CLASSES).fold(0, |best, k| if p[k] > p[best] { k } else { best });
        correct += usize::from(predicted == label);
    }
    let n = set.len().max(1) as f32;
    (loss / n, correct as f32 / n)
}
