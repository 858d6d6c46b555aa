//! Multinomial logistic regression 784 → 10: forward pass, softmax cross-entropy and its gradient.
//!
//! Parameters live in one flat buffer so that hd-core steps them with one call: the weights
//! `W` (10 rows of 784, row-major, row k scores class k), then the biases `b` (10).
//!
//! For an image x with label y: z = W x + b, p = softmax(z), loss ℓ = −ln p_y = ln Σ_k e^{z_k} − z_y.
//! Its gradient is ∂ℓ/∂z = p − e_y, so ∂ℓ/∂W = (p − e_y) xᵀ and ∂ℓ/∂b = p − e_y; a minibatch
//! averages both. The L2 term, when used, is added by hd-core's coupled weight decay (g + λθ), so
//! the losses reported here are the data term alone.
//!
//! The two inner loops (ten dot products forward, ten saxpy backward) are written over
//! fixed-width lanes so LLVM emits 128-bit SIMD for both x86-64 (SSE2) and wasm (`simd128`).

use crate::data::{Dataset, Inputs};
pub use crate::shape::{CLASSES, INPUTS, PARAMS, WEIGHTS};
use crate::Error;

/// Independent partial sums per dot product, in 4-wide vectors: enough of them hide the add
/// latency. Measured (`cargo xtask demo --bench`, BENCHMARKS.md): natively 16 lanes train
/// about 1.9× faster than 8, while V8 runs wasm's 8-lane loop about 10 % faster than the
/// 16-lane one, so each target gets its best.
#[cfg(target_arch = "wasm32")]
const LANES: usize = 8;
#[cfg(not(target_arch = "wasm32"))]
const LANES: usize = 16;
const _: () = assert!(INPUTS % LANES == 0);

/// Σ a_i b_i over equal-length slices whose length is a multiple of [`LANES`].
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    for (xa, xb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for ((s, &u), &v) in acc.iter_mut().zip(xa).zip(xb) {
            *s += u * v;
        }
    }
    acc.iter().sum()
}

/// y += a x.
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (yc, xc) in y.chunks_exact_mut(LANES).zip(x.chunks_exact(LANES)) {
        for (u, &v) in yc.iter_mut().zip(xc) {
            *u += a * v;
        }
    }
}

/// The result of one forward pass.
struct Forward {
    /// Class probabilities p = softmax(z).
    p: [f32; CLASSES],
    /// Logits z = W x + b.
    z: [f32; CLASSES],
    /// ln Σ_k e^{z_k}.
    log_sum: f32,
    /// The logits' arg max (ties go to the lower class).
    best: usize,
}

impl Forward {
    /// ℓ = ln Σ e^z − z_y, exact even when p_y underflows to 0 for a confidently wrong model.
    fn loss(&self, y: usize) -> f32 {
        self.log_sum - self.z.get(y).copied().unwrap_or(f32::NAN)
    }
}

#[inline]
fn forward(params: &[f32], x: &[f32]) -> Forward {
    let (weights, bias) = params.split_at(WEIGHTS);
    let mut z = [0.0f32; CLASSES];
    for ((z, row), b) in z.iter_mut().zip(weights.chunks_exact(INPUTS)).zip(bias) {
        *z = dot(row, x) + b;
    }
    let (mut best, mut max) = (0, f32::NEG_INFINITY);
    for (k, &zk) in z.iter().enumerate() {
        if zk > max {
            (best, max) = (k, zk);
        }
    }
    // Subtracting the max keeps every exponent ≤ 0: no overflow, same probabilities.
    let mut p = [0.0f32; CLASSES];
    let mut sum = 0.0;
    for (pk, &zk) in p.iter_mut().zip(&z) {
        *pk = (zk - max).exp();
        sum += *pk;
    }
    for pk in p.iter_mut() {
        *pk /= sum;
    }
    Forward {
        p,
        z,
        log_sum: max + sum.ln(),
        best,
    }
}

fn label(data: &Dataset, index: u32) -> Result<usize, Error> {
    data.labels()
        .get(index as usize)
        .map(|&l| usize::from(l))
        .ok_or_else(|| Error::Data(format!("image {index} is out of range")))
}

