//! Paper §5.1: with γ_t = δ(t) α_t + (1 − δ(t)) α_∞, δ(t) = 1/t², full-batch gradient descent on
//! a convex L-smooth function converges whenever α_∞ < 1/L, even with a β so large that plain
//! HD diverges.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use hd_core::{Config, Error, Hyper, Optimizer, Transition};

/// f(θ) = ½ Σ k_i θ_i² with k = (1, 4), so L = 4 and 1/L = 0.25; minimiser θ* = 0.
const K: [f32; 2] = [1.0, 4.0];

fn run(hyper: Hyper, steps: usize) -> Result<Vec<f32>, Error> {
    let opt = Optimizer::new(Config {
        hyper: Some(hyper),
        ..Config::sgd(0.1)
    })?;
    let mut state = opt.init_state();
    let mut theta = vec![1.0f32, 1.0];
    let mut buffers = vec![0.0; opt.buffer_len(2).unwrap()];
    for _ in 0..steps {
        let g: Vec<f32> = theta.iter().zip(K).map(|(t, k)| t * k).collect();
        opt.step(&mut state, &mut theta, &g, &mut buffers)?;
    }
    Ok(theta)
}

#[test]
fn transition_converges_where_plain_hd_diverges() {
    // β = 0.1: g_2·d_1 = 0.9 + 9.6 = 10.5, so α_2 = 0.1 + 1.05 = 1.15 > 2/L = 0.5 and the stiff
    // coordinate oscillates with growing amplitude; plain HD overflows within ten steps. With the
    // transition α_t itself still grows (to ≈ 0.8), but γ_t → α_∞ = 0.2 < 1/L.
    let beta = 0.1;
    let plain = run(Hyper::additive(beta), 200);
    let diverged = match &plain {
        Err(Error::NonFinite) => true,
        Ok(theta) => theta.iter().any(|t| !t.is_finite() || t.abs() > 1e3),
        Err(e) => panic!("unexpected {e}"),
    };
    assert!(
        diverged,
        "plain HD with β = {beta} was expected to diverge: {plain:?}"
    );

    let convergent = Hyper {
        transition: Some(Transition {
            power: 2.0,
            alpha_inf: 0.2, // < 1/L = 0.25
        }),
        ..Hyper::additive(beta)
    };
    let theta = run(convergent, 200).unwrap();
    assert!(
        theta.iter().all(|t| t.abs() < 1e-6),
        "did not reach θ* = 0: {theta:?}"
    );
}
