//! Several optimizers training the same logistic regression side by side, on exactly the same
//! minibatch order, so that any difference between their curves is the optimizer's alone.
//!
//! One [`Trainer`] owns the data split, the minibatch order and every run (parameters, optimizer
//! state and buffers, metrics). Each call to [`Trainer::step`] takes the next minibatch and
//! gives it to every run that is still training; the update itself is hd-core's
//! [`Optimizer::step`], the only place the optimizer maths lives.

use std::rc::Rc;

use hd_core::{paper, Accumulator, Config, Family, HyperRule, Optimizer, State, Terms, Variant};

use crate::data::{Dataset, Inputs, SplitMix64};
use crate::model;
use crate::shape::PARAMS;
use crate::Error;

/// The optimizer with id `id` (`sgd`, `sgd-hd`, …, `adam-hdm`: hd-core's [`Variant`] list).
///
/// # Errors
/// [`Error::Settings`] naming the unknown id.
pub fn parse_optimizer(id: &str) -> Result<Variant, Error> {
    id.parse().map_err(|_| {
        let ids: Vec<&str> = Variant::ALL.iter().map(|v| v.id()).collect();
        Error::Settings(format!(
            "unknown optimizer {id:?}; expected one of {}",
            ids.join(", ")
        ))
    })
}

/// Which β `variant` uses with these hyperparameters: β for SGD-HD and SGDN-HD, β_Adam for
/// Adam-HD, β′ for the HDM variants, none for a base optimizer.
pub fn beta_of(variant: Variant, h: &Hyperparameters) -> Option<f32> {
    match (variant.rule(), variant.family()) {
        (None, _) => None,
        (Some(HyperRule::Multiplicative), _) => Some(h.beta_mult),
        (Some(HyperRule::Additive), Family::Sgd | Family::Sgdn) => Some(h.beta),
        (Some(HyperRule::Additive), Family::Adam) => Some(h.beta_adam),
    }
}

/// hd-core's configuration of `variant` from α0 with these hyperparameters and coupled L2.
/// Adam uses the usual (β1, β2, ε) = (0.9, 0.999, 1e-8) without the paper's optional 1/√t
/// decay, so the α on screen is the step size Adam really takes.
pub fn config_of(variant: Variant, alpha0: f32, h: &Hyperparameters) -> Config {
    config_with(variant, alpha0, beta_of(variant, h), h)
}

/// As [`config_of`] with this β (β′ for HDM; `None` for a base optimizer).
fn config_with(variant: Variant, alpha0: f32, beta: Option<f32>, h: &Hyperparameters) -> Config {
    variant
        .config(alpha0, beta.unwrap_or(0.0), h.mu)
        .with_weight_decay(h.l2)
}

/// Hyperparameters shared by every run of a trainer (α0 is per run, for the α0 sweep).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyperparameters {
    /// β of additive HD for SGD-HD and SGDN-HD (paper: 0.001).
    pub beta: f32,
    /// β of additive HD for Adam-HD (paper: 1e-7).
    pub beta_adam: f32,
    /// β′ of multiplicative HDM (paper's α0 study: 0.02).
    pub beta_mult: f32,
    /// Nesterov momentum μ of the SGDN family (paper: 0.9).
    pub mu: f32,
    /// Coupled L2 weight decay λ (paper: 1e-4; 0 turns it off).
    pub l2: f32,
}

impl Hyperparameters {
    /// The paper's logistic-regression settings, from hd-core's [`paper`] module.
    pub const PAPER: Hyperparameters = Hyperparameters {
        beta: paper::beta(Variant::SgdHd, paper::ModelKind::LogReg),
        beta_adam: paper::beta(Variant::AdamHd, paper::ModelKind::LogReg),
        beta_mult: paper::beta(Variant::SgdHdm, paper::ModelKind::LogReg),
        mu: paper::MU,
        l2: paper::weight_decay(paper::ModelKind::LogReg),
    };
}