fn check_params(params: &[f32]) -> Result<(), Error> {
    if params.len() == PARAMS {
        Ok(())
    } else {
        Err(Error::Data(format!(
            "the model has {PARAMS} parameters, got {}",
            params.len()
        )))
    }
}

/// Mean cross-entropy of the minibatch `batch` (indices into `data`, read as `inputs`), and its gradient with
/// respect to `params` written into `grad` (overwritten, not accumulated).
///
/// # Errors
/// [`Error::Data`] when `params` or `grad` is not [`PARAMS`] long, the batch is empty or an
/// index is out of range.
pub fn loss_and_gradient(
    params: &[f32],
    data: &Dataset,
    inputs: Inputs,
    batch: &[u32],
    grad: &mut [f32],
) -> Result<f32, Error> {
    check_params(params)?;
    check_params(grad)?;
    if batch.is_empty() {
        return Err(Error::Data("a minibatch needs at least one image".into()));
    }
    grad.fill(0.0);
    let scale = 1.0 / batch.len() as f32;
    let mut total = 0.0f64;
    let mut x = [0.0f32; INPUTS];
    for &index in batch {
        data.image_into(index, inputs, &mut x)?;
        let y = label(data, index)?;
        let out = forward(params, &x);
        total += f64::from(out.loss(y));
        // ∂ℓ/∂z = p − e_y, scaled by 1/B for the mean.
        let mut p = out.p;
        if let Some(p_y) = p.get_mut(y) {
            *p_y -= 1.0;
        }
        let (grad_w, grad_b) = grad.split_at_mut(WEIGHTS);
        for ((row, gb), &e) in grad_w.chunks_exact_mut(INPUTS).zip(grad_b).zip(&p) {
            let e = e * scale;
            axpy(row, e, &x);
            *gb += e;
        }
    }
    Ok((total / batch.len() as f64) as f32)
}

/// Mean cross-entropy and accuracy (fraction in [0, 1]) over the images `indices`.
///
/// # Errors
/// [`Error::Data`] when `params` is not [`PARAMS`] long or an index is out of range. An empty
/// set gives loss 0 and accuracy 0.
pub fn evaluate(
    params: &[f32],
    data: &Dataset,
    inputs: Inputs,
    indices: &[u32],
) -> Result<(f32, f32), Error> {
    check_params(params)?;
    if indices.is_empty() {
        return Ok((0.0, 0.0));
    }
    let (mut total, mut correct) = (0.0f64, 0usize);
    let mut x = [0.0f32; INPUTS];
    for &index in indices {
        let y = label(data, index)?;
        data.image_into(index, inputs, &mut x)?;
        let out = forward(params, &x);
        total += f64::from(out.loss(y));
        correct += usize::from(out.best == y);
    }
    let n = indices.len() as f64;
    Ok(((total / n) as f32, (correct as f64 / n) as f32))
}

