//! Numeric edge cases and API traps: HDM's cosine at both ends of the f32 range, the start of
//! per-parameter α, clamps that exclude α_0, overflowing per-parameter α, and the builders.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use hd_core::{
    Adam, Base, Config, Error, Hyper, Optimizer, Scope, Settings, State, Transition, Variant,
};

/// Runs `grads` (one gradient per step) through `config` from θ = 0; returns the state, θ and
/// the buffers, or the first error.
fn run(config: Config, grads: &[Vec<f32>]) -> Result<(State, Vec<f32>, Vec<f32>), Error> {
    let opt = Optimizer::new(config)?;
    let n = grads[0].len();
    let mut state = opt.init_state();
    let mut theta = vec![0.0f32; n];
    let mut buffers = vec![0.0f32; opt.buffer_len(n).unwrap()];
    opt.init_buffers(&mut buffers)?;
    for g in grads {
        opt.step(&mut state, &mut theta, g, &mut buffers)?;
    }
    Ok((state, theta, buffers))
}

fn assert_rel(got: f32, want: f64, tol: f64, what: &str) {
    let err = ((f64::from(got) - want) / want).abs();
    assert!(
        err <= tol,
        "{what}: got {got}, want {want} (relative error {err:e})"
    );
}

/// HDM: α_2 = α_1 (1 + β′ cos(g_2, d_1)). With constant gradients of one sign, every g_2 is
/// parallel to d_1 whatever their sizes, so cos = ±1 and α_2 = α_0 (1 ± β′) (paper Eq. 8, by
/// hand). Before the fix, Σ g² underflowed to 0 below |g| ≈ 1e-23 (α became 1.7e9 in the
/// audit's reproduction) and overflowed to ∞ above 1e19 (an error for a valid step).
#[test]
fn hdm_cosine_is_exact_at_both_ends_of_the_f32_range() {
    let n = 1000;
    let cases: [(f32, f32); 7] = [
        (1e-3, 1e-24),  // the audit's reproduction: g² underflows
        (1e-3, -1e-24), // opposed: cos = −1
        (1e-30, 1e-30), // both tiny: g² and d² are 0 in f32
        (1e-44, 1e-44), // subnormal gradients
        (1e20, 1e20),   // g² overflows
        (3e38, 1e-40),  // the two ends at once
        (1e-40, -3e38),
    ];
    for (first, second) in cases {
        let grads = [vec![first; n], vec![second; n]];
        let (state, ..) = run(Config::sgd(1e-3).with_hdm(0.02), &grads).unwrap();
        let sign = if (first > 0.0) == (second > 0.0) {
            1.0
        } else {
            -1.0
        };
        let want = 1e-3f64 * (1.0 + 0.02 * sign);
        assert_rel(
            state.alpha,
            want,
            1e-6,
            &format!("SGD-HDM g = {first:e}, {second:e}"),
        );
    }
    // Adam-HDM from 1e-10 to 1e-25 (the audit saw α × 1.7e12): d_1 = m̂_1/(√v̂_1 + ε) is
    // parallel to g_1, hence to g_2.
    let grads = [vec![1e-10f32; n], vec![1e-25; n]];
    let (state, ..) = run(Config::adam(1e-3).with_hdm(0.02), &grads).unwrap();
    assert_rel(state.alpha, 1.02e-3, 1e-6, "Adam-HDM 1e-10 then 1e-25");
    // A mixed model: one tensor of ordinary gradients and one tiny one, per-tensor α.
    let opt = Optimizer::new(
        Config::sgd(1e-3)
            .with_hdm(0.02)
            .with_scope(Scope::PerTensor),
    )
    .unwrap();
    let mut states = [opt.init_state(); 2];
    let (mut p1, mut p2) = ([0.0f32; 3], [0.0f32; 5]);
    let (mut b1, mut b2) = ([0.0f32; 3], [0.0f32; 5]);
    for (g1, g2) in [([0.5f32; 3], [1e-24f32; 5]), ([0.5; 3], [-1e-24; 5])] {
        let mut tensors = [
            hd_core::TensorMut {
                params: &mut p1,
                grads: &g1,
                buffers: &mut b1,
            },
            hd_core::TensorMut {
                params: &mut p2,
                grads: &g2,
                buffers: &mut b2,
            },
        ];
        opt.step_tensors(&mut states, &mut tensors).unwrap();
    }
    assert_rel(
        states[0].alpha,
        1.02e-3,
        1e-6,
        "per-tensor, ordinary tensor",
    );
    assert_rel(states[1].alpha, 0.98e-3, 1e-6, "per-tensor, tiny tensor");
}