/// The page's "Paper settings" preset, as (settings field, value) pairs in the page's units:
/// the paper's logistic-regression settings ([`Hyperparameters::PAPER`], α0 and batch from
/// hd-core's [`paper`] module), each f32 widened exactly to f64 (1e-7 arrives as
/// 1.0000000116860974e-7). The page writes each as the shortest decimal that reads back as the
/// same f32 (`f32Decimal` in www/src/params.js), so it shows and parses the number written in the
/// paper. Not formatted and parsed here: Rust's float formatting and parsing would add a third
/// to the wasm module's size. The page's `inputs` choice is `"standardised"`, the paper's,
/// besides these.
pub fn paper_preset() -> [(&'static str, f64); 7] {
    let h = Hyperparameters::PAPER;
    [
        ("alpha0", f64::from(paper::ALPHA0)),
        ("beta", f64::from(h.beta)),
        ("beta_adam", f64::from(h.beta_adam)),
        ("beta_mult", f64::from(h.beta_mult)),
        ("mu", f64::from(h.mu)),
        ("l2", f64::from(h.l2)),
        ("batch", f64::from(paper::BATCH_SIZE)),
    ]
}

/// Everything a [`Trainer`] needs besides the data: one value, so that a front end passes one
/// settings object rather than a row of numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Minibatch size, epochs and seed.
    pub schedule: Schedule,
    /// β, β_Adam, β′, μ and L2, shared by every run.
    pub hyper: Hyperparameters,
    /// How grey levels become model inputs.
    pub inputs: Inputs,
}