/// Class probabilities for one image of [`INPUTS`] model inputs (see [`Inputs::image`]).
///
/// # Errors
/// [`Error::Data`] when `params` or `pixels` has the wrong length.
pub fn predict(params: &[f32], pixels: &[f32]) -> Result<[f32; CLASSES], Error> {
    check_params(params)?;
    if pixels.len() != INPUTS {
        return Err(Error::Data(format!(
            "an image has {INPUTS} pixels, got {}",
            pixels.len()
        )));
    }
    Ok(forward(params, pixels).p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two images: all-zero (label 0) and a single lit pixel 5 (label 3).
    fn tiny() -> Dataset {
        let mut pixels = vec![0; 2 * INPUTS];
        pixels[INPUTS + 5] = 255;
        Dataset::new(pixels, vec![0, 3]).unwrap()
    }

    #[test]
    fn zero_model_predicts_uniformly_with_loss_ln_10() {
        // With W = 0, b = 0 every logit is 0: p_k = 1/10 and ℓ = ln 10 for any image.
        let params = vec![0.0; PARAMS];
        let data = tiny();
        let (loss, acc) = evaluate(&params, &data, Inputs::UNIT, &[0, 1]).unwrap();
        assert!((loss - 10f32.ln()).abs() < 1e-6, "{loss}");
        // Ties go to class 0: right for image 0, wrong for image 1.
        assert_eq!(acc, 0.5);
        let p = predict(&params, &[0.0; INPUTS]).unwrap();
        assert!(p.iter().all(|&q| (q - 0.1).abs() < 1e-7));
    }

    #[test]
    fn gradient_matches_the_closed_form_at_zero() {
        // At θ = 0, p = 1/10, so for the batch {image 1 (x = e_5, y = 3)}:
        // ∂ℓ/∂b_k = 0.1 − [k = 3], ∂ℓ/∂W_{k,5} = 0.1 − [k = 3], every other weight 0.
        let params = vec![0.0; PARAMS];
        let mut grad = vec![f32::NAN; PARAMS];
        let loss = loss_and_gradient(&params, &tiny(), Inputs::UNIT, &[1], &mut grad).unwrap();
        assert!((loss - 10f32.ln()).abs() < 1e-6);
        for k in 0..CLASSES {
            let want = if k == 3 { -0.9 } else { 0.1 };
            assert!((grad[WEIGHTS + k] - want).abs() < 1e-6);
            for i in 0..INPUTS {
                let w = if i == 5 { want } else { 0.0 };
                assert!((grad[k * INPUTS + i] - w).abs() < 1e-6, "k={k} i={i}");
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // Central differences of the batch loss at a random point, in f64 terms of the f32 loss.
        let mut rng = crate::data::SplitMix64::new(1);
        let mut uniform = move || (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        let pixels: Vec<u8> = (0..3 * INPUTS).map(|_| (uniform() * 255.0) as u8).collect();
        let data = Dataset::new(pixels, vec![2, 7, 7]).unwrap();
        let params: Vec<f32> = (0..PARAMS).map(|_| (uniform() - 0.5) * 0.02).collect();
        let mut grad = vec![0.0; PARAMS];
        loss_and_gradient(&params, &data, Inputs::UNIT, &[0, 1, 2], &mut grad).unwrap();
        let mut scratch = vec![0.0; PARAMS];
        for &i in &[
            0,
            5,
            2 * INPUTS + 100,
            7 * INPUTS + 783,
            WEIGHTS,
            WEIGHTS + 7,
        ] {
            let h = 1e-2;
            let mut plus = params.clone();
            plus[i] += h;
            let mut minus = params.clone();
            minus[i] -= h;
            let lp =
                loss_and_gradient(&plus, &data, Inputs::UNIT, &[0, 1, 2], &mut scratch).unwrap();
            let lm =
                loss_and_gradient(&minus, &data, Inputs::UNIT, &[0, 1, 2], &mut scratch).unwrap();
            let numeric = (lp - lm) / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() < 2e-3,
                "param {i}: {numeric} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn confident_correct_model_has_small_loss_and_full_accuracy() {
        // b_0 = 10, b_3 = −10 and W_{3,5} = 30: image 0 scores class 0 by 10, image 1 scores
        // class 3 at 20 against 10 for class 0, so both are right with loss ≈ e^{-10}.
        let mut params = vec![0.0; PARAMS];
        params[WEIGHTS] = 10.0;
        params[WEIGHTS + 3] = -10.0;
        params[3 * INPUTS + 5] = 30.0;
        let (loss, acc) = evaluate(&params, &tiny(), Inputs::UNIT, &[0, 1]).unwrap();
        assert_eq!(acc, 1.0);
        assert!(loss < 1e-3, "{loss}");
    }

    #[test]
    fn rejects_wrong_lengths_and_empty_batches() {
        let data = tiny();
        let mut grad = vec![0.0; PARAMS];
        assert!(loss_and_gradient(&[0.0; 3], &data, Inputs::UNIT, &[0], &mut grad).is_err());
        assert!(
            loss_and_gradient(&vec![0.0; PARAMS], &data, Inputs::UNIT, &[], &mut grad).is_err()
        );
        assert!(
            loss_and_gradient(&vec![0.0; PARAMS], &data, Inputs::UNIT, &[2], &mut grad).is_err()
        );
        assert!(predict(&vec![0.0; PARAMS], &[0.0; 10]).is_err());
    }
}
