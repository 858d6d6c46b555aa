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
use crate::trainer::{self, parse_optimizer, Hyperparameters, Run, Schedule, Status, Trainer};
use hd_core::Variant;

/// The ids of every optimizer, in display order (`sgd`, `sgd-hd`, …, `adam-hdm`).
#[wasm_bindgen(js_name = optimizerIds)]
pub fn optimizer_ids() -> Vec<String> {
    Variant::ALL.iter().map(|k| k.id().to_owned()).collect()
}

/// The display name of an optimizer id (`sgdn-hd` → `SGDN-HD`).
#[wasm_bindgen(js_name = optimizerLabel)]
pub fn optimizer_label(id: &str) -> Result<String, JsError> {
    Ok(parse_optimizer(id)?.label().to_owned())
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
    #[allow(clippy::too_many_arguments)] // one flat call is the simplest wasm-bindgen boundary
    #[wasm_bindgen(constructor)]
    pub fn new(
        digits: &Digits,
        batch: u32,
        epochs: u32,
        seed: u32,
        beta: f32,
        beta_adam: f32,
        beta_mult: f32,
        mu: f32,
        l2: f32,
    ) -> Result<Session, JsError> {
        let schedule = Schedule {
            batch: batch as usize,
            epochs,
            seed: u64::from(seed),
        };
        let hyper = Hyperparameters {
            beta,
            beta_adam,
            beta_mult,
            mu,
            l2,
        };
        Ok(Session(Trainer::new(
            Rc::clone(&digits.0),
            schedule,
            hyper,
        )?))
    }

    /// The throughput benchmark's workload (see [`trainer::throughput_workload`]), the same
    /// one the native benchmark times.
    pub fn benchmark(digits: &Digits) -> Result<Session, JsError> {
        Ok(Session(trainer::throughput_workload(Rc::clone(&digits.0))?))
    }

    /// Adds a run of optimizer `id` (e.g. `adam-hd`) from α0 and returns its index.
    #[wasm_bindgen(js_name = addRun)]
    pub fn add_run(&mut self, id: &str, alpha0: f32) -> Result<u32, JsError> {
        Ok(self.0.add_run(parse_optimizer(id)?, alpha0)? as u32)
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

    /// Images in the training set.
    #[wasm_bindgen(getter, js_name = trainSize)]
    pub fn train_size(&self) -> u32 {
        self.0.train_len() as u32
    }

    /// Images in the test set.
    #[wasm_bindgen(getter, js_name = testSize)]
    pub fn test_size(&self) -> u32 {
        self.0.test_len() as u32
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
        Ok(self.run(index)?.variant().id().to_owned())
    }

    /// The run's optimizer display name.
    #[wasm_bindgen(js_name = runLabel)]
    pub fn run_label(&self, index: u32) -> Result<String, JsError> {
        Ok(self.run(index)?.variant().label().to_owned())
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

    /// The run's α0.
    #[wasm_bindgen(js_name = alpha0)]
    pub fn alpha0(&self, index: u32) -> Result<f32, JsError> {
        Ok(self.run(index)?.alpha0())
    }

    /// The run's β (β′ for HDM); `undefined` for a base optimizer.
    pub fn beta(&self, index: u32) -> Result<Option<f32>, JsError> {
        Ok(self.run(index)?.beta())
    }

    /// The run's current α.
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

    /// α after each iteration from `from` on; NaN after divergence.
    #[wasm_bindgen(js_name = iterationAlpha)]
    pub fn iteration_alpha(&self, index: u32, from: u32) -> Result<Float32Array, JsError> {
        let all = self.run(index)?.iteration_alpha();
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

    /// The run's weights: 10 rows of 784 (row k scores digit k).
    pub fn weights(&self, index: u32) -> Result<Float32Array, JsError> {
        let params = self.run(index)?.params();
        Ok(Float32Array::from(
            params.get(..model::WEIGHTS).unwrap_or_default(),
        ))
    }

    /// The run's class probabilities for one 28×28 image of grey levels in [0, 1].
    pub fn predict(&self, index: u32, pixels: &[f32]) -> Result<Float32Array, JsError> {
        let p = model::predict(self.run(index)?.params(), pixels)?;
        Ok(Float32Array::from(&p[..]))
    }
}