impl Settings {
    /// The settings from named fields, as the page's settings object holds them: `batch`,
    /// `epochs`, `seed` (whole numbers), `beta`, `beta_adam`, `beta_mult`, `mu`, `l2` (numbers)
    /// and `inputs` (`"standardised"` or `"unit"`). `number` and `text` read one field each.
    ///
    /// # Errors
    /// [`Error::Settings`] naming the first field that is missing, of the wrong type or out of
    /// range for its integer type.
    pub fn from_fields(
        number: impl Fn(&str) -> Option<f64>,
        text: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, Error> {
        let real = |key: &str| {
            number(key)
                .map(|v| v as f32)
                .ok_or_else(|| Error::Settings(format!("settings.{key} must be a number")))
        };
        let whole = |key: &str, max: f64| {
            number(key)
                .filter(|v| v.fract() == 0.0 && (0.0..=max).contains(v))
                .ok_or_else(|| {
                    Error::Settings(format!("settings.{key} must be a whole number from 0"))
                })
        };
        let schedule = Schedule {
            batch: whole("batch", f64::from(u32::MAX))? as usize,
            epochs: whole("epochs", f64::from(u32::MAX))? as u32,
            seed: whole("seed", f64::from(u32::MAX))? as u64,
        };
        let hyper = Hyperparameters {
            beta: real("beta")?,
            beta_adam: real("beta_adam")?,
            beta_mult: real("beta_mult")?,
            mu: real("mu")?,
            l2: real("l2")?,
        };
        let inputs = match text("inputs").as_deref() {
            Some("standardised") => Inputs::STANDARDISED,
            Some("unit") => Inputs::UNIT,
            _ => {
                return Err(Error::Settings(
                    "settings.inputs must be \"standardised\" or \"unit\"".into(),
                ))
            }
        };
        Ok(Settings {
            schedule,
            hyper,
            inputs,
        })
    }
}

/// How the minibatches are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Images per minibatch (the last one of an epoch may be smaller).
    pub batch: usize,
    /// Passes over the training set.
    pub epochs: u32,
    /// Seeds the train/test split and the minibatch order.
    pub seed: u64,
}

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
    variant: Variant,
    alpha0: f32,
    beta: Option<f32>,
    optimizer: Optimizer,
    state: State,
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
    /// The optimizer.
    pub fn variant(&self) -> Variant {
        self.variant
    }
    /// Its initial learning rate α0.
    pub fn alpha0(&self) -> f32 {
        self.alpha0
    }
    /// Its β (β′ for HDM), `None` for a base optimizer.
    pub fn beta(&self) -> Option<f32> {
        self.beta
    }
    /// The current learning rate α_t.
    pub fn alpha(&self) -> f32 {
        self.state.alpha
    }
    /// Where it stands.
    pub fn status(&self) -> Status {
        self.status
    }
    /// The model's parameters: 10 × 784 weights, then 10 biases.
    pub fn params(&self) -> &[f32] {
        &self.params
    }
    /// The signal the hypergradient rule acted on at each iteration: g_t·d_{t−1} for HD (α moves
    /// by β times it), cos(g_t, d_{t−1}) for HDM (α is multiplied by 1 + β′ times it); NaN for
    /// a base optimizer and after divergence.
    pub fn iteration_signal(&self) -> &[f32] {
        &self.iteration_signal
    }
    /// Minibatch loss at each iteration (NaN after divergence).
    pub fn iteration_loss(&self) -> &[f32] {
        &self.iteration_loss
    }
    /// α after each iteration (NaN after divergence).
    pub fn iteration_alpha(&self) -> &[f32] {
        &self.iteration_alpha
    }
    /// Mean minibatch loss of each epoch; entry 0 is the loss of the initial model on the
    /// whole training set.
    pub fn epoch_train_loss(&self) -> &[f32] {
        &self.epoch_train_loss
    }
    /// Test loss after each epoch; entry 0 is before training.
    pub fn epoch_test_loss(&self) -> &[f32] {
        &self.epoch_test_loss
    }
    /// Test accuracy (fraction) after each epoch; entry 0 is before training.
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
        if self.iteration > 0 {
            return Err(Error::Settings(
                "runs must be added before training starts".into(),
            ));
        }
        let beta = beta_of(variant, &self.hyper).map(|b| b * beta_factor);
        let optimizer = Optimizer::new(config_with(variant, alpha0, beta, &self.hyper))?;
        let len = optimizer
            .buffer_len(PARAMS)
            .ok_or_else(|| Error::Settings("optimizer buffers overflow".into()))?;
        let mut buffers = vec![0.0; len];
        optimizer.init_buffers(&mut buffers)?;
        let params = vec![0.0; PARAMS];
        let (train_loss, _) = model::evaluate(&params, &self.data, self.inputs, &self.train)?;
        let (test_loss, test_accuracy) =
            model::evaluate(&params, &self.data, self.inputs, &self.test)?;
        self.runs.push(Run {
            variant,
            alpha0,
            beta,
            state: optimizer.init_state(),
            optimizer,
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
                let (test_loss, test_accuracy) =
                    model::evaluate(&run.params, &self.data, self.inputs, &self.test)?;
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

/// What the page plots as the hypergradient signal: g·d for HD, the cosine for HDM (computed
/// as hd-core's HDM rule does, ‖g‖‖d‖ floored at the smallest normal f32), NaN without HD.
fn signal(rule: Option<HyperRule>, terms: &Terms<f32>) -> f32 {
    match (rule, terms.norms) {
        (Some(HyperRule::Additive), _) => terms.dot,
        (Some(HyperRule::Multiplicative), Some((grad_sq, dir_sq))) => {
            terms.dot / (grad_sq.sqrt() * dir_sq.sqrt()).max(f32::MIN_POSITIVE)
        }
        (Some(HyperRule::Multiplicative), None) | (None, _) => f32::NAN,
    }
}

/// One minibatch for one run: gradient by the model, update by hd-core. The update is hd-core's
/// [`Optimizer::step`] taken phase by phase (hypergradient, α update, apply), as that function
/// does, so that the terms α moved by can be recorded.
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
    // loss above DIVERGED_LOSS (or NaN) and a non-finite α are what "diverged" means here.
    let rule = run.variant.rule();
    let mut acc = Accumulator::new();
    let stepped = run
        .optimizer
        .hypergradient(&run.state, &run.params, grad, &run.buffers, &mut acc)
        .and_then(|()| {
            let mut next = run.state;
            run.optimizer.advance(&mut next, &acc)?;
            run.optimizer
                .apply(&next, &mut run.params, grad, &mut run.buffers)?;
            run.state = next;
            Ok(())
        });
    match stepped {
        Ok(()) if loss <= DIVERGED_LOSS && run.state.alpha.is_finite() => {
            let terms = acc.terms(rule == Some(HyperRule::Multiplicative));
            run.push(loss, run.state.alpha, signal(rule, &terms));
            let n = batch.indices.len();
            run.epoch_loss_sum += f64::from(loss) * n as f64;
            run.epoch_seen += n;
        }
        Ok(()) | Err(hd_core::Error::NonFinite) => {
            run.push(f32::NAN, f32::NAN, f32::NAN);
            run.diverge(iteration);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::INPUTS;
    use hd_core::{Base, Sgd};

    /// Synthetic "digits": class c lights pixels 20c..20c+20 (plus a little seeded noise),
    /// so a linear model can separate them perfectly and training must drive accuracy to 1.
    fn separable(n: usize) -> Rc<Dataset> {
        let mut rng = SplitMix64::new(99);
        let mut pixels = vec![0; n * INPUTS];
        let mut labels = Vec::with_capacity(n);
        for (i, img) in pixels.chunks_exact_mut(INPUTS).enumerate() {
            let c = i % 10;
            labels.push(c as u8);
            for (j, p) in img.iter_mut().enumerate() {
                let noise = (rng.next_u64() % 26) as u8;
                *p = if j / 20 == c { 229 + noise } else { noise };
            }
        }
        Rc::new(Dataset::new(pixels, labels).unwrap())
    }

    fn schedule(batch: usize, epochs: u32) -> Schedule {
        Schedule {
            batch,
            epochs,
            seed: 5,
        }
    }

    /// The paper's hyperparameters with grey levels in [0, 1].
    fn settings(schedule: Schedule) -> Settings {
        Settings {
            schedule,
            hyper: Hyperparameters::PAPER,
            inputs: Inputs::UNIT,
        }
    }

    /// A trainer on `n` separable digits that ran `runs` (optimizer, α0) to the end; run i is
    /// `runs[i]`.
    fn trained(n: usize, schedule: Schedule, runs: &[(Variant, f32)]) -> Trainer {
        let mut t = Trainer::new(separable(n), settings(schedule)).unwrap();
        for &(variant, alpha0) in runs {
            t.add_run(variant, alpha0).unwrap();
        }
        t.step(u32::MAX).unwrap();
        assert!(t.finished());
        t
    }

    #[test]
    fn ids_round_trip_and_unknown_ids_are_rejected() {
        for variant in Variant::ALL {
            assert_eq!(parse_optimizer(variant.id()).unwrap(), variant);
        }
        let err = parse_optimizer("sgd-hdx").unwrap_err();
        assert!(err
            .to_string()
            .contains("unknown optimizer \"sgd-hdx\"; expected one of sgd,"));
    }

    #[test]
    fn each_hd_variant_gets_its_own_beta() {
        // Distinct values, so a mix-up between β, β_Adam and β′ cannot pass.
        let h = Hyperparameters {
            beta: 0.1,
            beta_adam: 0.2,
            beta_mult: 0.3,
            mu: 0.5,
            l2: 0.25,
        };
        let want = [
            None,
            Some(0.1),
            Some(0.3),
            None,
            Some(0.1),
            Some(0.3),
            None,
            Some(0.2),
            Some(0.3),
        ];
        for (variant, beta) in Variant::ALL.into_iter().zip(want) {
            assert_eq!(beta_of(variant, &h), beta, "{variant}");
            let config = config_of(variant, 0.01, &h);
            assert_eq!(config.alpha0, 0.01);
            assert_eq!(config.weight_decay, 0.25);
            assert_eq!(config.hyper.map(|hy| hy.beta), beta, "{variant}");
            if variant.base() == Variant::Sgdn {
                assert_eq!(config.base, Base::Sgd(Sgd::nesterov(0.5)), "{variant}");
            }
        }
    }

    #[test]
    fn every_optimizer_learns_a_separable_problem() {
        let mut t = Trainer::new(separable(200), settings(schedule(16, 10))).unwrap();
        for variant in Variant::ALL {
            let alpha0 = if matches!(variant, Variant::Adam | Variant::AdamHd | Variant::AdamHdm) {
                0.01
            } else {
                0.1
            };
            t.add_run(variant, alpha0).unwrap();
        }
        while !t.finished() {
            t.step(7).unwrap();
        }
        assert_eq!(t.epoch(), 10);
        assert_eq!(t.iteration(), 10 * 10); // 160 training images / 16
        for run in t.runs() {
            assert_eq!(run.status(), Status::Finished, "{}", run.variant());
            let train = run.epoch_train_loss();
            assert_eq!(train.len(), 11);
            // Entry 0 is the zero model: ln 10 on any data.
            assert!((train[0] - 10f32.ln()).abs() < 1e-5);
            assert!(train[10] < 0.5 * train[0], "{}: {train:?}", run.variant());
            assert_eq!(
                *run.epoch_test_accuracy().last().unwrap(),
                1.0,
                "{}",
                run.variant()
            );
            assert_eq!(run.iteration_loss().len(), 100);
        }
    }

    #[test]
    fn hd_moves_alpha_and_base_optimizers_keep_it() {
        let runs = [
            (Variant::Sgd, 0.01),
            (Variant::SgdHd, 0.01),
            (Variant::SgdHdm, 0.01),
        ];
        let t = trained(200, schedule(20, 2), &runs);
        let (sgd, sgd_hd, hdm) = (0, 1, 2);
        assert!(t
            .run(sgd)
            .unwrap()
            .iteration_alpha()
            .iter()
            .all(|&a| a == 0.01));
        // With a small α0 on a problem this easy successive gradients agree, g·d > 0, so HD
        // raises α (paper §4: α grows early in training).
        assert!(t.run(sgd_hd).unwrap().alpha() > 0.01);
        assert!(t.run(hdm).unwrap().alpha() > 0.01);
    }

    #[test]
    fn runs_share_the_minibatch_order_and_are_deterministic() {
        // Two runs of the same optimizer added to one trainer must produce identical curves,
        // and a second trainer with the same seed must reproduce them bit for bit.
        let curves = |seed| {
            let mut t = Trainer::new(
                separable(100),
                settings(Schedule {
                    batch: 8,
                    epochs: 2,
                    seed,
                }),
            )
            .unwrap();
            t.add_run(Variant::AdamHd, 0.01).unwrap();
            t.add_run(Variant::AdamHd, 0.01).unwrap();
            t.step(u32::MAX).unwrap();
            let a = t.runs()[0].iteration_loss().to_vec();
            assert_eq!(a, t.runs()[1].iteration_loss());
            a
        };
        assert_eq!(curves(1), curves(1));
        assert_ne!(curves(1), curves(2));
    }

    #[test]
    fn huge_alpha_is_reported_as_diverged_not_as_an_error() {
        // α0 = 1e30: the first step makes logits around 1e30, so the second minibatch's loss
        // is far above DIVERGED_LOSS.
        let t = trained(
            100,
            schedule(10, 3),
            &[(Variant::SgdHd, 1e30), (Variant::Sgd, 0.1)],
        );
        let (bad, good) = (0, 1);
        let bad = t.run(bad).unwrap();
        assert!(matches!(bad.status(), Status::Diverged(i) if i >= 2));
        assert!(bad.iteration_loss().last().unwrap().is_nan());
        assert_eq!(
            bad.iteration_loss().len(),
            t.run(good).unwrap().iteration_loss().len()
        );
        assert_eq!(t.run(good).unwrap().status(), Status::Finished);
    }

    #[test]
    fn rejects_bad_settings() {
        assert!(Trainer::new(separable(100), settings(schedule(0, 1))).is_err());
        assert!(Trainer::new(separable(100), settings(schedule(81, 1))).is_err());
        assert!(Trainer::new(separable(100), settings(schedule(80, 0))).is_err());
        let nan = Settings {
            hyper: Hyperparameters {
                mu: f32::NAN,
                ..Hyperparameters::PAPER
            },
            ..settings(schedule(8, 1))
        };
        assert!(Trainer::new(separable(100), nan).is_err());
        let flat = Settings {
            inputs: Inputs {
                mean: 0.0,
                std: 0.0,
            },
            ..settings(schedule(8, 1))
        };
        assert!(Trainer::new(separable(100), flat).is_err());
        let mut t = Trainer::new(separable(100), settings(schedule(8, 1))).unwrap();
        assert!(matches!(
            t.add_run(Variant::Sgd, f32::NAN),
            Err(Error::Optimizer(_))
        ));
        t.add_run(Variant::Sgd, 0.1).unwrap();
        t.step(1).unwrap();
        assert!(matches!(
            t.add_run(Variant::Sgd, 0.1),
            Err(Error::Settings(_))
        ));
        assert!(t.run(5).is_err());
    }

    #[test]
    fn the_recorded_signal_is_what_moved_alpha() {
        // HD: α_t = α_{t−1} + β g_t·d_{t−1}, so (α_t − α_{t−1}) / β must equal the recorded g·d
        // (up to f32 rounding of the addition). HDM: α_t = α_{t−1}(1 + β′ cos), with |cos| ≤ 1.
        // The first step has d_0 = 0: signal 0 and α unchanged. A base optimizer has no signal.
        let runs = [
            (Variant::Sgd, 0.01),
            (Variant::SgdHd, 0.01),
            (Variant::AdamHdm, 0.01),
        ];
        let t = trained(200, schedule(20, 1), &runs);
        let (sgd, hd, hdm) = (0, 1, 2);
        assert!(t
            .run(sgd)
            .unwrap()
            .iteration_signal()
            .iter()
            .all(|s| s.is_nan()));
        let beta = Hyperparameters::PAPER.beta;
        let run = t.run(hd).unwrap();
        let (alpha, signal) = (run.iteration_alpha(), run.iteration_signal());
        assert_eq!((signal[0], alpha[0]), (0.0, 0.01));
        for i in 1..alpha.len() {
            let moved = (alpha[i] - alpha[i - 1]) / beta;
            let tolerance = 1e-6 * alpha[i].abs() / beta + 1e-6 * signal[i].abs();
            assert!(
                (moved - signal[i]).abs() <= tolerance,
                "{i}: {moved} vs {}",
                signal[i]
            );
        }
        assert!(signal[1..].iter().any(|&s| s != 0.0));
        let run = t.run(hdm).unwrap();
        let (alpha, cos) = (run.iteration_alpha(), run.iteration_signal());
        let beta_mult = Hyperparameters::PAPER.beta_mult;
        for i in 1..alpha.len() {
            assert!(cos[i].abs() <= 1.0 + 1e-6, "{}", cos[i]);
            let want = alpha[i - 1] * (1.0 + beta_mult * cos[i]);
            assert!((alpha[i] - want).abs() <= 1e-6 * want.abs(), "{i}");
        }
    }

    #[test]
    fn standardised_inputs_change_training_but_not_the_zero_model() {
        let run = |inputs| {
            let s = Settings {
                inputs,
                ..settings(schedule(20, 1))
            };
            let mut t = Trainer::new(separable(100), s).unwrap();
            t.add_run(Variant::Sgd, 0.01).unwrap();
            t.step(u32::MAX).unwrap();
            t.runs()[0].iteration_loss().to_vec()
        };
        let (unit, standard) = (run(Inputs::UNIT), run(Inputs::STANDARDISED));
        // The zero model scores ln 10 whatever its inputs; the next steps see other inputs.
        assert_eq!(unit[0], standard[0]);
        assert_ne!(unit[1], standard[1]);
    }

    #[test]
    fn settings_are_read_by_name_and_bad_fields_are_named() {
        let fields = |overrides: &[(&str, f64)], inputs: &str| {
            let mut all = vec![
                ("batch", 32.0),
                ("epochs", 3.0),
                ("seed", 9.0),
                ("beta", 0.1),
                ("beta_adam", 0.2),
                ("beta_mult", 0.3),
                ("mu", 0.4),
                ("l2", 0.5),
            ];
            all.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
            all.extend_from_slice(overrides);
            let inputs = inputs.to_owned();
            Settings::from_fields(
                move |key| all.iter().find(|(k, _)| *k == key).map(|&(_, v)| v),
                move |key| (key == "inputs").then(|| inputs.clone()),
            )
        };
        let s = fields(&[], "standardised").unwrap();
        assert_eq!(
            s.schedule,
            Schedule {
                batch: 32,
                epochs: 3,
                seed: 9
            }
        );
        // Distinct values: three adjacent βs cannot be swapped unnoticed.
        assert_eq!(
            (s.hyper.beta, s.hyper.beta_adam, s.hyper.beta_mult),
            (0.1, 0.2, 0.3)
        );
        assert_eq!((s.hyper.mu, s.hyper.l2), (0.4, 0.5));
        assert_eq!(s.inputs, Inputs::STANDARDISED);
        assert_eq!(fields(&[], "unit").unwrap().inputs, Inputs::UNIT);
        let message = |r: Result<Settings, Error>| r.unwrap_err().to_string();
        assert!(message(fields(&[], "raw")).contains("settings.inputs"));
        assert!(message(fields(&[("batch", 2.5)], "unit")).contains("settings.batch"));
        assert!(message(fields(&[("seed", -1.0)], "unit")).contains("settings.seed"));
        let missing = Settings::from_fields(|_| None, |_| Some("unit".into()));
        assert!(message(missing).contains("settings.batch"));
    }

    #[test]
    fn the_beta_sweep_scales_each_runs_own_beta() {
        let mut t = Trainer::new(separable(100), settings(schedule(10, 1))).unwrap();
        let hd = t.add_run_scaled(Variant::SgdHd, 0.01, 10.0).unwrap();
        let adam = t.add_run_scaled(Variant::AdamHd, 0.01, 0.1).unwrap();
        let base = t.add_run_scaled(Variant::Sgd, 0.01, 10.0).unwrap();
        // The paper's β = 1e-3 and β_Adam = 1e-7, scaled; a base optimizer has none.
        assert_eq!(t.run(hd).unwrap().beta(), Some(1e-3 * 10.0));
        assert_eq!(t.run(adam).unwrap().beta(), Some(1e-7 * 0.1));
        assert_eq!(t.run(base).unwrap().beta(), None);
        let unscaled = t.add_run(Variant::SgdHd, 0.01).unwrap();
        assert_eq!(t.run(unscaled).unwrap().beta(), Some(1e-3));
        assert!(matches!(
            t.add_run_scaled(Variant::SgdHd, 0.01, -1.0),
            Err(Error::Optimizer(_))
        ));
    }

    /// The page's preset, typed from DESIGN §2 (the paper's §4, logistic regression): α0 =
    /// 0.001, β = 0.001 for SGD-HD and SGDN-HD, 1e-7 for Adam-HD, HDM's β′ = 0.02, μ = 0.9,
    /// L2 1e-4, batch 128, as f32 (the page writes each f32's shortest decimal, which its unit
    /// test checks is the paper's number).
    #[test]
    fn the_paper_preset_is_the_papers_logistic_regression() {
        assert_eq!(
            Hyperparameters::PAPER,
            Hyperparameters {
                beta: 1e-3,
                beta_adam: 1e-7,
                beta_mult: 0.02,
                mu: 0.9,
                l2: 1e-4
            }
        );
        assert_eq!(
            paper_preset(),
            [
                ("alpha0", f64::from(1e-3f32)),
                ("beta", f64::from(1e-3f32)),
                ("beta_adam", f64::from(1e-7f32)),
                ("beta_mult", f64::from(0.02f32)),
                ("mu", f64::from(0.9f32)),
                ("l2", f64::from(1e-4f32)),
                ("batch", 128.0),
            ]
        );
    }
}
