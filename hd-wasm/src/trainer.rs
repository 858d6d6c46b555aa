//! Several optimizers training the same logistic regression side by side, on exactly the same
//! minibatch order, so that any difference between their curves is the optimizer's alone.
//!
//! One [`Trainer`] owns the data split, the minibatch order and every run (parameters, optimizer
//! state and buffers, metrics). Each call to [`Trainer::step`] takes the next minibatch and
//! gives it to every run that is still training; the update itself is hd-core's (the paper's
//! optimizers' [`Optimizer::step`](hd_core::Optimizer::step), the peers' `Prodigy::step` and
//! `ScheduleFree::step`), the only place the optimizer maths lives.

use std::borrow::Cow;
use std::rc::Rc;

use hd_core::{paper, Variant};

use crate::data::{Dataset, Inputs, SplitMix64};
use crate::model;
use crate::shape::PARAMS;
use crate::Error;

mod method;
mod settings;

use method::Stepper;
pub use method::{parse_method, Method, Peer};
pub use settings::{
    beta_of, config_of, paper_preset, parse_optimizer, Hyperparameters, Schedule, Settings,
};

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Still training.
    Training,
    /// Trained for every epoch.
    Finished,
    /// Stopped at this iteration (1-based): the minibatch loss exceeded [`DIVERGED_LOSS`] or
    /// the loss, the gradient or α stopped being finite. Later metrics are NaN.
    Diverged(u64),
}

/// A minibatch loss above this marks a run as diverged. The untrained (zero) model scores
/// ln 10 ≈ 2.3; a mean loss of 1000 means the right class trails by about 1000 logits on
/// average, from which no run in the demo's few epochs recovers. Cross-entropy grows only
/// linearly in the weights, so waiting for an overflow to infinity would leave a run that
/// blew up at the top of the chart for hundreds of iterations.
pub const DIVERGED_LOSS: f32 = 1e3;

/// One optimizer's run: its parameters, hd-core state, buffers and metrics.
#[derive(Debug)]
pub struct Run {
    method: Method,
    knob: f32,
    beta: Option<f32>,
    stepper: Stepper,
    /// For Schedule-Free, y (where gradients are taken); see [`Run::model`].
    params: Vec<f32>,
    buffers: Vec<f32>,
    status: Status,
    iteration_loss: Vec<f32>,
    iteration_alpha: Vec<f32>,
    iteration_signal: Vec<f32>,
    epoch_train_loss: Vec<f32>,
    epoch_test_loss: Vec<f32>,
    epoch_test_accuracy: Vec<f32>,
    /// Σ (batch loss × batch size) and Σ batch size over the current epoch.
    epoch_loss_sum: f64,
    epoch_seen: usize,
}

impl Run {
    /// The optimizer: one of the paper's nine, or a peer.
    pub fn method(&self) -> Method {
        self.method
    }
    /// The value it started from ([`Method::knob`] names it): α0 for the paper's optimizers,
    /// d_0 for Prodigy, the learning rate for Schedule-Free; the α0 sweep sets it.
    pub fn knob(&self) -> f32 {
        self.knob
    }
    /// Its β (β′ for HDM), `None` for a base optimizer or a peer.
    pub fn beta(&self) -> Option<f32> {
        self.beta
    }
    /// The current step size: α_t, Prodigy's d_t · lr, Schedule-Free's (constant) learning
    /// rate.
    pub fn alpha(&self) -> f32 {
        self.stepper.alpha()
    }
    /// Where it stands.
    pub fn status(&self) -> Status {
        self.status
    }
    /// The parameters the optimizer steps: 10 × 784 weights, then 10 biases. For
    /// Schedule-Free these are y, where its gradients are taken, not its model; see
    /// [`model`](Run::model).
    pub fn params(&self) -> &[f32] {
        &self.params
    }
    /// The model to evaluate, in [`params`](Run::params)' layout: the parameters themselves,
    /// or Schedule-Free's average x (a copy).
    ///
    /// # Errors
    /// Only on an internal inconsistency ([`Error::Optimizer`]).
    pub fn model(&self) -> Result<Cow<'_, [f32]>, Error> {
        self.stepper.model(&self.params, &self.buffers)
    }
    /// The signal the hypergradient rule acted on at each iteration: g_t·d_{t−1} for HD (α moves
    /// by β times it), cos(g_t, d_{t−1}) for HDM (α is multiplied by 1 + β′ times it); NaN for
    /// a base optimizer, a peer and after divergence.
    pub fn iteration_signal(&self) -> &[f32] {
        &self.iteration_signal
    }
    /// Minibatch loss at each iteration (NaN after divergence), at the parameters the
    /// gradient is taken at (Schedule-Free's y, as its package's training loop reports it).
    pub fn iteration_loss(&self) -> &[f32] {
        &self.iteration_loss
    }
    /// The step size ([`alpha`](Run::alpha)) after each iteration (NaN after divergence).
    pub fn iteration_alpha(&self) -> &[f32] {
        &self.iteration_alpha
    }
    /// Mean minibatch loss of each epoch (as [`iteration_loss`](Run::iteration_loss) takes
    /// them); entry 0 is the loss of the initial model on the whole training set.
    pub fn epoch_train_loss(&self) -> &[f32] {
        &self.epoch_train_loss
    }
    /// Test loss after each epoch, of the [`model`](Run::model); entry 0 is before training.
    pub fn epoch_test_loss(&self) -> &[f32] {
        &self.epoch_test_loss
    }
    /// Test accuracy (fraction) after each epoch, of the [`model`](Run::model); entry 0 is
    /// before training.
    pub fn epoch_test_accuracy(&self) -> &[f32] {
        &self.epoch_test_accuracy
    }

    fn push(&mut self, loss: f32, alpha: f32, signal: f32) {
        self.iteration_loss.push(loss);
        self.iteration_alpha.push(alpha);
        self.iteration_signal.push(signal);
    }

    fn diverge(&mut self, iteration: u64) {
        self.status = Status::Diverged(iteration);
    }
}

