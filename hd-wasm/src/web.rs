//! The JavaScript API (wasm-bindgen). Two handles: [`Digits`], the parsed dataset, loaded once;
//! and [`Session`], one side-by-side training of several optimizers over those digits.
//!
//! Every array handed to JavaScript is a fresh copy (`Float32Array::from`), so it stays valid
//! whatever happens to wasm memory afterwards. Errors reach JavaScript as `Error` objects whose
//! message is the [`crate::Error`]'s text.

use std::rc::Rc;

use js_sys::Float32Array;
use wasm_bindgen::prelude::*;

use crate::data::Dataset;
use crate::model;
use crate::playground::{Objective, Playground as Plane, Walker};
use crate::trainer::{
    self, parse_method, parse_optimizer, Method, Peer, Run, Settings, Status, Trainer,
};
use hd_core::Variant;

/// The ids of every optimizer, in display order (`sgd`, `sgd-hd`, …, `adam-hdm`).
#[wasm_bindgen(js_name = optimizerIds)]
pub fn optimizer_ids() -> Vec<String> {
    Variant::ALL.iter().map(|k| k.id().to_owned()).collect()
}

/// The ids of the learning-rate-free peers the α0 sweep can add (`prodigy`, `sf-sgd`,
/// `sf-adamw`).
#[wasm_bindgen(js_name = peerIds)]
pub fn peer_ids() -> Vec<String> {
    Peer::ALL.iter().map(|p| p.id().to_owned()).collect()
}

/// The display name of an optimizer or peer id (`sgdn-hd` → `SGDN-HD`, `sf-sgd` →
/// `Schedule-Free SGD`).
#[wasm_bindgen(js_name = optimizerLabel)]
pub fn optimizer_label(id: &str) -> Result<String, JsError> {
    Ok(parse_method(id)?.label().to_owned())
}

/// The name of the value a run of optimizer or peer `id` starts from: `α0`, Prodigy's `d0`,
/// Schedule-Free's `lr`.
#[wasm_bindgen(js_name = optimizerKnob)]
pub fn optimizer_knob(id: &str) -> Result<String, JsError> {
    Ok(parse_method(id)?.knob().to_owned())
}

/// The paper's settings for the page's "Paper settings" preset: an object with the page's
/// settings fields `alpha0`, `beta`, `beta_adam`, `beta_mult`, `mu`, `l2`, `batch` (numbers, see
/// [`trainer::paper_preset`]) and `inputs` (`"standardised"`).
#[wasm_bindgen(js_name = paperSettings)]
pub fn paper_settings() -> Result<js_sys::Object, JsError> {
    let object = js_sys::Object::new();
    let set = |key: &str, value: JsValue| {
        js_sys::Reflect::set(&object, &JsValue::from_str(key), &value)
            .map_err(|_| JsError::new("could not build the paper's settings"))
    };
    for (key, value) in trainer::paper_preset() {
        set(key, JsValue::from_f64(value))?;
    }
    set("inputs", JsValue::from_str("standardised"))?;
    Ok(object)
}

/// MNIST digits parsed from the demo's "HDMN" binary (see [`crate::data`]).
#[wasm_bindgen]
pub struct Digits(Rc<Dataset>);

#[wasm_bindgen]
impl Digits {
    /// Parses the binary.
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8]) -> Result<Digits, JsError> {
        Ok(Digits(Rc::new(Dataset::from_bytes(bytes)?)))
    }

    /// Number of digits.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> u32 {
        self.0.len() as u32
    }
}

/// Several optimizers training logistic regression side by side on one minibatch order.
#[wasm_bindgen]
pub struct Session(Trainer);

