//! The first three steps of SGD-HD, SGDN-HD, Adam-HD and SGD-HDM, computed by hand on tiny
//! problems. The SGD cases use dyadic numbers, so f32 holds every value exactly and the test
//! demands exact equality; Adam involves √ and ε, so it is checked to 1e-6 relative.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use hd_core::{Adam, Base, Config, Optimizer};

/// Runs `steps` steps on f(θ) = ½ Σ k_i θ_i² (gradient k_i θ_i) and returns θ and α after each.
fn trajectory(config: Config, theta: &[f32], k: &[f32], steps: usize) -> Vec<(Vec<f32>, f32)> {
    let opt = Optimizer::new(config).unwrap();
    let mut state = opt.init_state();
    let mut theta = theta.to_vec();
    let mut buffers = vec![0.0; opt.buffer_len(theta.len()).unwrap()];
    let mut out = Vec::new();
    for _ in 0..steps {
        let g: Vec<f32> = theta.iter().zip(k).map(|(t, k)| t * k).collect();
        opt.step(&mut state, &mut theta, &g, &mut buffers).unwrap();
        out.push((theta.clone(), state.alpha));
    }
    out
}

#[test]
fn sgd_hd_first_three_steps() {
    // f = ½‖θ‖², g = θ, θ_0 = (1, 0.5), α_0 = 0.5, β = 0.25.
    // t=1: d_0 = 0 so α_1 = 0.5; d_1 = g_1 = (1, 0.5); θ_1 = θ_0 − 0.5·d_1 = (0.5, 0.25).
    // t=2: g_2 = (0.5, 0.25); g_2·d_1 = 0.5 + 0.125 = 0.625; α_2 = 0.5 + 0.25·0.625 = 0.65625;
    //      θ_2 = θ_1 (1 − 0.65625) = (0.171875, 0.0859375).
    // t=3: g_3·d_2 = 0.171875·0.5 + 0.0859375·0.25 = 0.107421875;
    //      α_3 = 0.65625 + 0.25·0.107421875 = 0.68310546875 = 1399/2048;
    //      θ_3 = θ_2 (1 − 0.68310546875) = θ_2 · 0.31689453125 = (7139/131072, 7139/262144).
    let t = trajectory(Config::sgd(0.5).with_hd(0.25), &[1.0, 0.5], &[1.0, 1.0], 3);
    assert_eq!(t[0], (vec![0.5, 0.25], 0.5));
    assert_eq!(t[1], (vec![0.171875, 0.0859375], 0.65625));
    assert_eq!(
        t[2],
        (vec![7139.0 / 131072.0, 7139.0 / 262144.0], 1399.0 / 2048.0)
    );
}

#[test]
fn sgdn_hd_first_three_steps() {
    // f = ½θ², g = θ, θ_0 = 1, μ = 0.5, α_0 = 0.5, β = 0.25; Nesterov: v_t = μv + g, d_t = g + μv_t.
    // t=1: α_1 = 0.5; v_1 = 1; d_1 = 1 + 0.5 = 1.5; θ_1 = 1 − 0.5·1.5 = 0.25.
    // t=2: g = 0.25; α_2 = 0.5 + 0.25·(0.25·1.5) = 0.59375; v_2 = 0.5 + 0.25 = 0.75;
    //      d_2 = 0.25 + 0.375 = 0.625; θ_2 = 0.25 − 0.59375·0.625 = −0.12109375.
    // t=3: g = −0.12109375; α_3 = 0.59375 + 0.25·(−0.12109375·0.625) = 0.5748291015625 = 4709/8192;
    //      v_3 = 0.375 − 0.12109375 = 0.25390625; d_3 = −0.12109375 + 0.126953125 = 0.005859375;
    //      θ_3 = −0.12109375 − 0.5748291015625·0.005859375 = −522031/4194304.
    let t = trajectory(Config::sgdn(0.5, 0.5).with_hd(0.25), &[1.0], &[1.0], 3);
    assert_eq!(t[0], (vec![0.25], 0.5));
    assert_eq!(t[1], (vec![-0.12109375], 0.59375));
    assert_eq!(t[2], (vec![-522031.0 / 4194304.0], 4709.0 / 8192.0));
}

fn close(a: f32, b: f64) -> bool {
    (f64::from(a) - b).abs() <= 1e-6 * b.abs()
}