/// Side-by-side training of several optimizers on one data split and minibatch order.
#[derive(Debug)]
pub struct Trainer {
    data: Rc<Dataset>,
    train: Vec<u32>,
    test: Vec<u32>,
    schedule: Schedule,
    hyper: Hyperparameters,
    inputs: Inputs,
    order_rng: SplitMix64,
    /// The training indices in this epoch's order.
    order: Vec<u32>,
    /// Position of the next minibatch in `order`.
    cursor: usize,
    epoch: u32,
    iteration: u64,
    grad: Vec<f32>,
    runs: Vec<Run>,
}

impl Trainer {
    /// A trainer with no runs yet.
    ///
    /// # Errors
    /// [`Error::Data`] when the dataset has fewer than 5 images; [`Error::Settings`] when the
    /// batch size is 0 or larger than the training set, there are no epochs, a
    /// hyperparameter is not finite or the input standardisation is not usable.
    pub fn new(data: Rc<Dataset>, settings: Settings) -> Result<Self, Error> {
        let Settings {
            schedule,
            hyper,
            inputs,
        } = settings;
        let inputs = inputs.validate()?;
        if data.len() < 5 {
            return Err(Error::Data(format!(
                "{} images cannot be split into training and test sets",
                data.len()
            )));
        }
        let (train, test) = data.split(schedule.seed);
        if schedule.batch == 0 || schedule.batch > train.len() {
            return Err(Error::Settings(format!(
                "batch size must be between 1 and {} (the training set), got {}",
                train.len(),
                schedule.batch
            )));
        }
        if schedule.epochs == 0 {
            return Err(Error::Settings("epochs must be at least 1".into()));
        }
        for (name, v) in [
            ("beta", hyper.beta),
            ("beta_adam", hyper.beta_adam),
            ("beta_mult", hyper.beta_mult),
            ("mu", hyper.mu),
            ("l2", hyper.l2),
        ] {
            if !v.is_finite() {
                // No float in the message: formatting one would pull about 15 KB of
                // float-printing code into the wasm module.
                return Err(Error::Settings(format!("{name} must be a finite number")));
            }
        }
        let order = train.clone();
        Ok(Self {
            data,
            train,
            test,
            schedule,
            hyper,
            inputs,
            order_rng: SplitMix64::new(schedule.seed),
            order,
            cursor: 0,
            epoch: 0,
            iteration: 0,
            grad: vec![0.0; PARAMS],
            runs: Vec::new(),
        })
    }

    /// Adds a run of `variant` from α0, starting from the zero model, and returns its index.
    ///
    /// # Errors
    /// [`Error::Settings`] once training has started (every run must see the same minibatches
    /// from the start), or [`Error::Optimizer`] when hd-core rejects a hyperparameter.
    pub fn add_run(&mut self, variant: Variant, alpha0: f32) -> Result<usize, Error> {
        self.add_run_scaled(variant, alpha0, 1.0)
    }

