//! The JavaScript-facing API, compiled to wasm32 (with simd128, as shipped) and run in headless
//! Chromium by wasm-bindgen-test: `cargo xtask test` runs it.
#![cfg(target_arch = "wasm32")]

use hd_wasm::model::INPUTS;
use hd_wasm::web::{
    optimizer_ids, optimizer_knob, optimizer_label, peer_ids, Digits, Playground, Session,
};
use wasm_bindgen::{JsError, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// An "HDMN" file of `n` synthetic digits: digit c lights pixels 70c..70c+70 (plus a faint,
/// deterministic background), so a linear model separates them perfectly.
fn digits_file(n: usize) -> Vec<u8> {
    let mut bytes = b"HDMN\x01\x1c\x1c\x00".to_vec();
    bytes.extend_from_slice(&(n as u32).to_le_bytes());
    bytes.extend((0..n).map(|i| (i % 10) as u8));
    for i in 0..n {
        let c = i % 10;
        bytes.extend((0..INPUTS).map(|j| {
            if j / 70 == c {
                230
            } else {
                ((i * 7 + j * 13) % 20) as u8
            }
        }));
    }
    bytes
}

fn message(e: JsError) -> String {
    js_sys::Error::from(JsValue::from(e)).message().into()
}

/// The settings object the page passes, as JavaScript builds it.
fn settings(batch: u32, epochs: u32, inputs: &str) -> JsValue {
    let o = js_sys::Object::new();
    let set = |k: &str, v: JsValue| {
        js_sys::Reflect::set(&o, &JsValue::from_str(k), &v).unwrap();
    };
    set("batch", batch.into());
    set("epochs", epochs.into());
    set("seed", 7.into());
    // The paper's β, β_Adam, β′, μ and L2 (DESIGN §2).
    set("beta", 1e-3.into());
    set("beta_adam", 1e-7.into());
    set("beta_mult", 0.02.into());
    set("mu", 0.9.into());
    set("l2", 1e-4.into());
    set("inputs", inputs.into());
    o.into()
}

fn session(digits: &Digits, batch: u32, epochs: u32) -> Session {
    Session::new(digits, &settings(batch, epochs, "unit")).unwrap()
}

#[wasm_bindgen_test]
fn lists_every_optimizer_with_its_label() {
    let ids = optimizer_ids();
    assert_eq!(ids.len(), 9);
    assert_eq!(ids[0], "sgd");
    assert_eq!(optimizer_label("sgdn-hdm").unwrap(), "SGDN-HDM");
    assert!(message(optimizer_label("rmsprop").unwrap_err()).contains("unknown optimizer"));
}

#[wasm_bindgen_test]
fn lists_the_peers_with_their_labels_and_knobs() {
    assert_eq!(peer_ids(), ["prodigy", "sf-sgd", "sf-adamw"]);
    assert_eq!(optimizer_label("sf-adamw").unwrap(), "Schedule-Free AdamW");
    assert_eq!(optimizer_knob("prodigy").unwrap(), "d0");
    assert_eq!(optimizer_knob("sf-sgd").unwrap(), "lr");
    assert_eq!(optimizer_knob("adam-hd").unwrap(), "α0");
}

#[wasm_bindgen_test]
fn peers_train_beside_the_paper_optimizers_and_refuse_bad_knobs() {
    let digits = Digits::new(&digits_file(200)).unwrap();
    let mut s = session(&digits, 20, 3);
    let prodigy = s.add_run("prodigy", 1e-6).unwrap();
    let sf = s.add_run("sf-sgd", 1.0).unwrap();
    let adamw = s.add_run("sf-adamw", 0.0025).unwrap();
    // The page's message for a knob hd-core refuses names the peer and the setting.
    assert_eq!(
        message(s.add_run("prodigy", 0.0).unwrap_err()),
        "Prodigy: invalid hyperparameter d0: must be finite and > 0"
    );
    assert!(message(s.add_run("sf-sgd", -1.0).unwrap_err()).starts_with("Schedule-Free SGD"));
    assert!(message(s.add_run_scaled("prodigy", 1e-6, 10.0).unwrap_err()).contains("unknown"));
    assert_eq!(s.run_count(), 3);
    s.step(1000).unwrap();
    for run in [prodigy, sf, adamw] {
        assert_eq!(s.run_status(run).unwrap(), "finished");
        let loss = s.epoch_train_loss(run).unwrap().to_vec();
        assert!(
            loss[3] < loss[0] / 2.0,
            "{}: {loss:?}",
            s.run_id(run).unwrap()
        );
        assert_eq!(s.beta(run).unwrap(), None);
    }
    assert_eq!(s.run_label(sf).unwrap(), "Schedule-Free SGD");
    assert_eq!(s.alpha0(prodigy).unwrap(), 1e-6);
    // Prodigy's step size d·lr grew from d0; Schedule-Free's lr never moves.
    assert!(s.alpha(prodigy).unwrap() > 1e-6);
    let lr = s.iteration_alpha(sf, 0).unwrap().to_vec();
    assert!(lr.len() == 24 && lr.iter().all(|&a| a == 1.0), "{lr:?}");
}

#[wasm_bindgen_test]
fn trains_side_by_side_and_reports_fresh_arrays() {
    let digits = Digits::new(&digits_file(200)).unwrap();
    assert_eq!(digits.length(), 200);
    let mut s = session(&digits, 20, 4);
    // 160 of the 200 digits train (the 80 / 20 split), in minibatches of 20.
    assert_eq!(s.iterations_per_epoch(), 8.0);
    let sgd = s.add_run("sgd", 0.05).unwrap();
    let hd = s.add_run("sgd-hd", 0.05).unwrap();
    assert_eq!(s.run_count(), 2);
    // Before training: entry 0 of the epoch metrics is the zero model, loss ln 10.
    let before = s.epoch_test_loss(sgd).unwrap().to_vec();
    assert_eq!(before.len(), 1);
    assert!((before[0] - 10f32.ln()).abs() < 1e-5);

    let mut steps = 0;
    while !s.finished() {
        steps += s.step(3).unwrap();
    }
    assert_eq!(steps, 4 * 8); // 160 / 20 minibatches per epoch, 4 epochs
    assert_eq!(s.iteration(), 32.0);
    assert_eq!(s.samples_done(), 640.0);
    for run in [sgd, hd] {
        assert_eq!(s.run_status(run).unwrap(), "finished");
        let loss = s.iteration_loss(run, 0).unwrap().to_vec();
        assert_eq!(loss.len(), 32);
        assert!(loss[31] < loss[0] / 2.0, "{loss:?}");
        let accuracy = s.epoch_test_accuracy(run).unwrap().to_vec();
        assert_eq!(accuracy.len(), 5);
        assert_eq!(accuracy[4], 1.0);
    }
    // `from` skips what the page already has.
    assert_eq!(s.iteration_loss(sgd, 30).unwrap().length(), 2);
    assert_eq!(s.iteration_loss(sgd, 99).unwrap().length(), 0);
    // SGD keeps α0; SGD-HD's α moved (successive gradients agree on this easy problem).
    assert!(s
        .iteration_alpha(sgd, 0)
        .unwrap()
        .to_vec()
        .iter()
        .all(|&a| a == 0.05));
    assert!(s.alpha(hd).unwrap() > 0.05);
    assert_eq!(s.beta(sgd).unwrap(), None);
    assert_eq!(s.beta(hd).unwrap(), Some(1e-3));

    let weights = s.weights(sgd).unwrap();
    assert_eq!(weights.length() as usize, 10 * INPUTS);
    // A digit-3 image is classified as 3 with high probability.
    let pixels: Vec<f32> = (0..INPUTS)
        .map(|j| if j / 70 == 3 { 0.9 } else { 0.0 })
        .collect();
    let p = s.predict(sgd, &pixels).unwrap().to_vec();
    assert_eq!(p.len(), 10);
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert!(p[3] > 0.5, "{p:?}");
}

#[wasm_bindgen_test]
fn wasm_training_is_deterministic() {
    let digits = Digits::new(&digits_file(100)).unwrap();
    let curve = || {
        let mut s = session(&digits, 8, 2);
        s.add_run("adam-hdm", 0.01).unwrap();
        s.step(1000).unwrap();
        s.iteration_loss(0, 0).unwrap().to_vec()
    };
    assert_eq!(curve(), curve());
}

#[wasm_bindgen_test]
fn bad_input_becomes_a_js_error_not_a_trap() {
    assert!(message(Digits::new(b"nonsense").err().unwrap()).contains("header"));
    let digits = Digits::new(&digits_file(50)).unwrap();
    let err = Session::new(&digits, &settings(0, 1, "unit"))
        .err()
        .unwrap();
    assert!(message(err).contains("batch size"));
    let err = Session::new(&digits, &settings(8, 1, "raw")).err().unwrap();
    assert!(message(err).contains("settings.inputs"));
    let err = Session::new(&digits, &JsValue::NULL).err().unwrap();
    assert!(message(err).contains("settings.batch"));
    let mut s = session(&digits, 8, 1);
    assert!(message(s.add_run("sgd-hd", f32::NAN).unwrap_err()).contains("alpha0"));
    assert!(message(s.add_run("nope", 0.1).unwrap_err()).contains("unknown optimizer"));
    assert!(s.run_id(0).is_err());
    s.add_run("sgd", 0.1).unwrap();
    assert!(message(s.predict(0, &[0.5; 3]).unwrap_err()).contains("784"));
    s.step(1).unwrap();
    assert!(message(s.add_run("adam", 0.1).unwrap_err()).contains("before training"));
}

#[wasm_bindgen_test]
fn benchmark_workload_runs() {
    let digits = Digits::new(&digits_file(700)).unwrap();
    let mut s = Session::benchmark(&digits).unwrap();
    assert_eq!(s.run_label(0).unwrap(), "SGD-HD");
    assert_eq!(s.step(3).unwrap(), 3);
    assert_eq!(s.samples_done(), 384.0);
}

#[wasm_bindgen_test]
fn standardised_sessions_train_and_report_the_hypergradient_signal() {
    let digits = Digits::new(&digits_file(200)).unwrap();
    let mut s = Session::new(&digits, &settings(20, 2, "standardised")).unwrap();
    let sgd = s.add_run("sgd", 0.01).unwrap();
    let hd = s.add_run("sgd-hd", 0.01).unwrap();
    s.step(1000).unwrap();
    assert!(s.epoch_test_accuracy(hd).unwrap().to_vec()[2] > 0.9);
    let signal = s.iteration_signal(hd, 0).unwrap().to_vec();
    assert_eq!(signal.len(), 16);
    assert_eq!(signal[0], 0.0); // d_0 = 0
    assert!(signal[1..].iter().all(|v| v.is_finite()));
    assert!(s
        .iteration_signal(sgd, 0)
        .unwrap()
        .to_vec()
        .iter()
        .all(|v| v.is_nan()));
}

#[wasm_bindgen_test]
fn the_playground_steps_sgd_and_sgd_hd_through_hd_core() {
    let mut p = Playground::new("quadratic", 0.01, 1e-4).unwrap();
    assert_eq!(p.view().to_vec(), [-5.0, 5.0, -2.5, 2.5]);
    assert_eq!(p.path(1).unwrap().to_vec(), [-4.5, 1.2]);
    for _ in 0..3 {
        p.step().unwrap();
    }
    assert_eq!(p.steps(1).unwrap(), 3.0);
    assert_eq!(p.path(0).unwrap().length(), 8);
    // α_t = α_{t−1} + β g_t·g_{t−1}, the numbers the page prints.
    let want = p.previous_alpha(1).unwrap() + 1e-4 * p.dot(1).unwrap();
    assert!((p.alpha(1).unwrap() - want).abs() < 1e-7);
    assert_eq!(p.alpha(0).unwrap(), 0.01);
    assert_eq!(p.gradients(1).unwrap().length(), 4);
    assert_eq!(p.grid(3, 2).length(), 6);
    assert!(message(Playground::new("flat", 0.01, 0.0).err().unwrap()).contains("objective"));
    assert!(p.path(2).is_err());
}