#[test]
fn adam_hd_first_three_steps() {
    // f = ½θ², g = θ, θ_0 = 1, α_0 = 0.1, β = 0.01, β1 = 0.5, β2 = 0.75, ε = 1e−8.
    // t=1: α_1 = 0.1; m = 0.5, v = 0.25; m̂ = 0.5/0.5 = 1, v̂ = 0.25/0.25 = 1;
    //      d_1 = 1/(1 + 1e−8) = 0.99999999; θ_1 = 1 − 0.1·d_1 = 0.900000001.
    // t=2: g = 0.900000001; α_2 = 0.1 + 0.01·g·d_1 = 0.10899999992;
    //      m = 0.25 + 0.5g = 0.7000000005; v = 0.1875 + 0.25g² = 0.39000000045;
    //      m̂ = m/0.75 = 0.933333334; v̂ = v/0.4375 = 0.891428572; √v̂ = 0.944155056;
    //      d_2 = 0.988538293; θ_2 = θ_1 − α_2·d_2 = 0.792249327.
    // t=3: g = 0.792249327; α_3 = α_2 + 0.01·g·d_2 = 0.116831688;
    //      m = 0.35 + 0.5g = 0.746124664; v = 0.2925 + 0.25g² = 0.449414749;
    //      m̂ = m/0.875 = 0.852713902; v̂ = v/0.578125 = 0.777366053; d_3 = 0.967142688;
    //      θ_3 = θ_2 − α_3·d_3 = 0.679256415.
    let config = Config {
        base: Base::Adam(Adam {
            beta1: 0.5,
            beta2: 0.75,
            eps: 1e-8,
            sqrt_decay: false,
        }),
        ..Config::sgd(0.1)
    }
    .with_hd(0.01);
    let t = trajectory(config, &[1.0], &[1.0], 3);
    let expected = [
        (0.900000001, 0.1),
        (0.792249327, 0.10899999992),
        (0.679256415, 0.116831688),
    ];
    for (step, ((theta, alpha), (et, ea))) in t.iter().zip(expected).enumerate() {
        assert!(close(theta[0], et), "θ_{}: {} vs {et}", step + 1, theta[0]);
        assert!(close(*alpha, ea), "α_{}: {alpha} vs {ea}", step + 1);
    }
}

#[test]
fn sgd_hdm_first_three_steps() {
    // f = ½(θ_1² + 4θ_2²), g = (θ_1, 4θ_2), θ_0 = (1, 0.5), α_0 = 0.125, β′ = 0.5.
    // t=1: d_0 = 0 ⇒ cos = 0, α_1 = 0.125; g = (1, 2); θ_1 = (1 − 0.125, 0.5 − 0.25) = (0.875, 0.25).
    // t=2: g = (0.875, 1); g·d_1 = 0.875 + 2 = 2.875; ‖g‖ = √1.765625 = 1.328768, ‖d_1‖ = √5;
    //      cos = 2.875/(1.328768·2.236068) = 0.967617; α_2 = 0.125 (1 + 0.5·0.967617) = 0.185476;
    //      θ_2 = (0.875 − 0.185476·0.875, 0.25 − 0.185476) = (0.712708, 0.064524).
    // t=3: g = (0.712708, 0.258096); g·d_2 = 0.623620 + 0.258096 = 0.881716;
    //      ‖g‖ = 0.758000, ‖d_2‖ = 1.328768; cos = 0.875405; α_3 = 0.185476·1.437703 = 0.266659;
    //      θ_3 = (0.712708 − 0.266659·0.712708, 0.064524 − 0.266659·0.258096) = (0.522658, −0.004300).
    let t = trajectory(
        Config::sgd(0.125).with_hdm(0.5),
        &[1.0, 0.5],
        &[1.0, 4.0],
        3,
    );
    let expected = [
        ([0.875, 0.25], 0.125),
        ([0.7127084304, 0.0645239205], 0.1854760795),
        ([0.5226580081, -0.0042997264], 0.2666594280),
    ];
    for (step, ((theta, alpha), (et, ea))) in t.iter().zip(expected).enumerate() {
        assert!(
            close(theta[0], et[0]),
            "θ_{}[0]: {} vs {}",
            step + 1,
            theta[0],
            et[0]
        );
        // θ_3[1] is a difference of nearly equal numbers: compare it absolutely.
        assert!(
            (f64::from(theta[1]) - et[1]).abs() <= 1e-6,
            "θ_{}[1]: {} vs {}",
            step + 1,
            theta[1],
            et[1]
        );
        assert!(close(*alpha, ea), "α_{}: {alpha} vs {ea}", step + 1);
    }
}