#[wasm_bindgen]
impl Session {
    /// A session over `digits` (split 4:1 into train and test by `seed`), with no runs yet.
    /// `settings` is one object with the fields of [`Settings::from_fields`]: `{ batch, epochs,
    /// seed, beta, beta_adam, beta_mult, mu, l2, inputs }` (other fields are ignored).
    #[wasm_bindgen(constructor)]
    pub fn new(digits: &Digits, settings: &JsValue) -> Result<Session, JsError> {
        let field = |key: &str| js_sys::Reflect::get(settings, &JsValue::from_str(key)).ok();
        let settings = Settings::from_fields(
            |key| field(key).and_then(|v| v.as_f64()),
            |key| field(key).and_then(|v| v.as_string()),
        )?;
        Ok(Session(Trainer::new(Rc::clone(&digits.0), settings)?))
    }

    /// The throughput benchmark's workload (see [`trainer::throughput_workload`]), the same
    /// one the native benchmark times.
    pub fn benchmark(digits: &Digits) -> Result<Session, JsError> {
        Ok(Session(trainer::throughput_workload(Rc::clone(&digits.0))?))
    }

    /// Adds a run of optimizer `id` (e.g. `adam-hd`) from α0, or of a peer (`prodigy`,
    /// `sf-sgd`, `sf-adamw`) with its knob at `value` (Prodigy's d0, Schedule-Free's learning
    /// rate), and returns its index. A knob hd-core refuses (d0 ≤ 0, …) is an error naming the
    /// peer and the setting.
    #[wasm_bindgen(js_name = addRun)]
    pub fn add_run(&mut self, id: &str, value: f32) -> Result<u32, JsError> {
        let index = match parse_method(id)? {
            Method::Paper(variant) => self.0.add_run(variant, value)?,
            Method::Peer(peer) => self.0.add_peer_run(peer, value)?,
        };
        Ok(index as u32)
    }

    /// Adds a run of optimizer `id` from α0 with its β (β′ for HDM) multiplied by
    /// `beta_factor`, for the β sweep; returns its index.
    #[wasm_bindgen(js_name = addRunScaled)]
    pub fn add_run_scaled(
        &mut self,
        id: &str,
        alpha0: f32,
        beta_factor: f32,
    ) -> Result<u32, JsError> {
        Ok(self
            .0
            .add_run_scaled(parse_optimizer(id)?, alpha0, beta_factor)? as u32)
    }

    /// Trains every unfinished run on up to `max_iterations` more minibatches; returns how many.
    pub fn step(&mut self, max_iterations: u32) -> Result<u32, JsError> {
        Ok(self.0.step(max_iterations)?)
    }

    /// True when every run has finished or diverged.
    #[wasm_bindgen(getter)]
    pub fn finished(&self) -> bool {
        self.0.finished()
    }

    /// Completed epochs.
    #[wasm_bindgen(getter)]
    pub fn epoch(&self) -> u32 {
        self.0.epoch()
    }

    /// Minibatches taken so far.
    #[wasm_bindgen(getter)]
    pub fn iteration(&self) -> f64 {
        self.0.iteration() as f64
    }

    /// Training images processed so far (per run).
    #[wasm_bindgen(getter, js_name = samplesDone)]
    pub fn samples_done(&self) -> f64 {
        self.0.samples_done() as f64
    }

    /// Minibatches per epoch.
    #[wasm_bindgen(getter, js_name = iterationsPerEpoch)]
    pub fn iterations_per_epoch(&self) -> f64 {
        self.0.iterations_per_epoch() as f64
    }

    /// Number of runs.
    #[wasm_bindgen(getter, js_name = runCount)]
    pub fn run_count(&self) -> u32 {
        self.0.runs().len() as u32
    }

    fn run(&self, index: u32) -> Result<&Run, JsError> {
        Ok(self.0.run(index as usize)?)
    }

    /// The run's optimizer id.
    #[wasm_bindgen(js_name = runId)]
    pub fn run_id(&self, index: u32) -> Result<String, JsError> {
        Ok(self.run(index)?.method().id().to_owned())
    }

    /// The run's optimizer display name.
    #[wasm_bindgen(js_name = runLabel)]
    pub fn run_label(&self, index: u32) -> Result<String, JsError> {
        Ok(self.run(index)?.method().label().to_owned())
    }