/// Where nothing under- or overflows, the scaled sums are the old sums bit for bit: HDM over
/// a mix of magnitudes equals the f64 reference as closely as before (checked in the suite);
/// here, cos never leaves [−1, 1] over random-sign gradients spanning 1e-30 … 1e30.
#[test]
fn hdm_alpha_moves_at_most_by_the_factor_one_plus_beta() {
    let mut s = 12345u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s
    };
    let opt = Optimizer::new(Config::sgdn(1e-3, 0.9).with_hdm(0.5)).unwrap();
    let n = 37;
    let mut state = opt.init_state();
    let mut theta = vec![0.0f32; n];
    let mut buffers = vec![0.0f32; opt.buffer_len(n).unwrap()];
    for _ in 0..200 {
        let scale = 10f32.powi((next() % 61) as i32 - 30);
        let g: Vec<f32> = (0..n)
            .map(|_| scale * ((next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5))
            .collect();
        // θ and α may grow without bound over random steps; only one step's change of α
        // matters here, so both restart each time (the buffers carry d_{t−1} on).
        theta.fill(0.0);
        state.alpha = 1e-3;
        let before = state.alpha;
        opt.step(&mut state, &mut theta, &g, &mut buffers).unwrap();
        let ratio = state.alpha / before;
        assert!(
            (0.5 * (1.0 - 1e-6)..=1.5 * (1.0 + 1e-6)).contains(&ratio),
            "α changed by {ratio} at scale {scale:e}"
        );
    }
}

/// Per-parameter α starts at α_0 whether or not the buffers went through `init_buffers`:
/// zeroed buffers used to start every α_i at 0, a different trajectory with no error.
#[test]
fn per_parameter_alpha_starts_at_alpha0_from_zeroed_buffers() {
    let config = Config::sgd(0.1)
        .with_hd(0.01)
        .with_scope(Scope::PerParameter);
    let opt = Optimizer::new(config).unwrap();
    let grads = [[1.0f32, -2.0, 0.5], [0.5, -1.0, -0.5], [0.25, 0.5, 1.0]];
    let mut zeroed = vec![0.0f32; opt.buffer_len(3).unwrap()];
    let mut initialised = zeroed.clone();
    opt.init_buffers(&mut initialised).unwrap();
    let (mut s1, mut s2) = (opt.init_state(), opt.init_state());
    let (mut t1, mut t2) = ([1.0f32; 3], [1.0f32; 3]);
    for (k, g) in grads.iter().enumerate() {
        opt.step(&mut s1, &mut t1, g, &mut zeroed).unwrap();
        opt.step(&mut s2, &mut t2, g, &mut initialised).unwrap();
        if k == 0 {
            // By hand: θ_1 = θ_0 − α_0 g_1 with α_0 = 0.1, and α_{1,i} = α_0 in the α slot.
            assert_eq!(t1, [1.0 - 0.1, 1.0 + 0.2, 1.0 - 0.05]);
            assert_eq!(&zeroed[3..], &[0.1f32; 3]);
        }
    }
    assert_eq!(t1, t2);
    assert_eq!(zeroed, initialised);
    // α_{2,0} = α_0 + β g_{2,0} d_{1,0} = 0.1 + 0.01 · 0.5 · 1 (by hand).
    assert_eq!(zeroed[3], 0.1f32 + 0.01 * 0.5 * 1.0 + 0.01 * 0.25 * 0.5);
}