    /// As [`add_run`](Trainer::add_run), with the run's β (β′ for HDM) multiplied by
    /// `beta_factor`: the β sweep. A base optimizer has no β to scale.
    ///
    /// # Errors
    /// As [`add_run`](Trainer::add_run); hd-core rejects a negative or non-finite β.
    pub fn add_run_scaled(
        &mut self,
        variant: Variant,
        alpha0: f32,
        beta_factor: f32,
    ) -> Result<usize, Error> {
        self.check_not_started()?;
        let beta = beta_of(variant, &self.hyper).map(|b| b * beta_factor);
        let stepper = Stepper::paper(variant, alpha0, beta, &self.hyper)?;
        self.push_run(Method::Paper(variant), alpha0, beta, stepper)
    }

    /// Adds a run of the learning-rate-free `peer` with its knob ([`Peer::knob`]: Prodigy's
    /// d_0, Schedule-Free's learning rate) at `knob`, starting from the zero model, and returns
    /// its index. It trains on the same minibatches as every other run.
    ///
    /// # Errors
    /// [`Error::Settings`] once training has started; [`Error::Peer`] when hd-core rejects the
    /// knob (Prodigy's d_0 ≤ 0, a negative learning rate, a non-finite value).
    pub fn add_peer_run(&mut self, peer: Peer, knob: f32) -> Result<usize, Error> {
        self.check_not_started()?;
        let stepper = Stepper::peer(peer, knob, &self.hyper)?;
        self.push_run(Method::Peer(peer), knob, None, stepper)
    }

    fn check_not_started(&self) -> Result<(), Error> {
        if self.iteration > 0 {
            return Err(Error::Settings(
                "runs must be added before training starts".into(),
            ));
        }
        Ok(())
    }

    fn push_run(
        &mut self,
        method: Method,
        knob: f32,
        beta: Option<f32>,
        stepper: Stepper,
    ) -> Result<usize, Error> {
        let params = vec![0.0; PARAMS];
        let buffers = stepper.buffers(&params)?;
        // Every model starts at zero, Schedule-Free's x = y = z too.
        let (train_loss, _) = model::evaluate(&params, &self.data, self.inputs, &self.train)?;
        let (test_loss, test_accuracy) =
            model::evaluate(&params, &self.data, self.inputs, &self.test)?;
        self.runs.push(Run {
            method,
            knob,
            beta,
            stepper,
            params,
            buffers,
            status: Status::Training,
            iteration_loss: Vec::new(),
            iteration_alpha: Vec::new(),
            iteration_signal: Vec::new(),
            epoch_train_loss: vec![train_loss],
            epoch_test_loss: vec![test_loss],
            epoch_test_accuracy: vec![test_accuracy],
            epoch_loss_sum: 0.0,
            epoch_seen: 0,
        });
        Ok(self.runs.len() - 1)
    }

    /// Trains every unfinished run on up to `max_iterations` more minibatches (fewer when the
    /// last epoch ends) and returns how many were done. At each epoch's end every run is
    /// evaluated on the test set.
    ///
    /// # Errors
    /// Only on an internal inconsistency ([`Error::Data`]); a diverging run is not an error, its
    /// status becomes [`Status::Diverged`].
    pub fn step(&mut self, max_iterations: u32) -> Result<u32, Error> {
        let mut done = 0;
        while done < max_iterations && !self.finished() {
            if self.cursor == 0 {
                self.order_rng.shuffle(&mut self.order);
            }
            let end = (self.cursor + self.schedule.batch).min(self.order.len());
            let batch = self.order.get(self.cursor..end).unwrap_or_default();
            self.iteration += 1;
            for run in &mut self.runs {
                let example = Minibatch {
                    data: &self.data,
                    inputs: self.inputs,
                    indices: batch,
                };
                train_one(run, &example, &mut self.grad, self.iteration)?;
            }
            self.cursor = end;
            done += 1;
            if self.cursor == self.order.len() {
                self.end_epoch()?;
            }
        }
        Ok(done)
    }