    /// `"training"`, `"finished"` or `"diverged"`.
    #[wasm_bindgen(js_name = runStatus)]
    pub fn run_status(&self, index: u32) -> Result<String, JsError> {
        Ok(match self.run(index)?.status() {
            Status::Training => "training",
            Status::Finished => "finished",
            Status::Diverged(_) => "diverged",
        }
        .to_owned())
    }

    /// The iteration (1-based) at which the run diverged, if it did.
    #[wasm_bindgen(js_name = divergedAt)]
    pub fn diverged_at(&self, index: u32) -> Result<Option<f64>, JsError> {
        Ok(match self.run(index)?.status() {
            Status::Diverged(i) => Some(i as f64),
            Status::Training | Status::Finished => None,
        })
    }

    /// The run's α0, or a peer's knob (see [`Run::knob`]).
    #[wasm_bindgen(js_name = alpha0)]
    pub fn alpha0(&self, index: u32) -> Result<f32, JsError> {
        Ok(self.run(index)?.knob())
    }

    /// The run's β (β′ for HDM); `undefined` for a base optimizer or a peer.
    pub fn beta(&self, index: u32) -> Result<Option<f32>, JsError> {
        Ok(self.run(index)?.beta())
    }

    /// The run's current α, or a peer's step size (see [`Run::alpha`]).
    pub fn alpha(&self, index: u32) -> Result<f32, JsError> {
        Ok(self.run(index)?.alpha())
    }

    /// Minibatch losses from iteration `from` (0-based) on; NaN after divergence.
    #[wasm_bindgen(js_name = iterationLoss)]
    pub fn iteration_loss(&self, index: u32, from: u32) -> Result<Float32Array, JsError> {
        let all = self.run(index)?.iteration_loss();
        Ok(Float32Array::from(
            all.get(from as usize..).unwrap_or_default(),
        ))
    }

    /// α (a peer's step size) after each iteration from `from` on; NaN after divergence.
    #[wasm_bindgen(js_name = iterationAlpha)]
    pub fn iteration_alpha(&self, index: u32, from: u32) -> Result<Float32Array, JsError> {
        let all = self.run(index)?.iteration_alpha();
        Ok(Float32Array::from(
            all.get(from as usize..).unwrap_or_default(),
        ))
    }

    /// The hypergradient signal from iteration `from` on: g_t·d_{t−1} for HD, cos(g_t, d_{t−1})
    /// for HDM, NaN for a base optimizer (see [`Run::iteration_signal`]).
    #[wasm_bindgen(js_name = iterationSignal)]
    pub fn iteration_signal(&self, index: u32, from: u32) -> Result<Float32Array, JsError> {
        let all = self.run(index)?.iteration_signal();
        Ok(Float32Array::from(
            all.get(from as usize..).unwrap_or_default(),
        ))
    }

    /// Training loss per epoch (entry 0: before training).
    #[wasm_bindgen(js_name = epochTrainLoss)]
    pub fn epoch_train_loss(&self, index: u32) -> Result<Float32Array, JsError> {
        Ok(Float32Array::from(self.run(index)?.epoch_train_loss()))
    }

    /// Test loss per epoch (entry 0: before training).
    #[wasm_bindgen(js_name = epochTestLoss)]
    pub fn epoch_test_loss(&self, index: u32) -> Result<Float32Array, JsError> {
        Ok(Float32Array::from(self.run(index)?.epoch_test_loss()))
    }

    /// Test accuracy (fraction) per epoch (entry 0: before training).
    #[wasm_bindgen(js_name = epochTestAccuracy)]
    pub fn epoch_test_accuracy(&self, index: u32) -> Result<Float32Array, JsError> {
        Ok(Float32Array::from(self.run(index)?.epoch_test_accuracy()))
    }