/// Issue: α_0 = 1e-30, β = 1e10, gradient [1e19] twice. Global scope refuses the second step
/// (β g·d = 1e48 overflows); per-parameter scope used to return `Ok` with α_i = ∞, θ = −∞.
#[test]
fn per_parameter_scope_refuses_an_overflowing_alpha_before_writing() {
    let grads = [vec![1e19f32], vec![1e19]];
    for scope in Scope::ALL {
        let config = Config::sgd(1e-30).with_hd(1e10).with_scope(scope);
        let opt = Optimizer::new(config).unwrap();
        let mut state = opt.init_state();
        let mut theta = vec![0.0f32];
        let mut buffers = vec![0.0f32; opt.buffer_len(1).unwrap()];
        opt.step(&mut state, &mut theta, &grads[0], &mut buffers)
            .unwrap();
        let before = (state, theta.clone(), buffers.clone());
        assert_eq!(
            opt.step(&mut state, &mut theta, &grads[1], &mut buffers),
            Err(Error::NonFinite),
            "{scope:?}"
        );
        assert_eq!(
            (state, theta, buffers),
            before,
            "{scope:?} changed something"
        );
    }
    // A clamp bounds α, so the same step is fine there and α_i is the clamp's top.
    let config = Config::sgd(1e-30)
        .with_hd(1e10)
        .with_scope(Scope::PerParameter)
        .with_clamp(0.0, 1e-3);
    let (_, _, buffers) = run(config, &grads).unwrap();
    assert_eq!(buffers[1], 1e-3);
}

/// The first step uses α_0 (h_1 = 0), so a clamp that excludes α_0 would silently replace it.
#[test]
fn a_clamp_that_excludes_alpha0_is_refused_naming_both() {
    let inconsistent = Err(Error::InconsistentHyperparameters {
        first: "alpha0",
        second: "clamp",
        requirement: "lo <= alpha0 <= hi",
    });
    for (lo, hi) in [(0.2, 0.5), (-1.0, 0.05)] {
        let config = Config::sgd(0.1).with_hd(1e-3).with_clamp(lo, hi);
        assert_eq!(Optimizer::new(config).map(|_| ()), inconsistent);
        assert_eq!(config.validate(), inconsistent);
    }
    // The ends are inside.
    for (lo, hi) in [(0.1, 0.5), (-1.0, 0.1), (0.1, 0.1)] {
        let config = Config::sgd(0.1).with_hd(1e-3).with_clamp(lo, hi);
        assert!(Optimizer::new(config).is_ok(), "[{lo}, {hi}]");
    }
    let message = Error::InconsistentHyperparameters {
        first: "alpha0",
        second: "clamp",
        requirement: "lo <= alpha0 <= hi",
    }
    .to_string();
    assert!(
        message.contains("alpha0") && message.contains("clamp"),
        "{message}"
    );
}

/// The builders produce the struct-literal forms, in any order, and drop nothing.
#[test]
fn config_builders_set_every_field_in_any_order() {
    let tr = Transition {
        power: 2.0,
        alpha_inf: 0.01,
    };
    let literal = Config {
        hyper: Some(Hyper {
            scope: Scope::PerParameter,
            clamp: Some((1e-6, 0.1)),
            transition: Some(tr),
            ..Hyper::additive(1e-3)
        }),
        ..Config::sgd(0.001)
    };
    let forward = Config::sgd(0.001)
        .with_hd(1e-3)
        .with_scope(Scope::PerParameter)
        .with_clamp(1e-6, 0.1)
        .with_transition(tr);
    let backward = Config::sgd(0.001)
        .with_transition(tr)
        .with_clamp(1e-6, 0.1)
        .with_scope(Scope::PerParameter)
        .with_hd(1e-3);
    assert_eq!(forward, literal);
    assert_eq!(backward, literal);
    // HDM after a per-parameter scope is refused, not turned into something else.
    let hdm = Config::sgd(0.001)
        .with_scope(Scope::PerParameter)
        .with_hdm(0.02);
    assert!(matches!(
        Optimizer::new(hdm),
        Err(Error::InvalidHyperparameter { name: "scope", .. })
    ));
    // Without a hypergradient rule the builders add HD with β = 0: the base rule exactly.
    let schedule = Config::sgd(0.1).with_transition(tr);
    assert_eq!(schedule.hyper.map(|h| h.beta), Some(0.0));
    // √t decay is Adam's; on SGD it is an error rather than dropped.
    let adam = Config::adam(0.001).with_hd(1e-7).with_sqrt_decay().unwrap();
    assert_eq!(
        adam.base,
        Base::Adam(Adam {
            sqrt_decay: true,
            ..Adam::default()
        })
    );
    assert_eq!(adam.hyper, Some(Hyper::additive(1e-7)));
    assert!(matches!(
        Config::sgd(0.1).with_sqrt_decay(),
        Err(Error::InvalidHyperparameter {
            name: "sqrt_decay",
            ..
        })
    ));
}