    fn end_epoch(&mut self) -> Result<(), Error> {
        self.cursor = 0;
        self.epoch += 1;
        let last = self.epoch == self.schedule.epochs;
        for run in &mut self.runs {
            if run.status == Status::Training {
                // Held out, so at the model (Schedule-Free's x, where its package evaluates);
                // the training loss stays the minibatches' at y, where it trains.
                let (test_loss, test_accuracy) =
                    model::evaluate(&run.model()?, &self.data, self.inputs, &self.test)?;
                let train_loss = (run.epoch_loss_sum / run.epoch_seen.max(1) as f64) as f32;
                run.epoch_train_loss.push(train_loss);
                run.epoch_test_loss.push(test_loss);
                run.epoch_test_accuracy.push(test_accuracy);
                if !test_loss.is_finite() {
                    run.diverge(self.iteration);
                } else if last {
                    run.status = Status::Finished;
                }
            } else {
                run.epoch_train_loss.push(f32::NAN);
                run.epoch_test_loss.push(f32::NAN);
                run.epoch_test_accuracy.push(f32::NAN);
            }
            run.epoch_loss_sum = 0.0;
            run.epoch_seen = 0;
        }
        Ok(())
    }

    /// True when every run has finished or diverged (or the last epoch is done).
    pub fn finished(&self) -> bool {
        self.epoch >= self.schedule.epochs
            || (!self.runs.is_empty() && self.runs.iter().all(|r| r.status != Status::Training))
    }

    /// Completed epochs.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Minibatches taken so far.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// Training images processed so far (per run): whole epochs plus this epoch's cursor.
    pub fn samples_done(&self) -> u64 {
        u64::from(self.epoch) * self.train.len() as u64 + self.cursor as u64
    }

    /// Minibatches in one epoch.
    pub fn iterations_per_epoch(&self) -> u64 {
        self.train.len().div_ceil(self.schedule.batch) as u64
    }

    /// Images in the training set.
    pub fn train_len(&self) -> usize {
        self.train.len()
    }

    /// Images in the test set.
    pub fn test_len(&self) -> usize {
        self.test.len()
    }

    /// The schedule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// How grey levels become model inputs (for images drawn on the page, too).
    pub fn inputs(&self) -> Inputs {
        self.inputs
    }

    /// Every run, in the order they were added.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// One run.
    ///
    /// # Errors
    /// [`Error::Settings`] when there is no run `index`.
    pub fn run(&self, index: usize) -> Result<&Run, Error> {
        self.runs
            .get(index)
            .ok_or_else(|| Error::Settings(format!("there is no run {index}")))
    }
}

/// The throughput benchmark's workload, identical natively and in the browser: one SGD-HD run
/// with the paper's settings (α0 = 0.001, β = 0.001, L2 1e-4), batch 128, seed 1, and enough
/// epochs never to finish while being timed. Time [`Trainer::step`] on it; each iteration is
/// 128 samples (fewer on an epoch's last minibatch, see [`Trainer::samples_done`]).
///
/// # Errors
/// As [`Trainer::new`] for a dataset too small for batch 128.
pub fn throughput_workload(data: Rc<Dataset>) -> Result<Trainer, Error> {
    let schedule = Schedule {
        batch: paper::BATCH_SIZE as usize,
        epochs: 1_000_000,
        seed: 1,
    };
    let settings = Settings {
        schedule,
        hyper: Hyperparameters::PAPER,
        inputs: Inputs::UNIT,
    };
    let mut trainer = Trainer::new(data, settings)?;
    trainer.add_run(Variant::SgdHd, paper::ALPHA0)?;
    Ok(trainer)
}

/// The images of one minibatch and how to read them.
struct Minibatch<'a> {
    data: &'a Dataset,
    inputs: Inputs,
    indices: &'a [u32],
}

/// One minibatch for one run: gradient by the model, update by hd-core ([`Stepper::step`]).
fn train_one(
    run: &mut Run,
    batch: &Minibatch<'_>,
    grad: &mut [f32],
    iteration: u64,
) -> Result<(), Error> {
    if run.status != Status::Training {
        run.push(f32::NAN, f32::NAN, f32::NAN);
        return Ok(());
    }
    let loss =
        model::loss_and_gradient(&run.params, batch.data, batch.inputs, batch.indices, grad)?;
    // hd-core refuses a non-finite gradient (Error::NonFinite) and changes nothing; that, a
    // loss above DIVERGED_LOSS (or NaN) and a non-finite step size are what "diverged" means
    // here.
    match run.stepper.step(&mut run.params, grad, &mut run.buffers) {
        Ok(signal) if loss <= DIVERGED_LOSS && run.alpha().is_finite() => {
            run.push(loss, run.alpha(), signal);
            let n = batch.indices.len();
            run.epoch_loss_sum += f64::from(loss) * n as f64;
            run.epoch_seen += n;
        }
        Ok(_) | Err(hd_core::Error::NonFinite) => {
            run.push(f32::NAN, f32::NAN, f32::NAN);
            run.diverge(iteration);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
mod peer_tests;
#[cfg(test)]
mod tests;