    /// The run's weights: 10 rows of 784 (row k scores digit k), of its model (Schedule-Free's
    /// x).
    pub fn weights(&self, index: u32) -> Result<Float32Array, JsError> {
        let params = self.run(index)?.model()?;
        Ok(Float32Array::from(
            params.get(..model::WEIGHTS).unwrap_or_default(),
        ))
    }

    /// The run's class probabilities for one 28×28 image of grey levels in [0, 1], prepared
    /// as the session's training images were (standardised or not).
    pub fn predict(&self, index: u32, pixels: &[f32]) -> Result<Float32Array, JsError> {
        let image = self.0.inputs().image(pixels)?;
        let p = model::predict(&self.run(index)?.model()?, &image)?;
        Ok(Float32Array::from(&p[..]))
    }
}

/// The 2-D playground: plain SGD (walker 0) and SGD-HD (walker 1) from one α0 on a small
/// objective, stepped by hd-core (see [`crate::playground`]).
#[wasm_bindgen]
pub struct Playground(Plane);

#[wasm_bindgen]
impl Playground {
    /// Both walkers at the start of objective `id` (`quadratic` or `rosenbrock`).
    #[wasm_bindgen(constructor)]
    pub fn new(id: &str, alpha0: f32, beta: f32) -> Result<Playground, JsError> {
        Ok(Playground(Plane::new(Objective::parse(id)?, alpha0, beta)?))
    }

    /// One step of both walkers.
    pub fn step(&mut self) -> Result<(), JsError> {
        Ok(self.0.step()?)
    }

    /// The region drawn: [x_min, x_max, y_min, y_max].
    pub fn view(&self) -> Float32Array {
        Float32Array::from(&self.0.objective().view()[..])
    }

    /// The objective's minimum: [x, y].
    pub fn minimum(&self) -> Float32Array {
        Float32Array::from(&self.0.objective().minimum()[..])
    }

    /// The objective on a `columns` × `rows` grid over the view, top row first.
    pub fn grid(&self, columns: u32, rows: u32) -> Float32Array {
        Float32Array::from(&self.0.grid(columns as usize, rows as usize)[..])
    }

    fn walker(&self, index: u32) -> Result<&Walker, JsError> {
        Ok(self.0.walker(index as usize)?)
    }

    /// Walker `index`'s path (x0, y0, x1, y1, …), the start first.
    pub fn path(&self, index: u32) -> Result<Float32Array, JsError> {
        Ok(Float32Array::from(self.walker(index)?.path()))
    }

    /// Steps taken by walker `index`.
    pub fn steps(&self, index: u32) -> Result<f64, JsError> {
        Ok(self.walker(index)?.steps() as f64)
    }

    /// α_t of walker `index`.
    pub fn alpha(&self, index: u32) -> Result<f32, JsError> {
        Ok(self.walker(index)?.alpha())
    }

    /// α_{t−1} of walker `index`, before its last update.
    #[wasm_bindgen(js_name = previousAlpha)]
    pub fn previous_alpha(&self, index: u32) -> Result<f32, JsError> {
        Ok(self.walker(index)?.previous_alpha())
    }

    /// g_t·g_{t−1} of walker `index`'s last step, as hd-core summed it.
    pub fn dot(&self, index: u32) -> Result<f32, JsError> {
        Ok(self.walker(index)?.dot())
    }

    /// [g_t, g_{t−1}] of walker `index`: four numbers.
    pub fn gradients(&self, index: u32) -> Result<Float32Array, JsError> {
        let w = self.walker(index)?;
        let [g, q] = [w.gradient(), w.previous_gradient()];
        Ok(Float32Array::from(&[g[0], g[1], q[0], q[1]][..]))
    }

    /// f at walker `index`'s current point.
    pub fn value(&self, index: u32) -> Result<f32, JsError> {
        Ok(self.0.objective().value(self.walker(index)?.point()))
    }

    /// True once walker `index` left the plane.
    pub fn diverged(&self, index: u32) -> Result<bool, JsError> {
        Ok(self.walker(index)?.diverged())
    }
}