/// `Variant::configure` names its numbers and refuses the ones that do not apply.
#[test]
fn variant_configure_refuses_missing_and_inapplicable_values() {
    let s = |beta: Option<f32>, mu: Option<f32>| Settings {
        alpha0: 0.001,
        beta,
        mu,
    };
    for v in Variant::ALL {
        let hyper = v.rule().is_some();
        let sgdn = v.base() == Variant::Sgdn;
        let beta = hyper.then_some(0.02);
        let mu = sgdn.then_some(0.9);
        // The right settings give what `config` gives.
        let good = v.configure(s(beta, mu)).unwrap();
        assert_eq!(good, v.config(0.001, 0.02, 0.9), "{v}");
        // Each value left out where needed, or given where it does not apply, is refused.
        let flipped_beta = if hyper { None } else { Some(0.02) };
        let flipped_mu = if sgdn { None } else { Some(0.9) };
        for (settings, name) in [(s(flipped_beta, mu), "beta"), (s(beta, flipped_mu), "mu")] {
            let refused = v.configure(settings);
            assert!(
                matches!(refused, Err(Error::InvalidHyperparameter { name: n, .. }) if n == name),
                "{v}: {name}: {refused:?}"
            );
        }
    }
    // Out-of-domain values are refused as Optimizer::new refuses them.
    assert!(matches!(
        Variant::SgdnHd.configure(s(Some(0.001), Some(1.5))),
        Err(Error::InvalidHyperparameter { name: "mu", .. })
    ));
}

/// `step` sends the nine plain rules to loops compiled for their rule; the two-phase API uses
/// the generic loops. Both must give the same bits, over several steps, for every rule.
#[test]
fn the_specialised_step_equals_the_generic_two_phase_step_bit_for_bit() {
    for v in Variant::ALL {
        let beta = if v.rule() == Some(hd_core::HyperRule::Additive) {
            1e-3
        } else {
            0.02
        };
        let plain = v.config(0.01, beta, 0.9);
        // Stacked HD runs HD's specialised loops with its own α and β update.
        let stacked =
            (v.rule() == Some(hd_core::HyperRule::Additive)).then(|| plain.with_kappa(1e-6));
        for (config, name) in [(plain, "plain"), (stacked.unwrap_or(plain), "stacked")] {
            let opt = Optimizer::new(config).unwrap();
            let n = 29;
            let theta0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let (mut s1, mut s2) = (opt.init_state(), opt.init_state());
            let (mut t1, mut t2) = (theta0.clone(), theta0);
            let mut b1 = vec![0.0f32; opt.buffer_len(n).unwrap()];
            let mut b2 = b1.clone();
            for step in 0..6 {
                let g: Vec<f32> = t1
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        t * (1.0 + i as f32 * 0.1) + (step as f32 * 0.3 + i as f32).cos() * 0.01
                    })
                    .collect();
                opt.step(&mut s1, &mut t1, &g, &mut b1).unwrap();
                let mut acc = hd_core::Accumulator::new();
                opt.hypergradient(&s2, &t2, &g, &b2, &mut acc).unwrap();
                opt.advance(&mut s2, &acc).unwrap();
                opt.apply(&s2, &mut t2, &g, &mut b2).unwrap();
            }
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&t1), bits(&t2), "{v} {name}: θ");
            assert_eq!(bits(&b1), bits(&b2), "{v} {name}: buffers");
            assert_eq!(s1.alpha.to_bits(), s2.alpha.to_bits(), "{v} {name}: α");
            assert_eq!(s1.beta.to_bits(), s2.beta.to_bits(), "{v} {name}: β");
            if config.hyper.is_some_and(|h| h.is_stacked()) {
                assert_ne!(s1.beta, beta, "{v}: β did not move");
            }
        }
    }
}
