//! # hd-embedded: hypergradient descent trains a digit classifier on a Cortex-M4F
//!
//! Multinomial logistic regression (the paper's LogReg, 64 → 10) learns 600 real 8×8
//! handwritten digits baked into flash, with hd-core's SGD-HD and Adam-HD, in static buffers:
//! no allocator, no heap. It reports each epoch's loss, α and held-out accuracy over
//! semihosting and exits with success only if
//!
//! - every rule of hd-core (SGD, SGDN, Adam, each plain, HD, HDM and stacked HD, and the
//!   learning-rate-free peers Prodigy and Schedule-Free SGD and AdamW) lowers the loss of a
//!   minibatch in a few steps, each step measured for peak stack;
//! - SGD-HD and Adam-HD bring the training loss below [`Goal::max_loss`] in [`EPOCHS`] epochs,
//!   below the loss plain SGD and Adam reach from the same α_0, and α moves from α_0 by at
//!   least [`MIN_ALPHA_CHANGE`] of α_0;
//! - a checkpoint written after epoch [`CHECKPOINT_AFTER`] (hd-core's optimizer record plus
//!   the parameters and buffers, as a device would keep across a power cycle), restored into
//!   wiped buffers, continues bit for bit as the run that was never interrupted.
//!
//! Run it with `cargo xtask embedded` (QEMU, `mps2-an386`); `cargo xtask footprint` measures
//! its code size, memory and stack.

#![no_std]
#![no_main]

mod data;
mod model;
mod rules;
mod stack;

use core::fmt;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};
use data::{TEST, TEST_LEN, TRAIN, TRAIN_LEN};
use hd_core::{
    decode_f32s, encode_f32s, Error, Optimizer, Prodigy, ScheduleFree, State, RECORD_LEN,
};
use model::PARAMS;
use panic_semihosting as _;
use rules::{Peer, Rule, StepFn};

/// Passes over the training set per run.
const EPOCHS: usize = 20;
/// The checkpoint is taken after this many epochs, and the resumed run replays the rest.
const CHECKPOINT_AFTER: usize = 10;
/// Images per minibatch: 30 steps per epoch.
const BATCH: usize = 20;
/// The most per-parameter buffers a rule here needs (Adam's m and v; SGD-HD's d_{t−1}).
const MAX_SLOTS: usize = 2;
/// The most per-parameter buffers a peer needs (Prodigy's m, v, s and x_0), used only by the
/// per-rule check.
const PEER_SLOTS: usize = 4;
/// A checkpoint: hd-core's optimizer record, then the parameters, then the buffers.
const CHECKPOINT_LEN: usize = RECORD_LEN + 4 * PARAMS * (1 + MAX_SLOTS);
/// Steps each rule takes on one minibatch in the per-rule check.
const RULE_CHECK_STEPS: usize = 20;
/// A trained run must move α by at least this fraction of α_0.
const MIN_ALPHA_CHANGE: f32 = 0.1;

/// A training run and what it must reach.
struct Goal {
    /// The rule, by name.
    rule: &'static str,
    /// The same base rule without HD, trained the same way from the same α_0: HD must end
    /// with the lower loss (α_0 is deliberately small, the case HD is for).
    baseline: &'static str,
    /// The mean training cross-entropy after [`EPOCHS`] must be below this. For scale: the
    /// untrained model (θ = 0) scores ln 10 ≈ 2.303; the thresholds leave a margin over what
    /// the run reaches, so a change in hd-core that slows learning fails here.
    max_loss: f32,
}

const GOALS: [Goal; 2] = [
    Goal {
        rule: "sgd-hd",
        baseline: "sgd",
        max_loss: 0.30,
    },
    Goal {
        rule: "adam-hd",
        baseline: "adam",
        max_loss: 0.15,
    },
];

/// Why a check failed.
enum Failure {
    /// hd-core refused a call.
    Hd(Error),
    /// A check on the results did not hold.
    Check(&'static str),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Hd(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Hd(e) => write!(f, "hd-core: {e}"),
            Failure::Check(what) => f.write_str(what),
        }
    }
}

/// Everything one training run owns, kept in a static: the model, its gradient and the
/// optimizer's state and buffers.
struct Training {
    state: State,
    params: [f32; PARAMS],
    grads: [f32; PARAMS],
    buffers: [f32; PARAMS * MAX_SLOTS],
    /// How much of `buffers` the rule uses.
    used: usize,
}

impl Training {
    const EMPTY: Training = Training {
        state: State {
            step: 0,
            alpha: 0.0,
            beta: 0.0,
            previous_dot: 0.0,
        },
        params: [0.0; PARAMS],
        grads: [0.0; PARAMS],
        buffers: [0.0; PARAMS * MAX_SLOTS],
        used: 0,
    };

    /// A fresh start for `opt`: θ = 0 (the usual start for logistic regression), zeroed buffers.
    fn reset(&mut self, opt: &Optimizer) -> Result<(), Failure> {
        self.used = opt
            .buffer_len(PARAMS)
            .filter(|&n| n <= self.buffers.len())
            .ok_or(Failure::Check("the rule needs more buffers than MAX_SLOTS"))?;
        self.state = opt.init_state();
        self.params.fill(0.0);
        self.grads.fill(0.0);
        opt.init_buffers(self.buffers_mut())?;
        Ok(())
    }

    fn buffers_mut(&mut self) -> &mut [f32] {
        let used = self.used;
        self.buffers.get_mut(..used).unwrap_or_default()
    }

    /// One training step on `batch`: the minibatch gradient, then the rule's update.
    /// Returns the minibatch loss before the update.
    fn step(&mut self, rule: &Rule, batch: &[u16]) -> Result<f32, Failure> {
        let loss = model::gradient(&self.params, TRAIN, batch, &mut self.grads);
        let used = self.used;
        let buffers = self.buffers.get_mut(..used).unwrap_or_default();
        (rule.step)(&mut self.state, &mut self.params, &self.grads, buffers)?;
        Ok(loss)
    }

    /// One pass over the training set in the order of epoch `epoch`. Returns the deepest stack
    /// one training step used when `measure` is set.
    fn epoch(
        &mut self,
        rule: &Rule,
        epoch: usize,
        order: &mut [u16; TRAIN_LEN],
        measure: bool,
    ) -> Result<usize, Failure> {
        shuffle(order, epoch);
        let mut peak = 0;
        for batch in order.chunks(BATCH) {
            if measure {
                let (result, bytes) = stack::measure(|| self.step(rule, batch));
                result?;
                peak = peak.max(bytes);
            } else {
                self.step(rule, batch)?;
            }
        }
        Ok(peak)
    }

    /// Writes the checkpoint: `opt`'s record with the state, then θ, then the buffers.
    fn save(&self, opt: &Optimizer, out: &mut [u8]) -> Result<usize, Failure> {
        let mut at = opt.encode(&self.state, out)?;
        at += encode_f32s(&self.params, out.get_mut(at..).unwrap_or_default())?;
        let buffers = self.buffers.get(..self.used).unwrap_or_default();
        at += encode_f32s(buffers, out.get_mut(at..).unwrap_or_default())?;
        Ok(at)
    }

    /// Restores a checkpoint written by [`Training::save`] for `rule`.
    fn restore(&mut self, rule: &Rule, bytes: &[u8]) -> Result<(), Failure> {
        let (opt, state) = Optimizer::decode(bytes.get(..RECORD_LEN).unwrap_or_default())?;
        if *opt.config() != rule.config {
            return Err(Failure::Check(
                "the checkpoint holds another rule's settings",
            ));
        }
        let used = opt
            .buffer_len(PARAMS)
            .filter(|&n| n <= self.buffers.len())
            .ok_or(Failure::Check(
                "the checkpoint needs more buffers than MAX_SLOTS",
            ))?;
        let (params, buffers) = bytes
            .get(RECORD_LEN..)
            .unwrap_or_default()
            .split_at_checked(4 * PARAMS)
            .ok_or(Failure::Check("the checkpoint is truncated"))?;
        decode_f32s(params, &mut self.params)?;
        decode_f32s(buffers, self.buffers.get_mut(..used).unwrap_or_default())?;
        self.state = state;
        self.used = used;
        Ok(())
    }

    /// Fills everything with values no run produces, so a restore that missed a field shows.
    fn wipe(&mut self) {
        self.state = State {
            step: u64::MAX,
            alpha: f32::NAN,
            beta: f32::NAN,
            previous_dot: f32::NAN,
        };
        self.params.fill(f32::NAN);
        self.grads.fill(f32::NAN);
        self.buffers.fill(f32::NAN);
        self.used = 0;
    }

    /// Copies `other` field by field (no 10 KB temporary on the stack).
    fn copy_from(&mut self, other: &Training) {
        self.state = other.state;
        self.params.copy_from_slice(&other.params);
        self.grads.copy_from_slice(&other.grads);
        self.buffers.copy_from_slice(&other.buffers);
        self.used = other.used;
    }

    /// Whether the state, θ and the buffers in use are equal bit for bit.
    fn same_bits(&self, other: &Training) -> bool {
        let same = |a: &[f32], b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        };
        self.state.step == other.state.step
            && self.state.alpha.to_bits() == other.state.alpha.to_bits()
            && self.used == other.used
            && same(&self.params, &other.params)
            && same(
                self.buffers.get(..self.used).unwrap_or_default(),
                other.buffers.get(..other.used).unwrap_or_default(),
            )
    }
}

/// Puts `order` in the order of epoch `epoch`: a Fisher–Yates shuffle of 0..n driven by
/// xorshift32 seeded from the epoch number alone, so a resumed run needs no generator state.
fn shuffle(order: &mut [u16; TRAIN_LEN], epoch: usize) {
    for (i, o) in order.iter_mut().enumerate() {
        *o = i as u16;
    }
    let mut x = (epoch as u32 + 1).wrapping_mul(0x9e37_79b9) | 1;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        order.swap(i, x as usize % (i + 1));
    }
}

/// The per-rule check: from θ = 0, [`RULE_CHECK_STEPS`] steps on the first minibatch must
/// lower its loss; every step's stack is measured.
fn check_rule(rule: &Rule, run: &mut Training) -> Result<Checked, Failure> {
    let opt = rule.optimizer()?;
    run.reset(&opt)?;
    let used = run.used;
    let buffers = run.buffers.get_mut(..used).unwrap_or_default();
    let (before, after, peak) = descend(
        &mut run.params,
        &mut run.grads,
        &mut run.state,
        buffers,
        rule.step,
    )?;
    Ok((before, after, Some(run.state.alpha), peak))
}

/// The per-rule check for a peer (`opt`, stepped by `step`), in `run`'s parameters and
/// `slots` (its buffers do not fit [`Training`]'s).
fn check_peer<P: Peer>(
    opt: Result<P, Error>,
    step: StepFn<P::State>,
    run: &mut Training,
    slots: &mut [f32],
) -> Result<Checked, Failure> {
    let opt = opt?;
    run.params.fill(0.0);
    let used = opt
        .buffer_len(PARAMS)
        .filter(|&n| n <= slots.len())
        .ok_or(Failure::Check(
            "the peer needs more buffers than PEER_SLOTS",
        ))?;
    let buffers = slots.get_mut(..used).unwrap_or_default();
    opt.init_buffers(&run.params, buffers)?;
    let mut state = opt.init_state();
    let (before, after, peak) =
        descend(&mut run.params, &mut run.grads, &mut state, buffers, step)?;
    Ok((before, after, None, peak))
}

/// [`RULE_CHECK_STEPS`] steps of `step` on the first minibatch, each measured for stack; the
/// minibatch loss must fall. Returns (loss before, loss after, the deepest step's stack).
fn descend<S>(
    params: &mut [f32; PARAMS],
    grads: &mut [f32; PARAMS],
    state: &mut S,
    buffers: &mut [f32],
    step: StepFn<S>,
) -> Result<(f32, f32, usize), Failure> {
    let batch: [u16; BATCH] = core::array::from_fn(|i| i as u16);
    let before = model::gradient(params, TRAIN, &batch, grads);
    let mut peak = 0;
    for _ in 0..RULE_CHECK_STEPS {
        model::gradient(params, TRAIN, &batch, grads);
        let (result, bytes) = stack::measure(|| step(state, params, grads, buffers));
        result?;
        peak = peak.max(bytes);
    }
    let after = model::gradient(params, TRAIN, &batch, grads);
    if after.is_nan() || after >= before {
        return Err(Failure::Check("the minibatch loss did not fall"));
    }
    Ok((before, after, peak))
}

/// What a per-rule check found: loss before, loss after, α (where the rule has one), the
/// deepest step's stack.
type Checked = (f32, f32, Option<f32>, usize);

/// Prints a per-rule check's outcome and its stack line; returns the number of failures (0 or
/// 1).
fn report(name: &str, result: Result<Checked, Failure>) -> usize {
    match result {
        Ok((before, after, alpha, peak)) => {
            match alpha {
                Some(alpha) => hprintln!(
                    "  {:15} loss {:.4} → {:.4}  α {:.6}",
                    name,
                    before,
                    after,
                    alpha
                ),
                None => hprintln!("  {:15} loss {:.4} → {:.4}", name, before, after),
            }
            hprintln!("stack: {} step {}", name, peak);
            0
        }
        Err(e) => {
            hprintln!("  {:15} FAILED: {}", name, e);
            1
        }
    }
}

/// Trains `goal.rule` for [`EPOCHS`], checkpointing on the way, then resumes from the
/// checkpoint and compares. Returns whether every check held.
fn train(
    goal: &Goal,
    run: &mut Training,
    reference: &mut Training,
    checkpoint: &mut [u8; CHECKPOINT_LEN],
    order: &mut [u16; TRAIN_LEN],
) -> Result<(), Failure> {
    let rule = rules::by_name(goal.rule).ok_or(Failure::Check("no such rule"))?;
    let opt = rule.optimizer()?;
    let beta = opt.config().hyper.map_or(0.0, |h| h.beta);
    hprintln!(
        "\n{}: α0 = {}, β = {}, λ = {}; {} epochs of {} minibatches of {}",
        rule.name,
        opt.config().alpha0,
        beta,
        opt.config().weight_decay,
        EPOCHS,
        TRAIN_LEN.div_ceil(BATCH),
        BATCH
    );
    run.reset(&opt)?;
    let mut saved = 0;
    let mut loss = f32::NAN;
    for epoch in 0..EPOCHS {
        let peak = run.epoch(&rule, epoch, order, epoch == 0)?;
        if epoch == 0 {
            hprintln!("stack: {} training step {}", rule.name, peak);
        }
        loss = model::evaluate(&run.params, TRAIN).0;
        let accuracy = model::evaluate(&run.params, TEST).1;
        hprintln!(
            "  epoch {:2}  loss {:.4}  α {:.6}  test accuracy {:.1}%",
            epoch + 1,
            loss,
            run.state.alpha,
            100.0 * accuracy
        );
        if epoch + 1 == CHECKPOINT_AFTER {
            saved = run.save(&opt, checkpoint)?;
            hprintln!(
                "  saved a checkpoint of {} bytes after epoch {}",
                saved,
                epoch + 1
            );
        }
    }
    let alpha0 = opt.config().alpha0;
    let alpha = run.state.alpha;

    // The power cycle: wipe everything, restore from the bytes alone, replay the same epochs.
    reference.copy_from(run);
    run.wipe();
    run.restore(&rule, checkpoint.get(..saved).unwrap_or_default())?;
    for epoch in CHECKPOINT_AFTER..EPOCHS {
        run.epoch(&rule, epoch, order, false)?;
    }
    let identical = run.same_bits(reference);
    hprintln!(
        "  restored the checkpoint into wiped buffers and replayed epochs {}-{}: {}",
        CHECKPOINT_AFTER + 1,
        EPOCHS,
        if identical {
            "bit-identical to the uninterrupted run"
        } else {
            "DIFFERENT from the uninterrupted run"
        }
    );

    hprintln!(
        "  final loss {:.4} (must be < {}), α {} → {:.6} (must move by ≥ {}% of α0)",
        loss,
        goal.max_loss,
        alpha0,
        alpha,
        100.0 * MIN_ALPHA_CHANGE
    );
    let baseline = rules::by_name(goal.baseline).ok_or(Failure::Check("no such rule"))?;
    run.reset(&baseline.optimizer()?)?;
    for epoch in 0..EPOCHS {
        run.epoch(&baseline, epoch, order, false)?;
    }
    let baseline_loss = model::evaluate(&run.params, TRAIN).0;
    hprintln!(
        "  plain {} from the same α0, same minibatches: final loss {:.4} (HD must do better)",
        baseline.name,
        baseline_loss
    );
    if !identical {
        return Err(Failure::Check("the resumed run differs"));
    }
    if loss.is_nan() || loss >= baseline_loss {
        return Err(Failure::Check("HD did no better than the base rule"));
    }
    if loss.is_nan() || loss >= goal.max_loss {
        return Err(Failure::Check("the loss stayed above the threshold"));
    }
    if (alpha - alpha0).abs() < MIN_ALPHA_CHANGE * alpha0.abs() {
        return Err(Failure::Check("α did not adapt"));
    }
    Ok(())
}

#[entry]
fn main() -> ! {
    // `#[entry]` turns these into `&'static mut` references: statics, not stack, not heap.
    static mut RUN: Training = Training::EMPTY;
    static mut REFERENCE: Training = Training::EMPTY;
    static mut CHECKPOINT: [u8; CHECKPOINT_LEN] = [0; CHECKPOINT_LEN];
    static mut ORDER: [u16; TRAIN_LEN] = [0; TRAIN_LEN];
    static mut PEER_BUFFERS: [f32; PARAMS * PEER_SLOTS] = [0.0; PARAMS * PEER_SLOTS];

    hprintln!(
        "hd-embedded: logistic regression on {} 8x8 digits ({} held out), Cortex-M4F, no heap",
        TRAIN_LEN,
        TEST_LEN
    );
    let mut failures = 0;

    hprintln!(
        "\nevery rule, {} steps on one minibatch from θ = 0:",
        RULE_CHECK_STEPS
    );
    for rule in rules::ALL.iter().chain(rules::STACKED) {
        failures += report(rule.name, check_rule(rule, RUN));
    }
    for rule in rules::PRODIGY {
        let opt = Prodigy::new(rule.config);
        failures += report(rule.name, check_peer(opt, rule.step, RUN, PEER_BUFFERS));
    }
    for rule in rules::SCHEDULE_FREE {
        let opt = ScheduleFree::new(rule.config);
        failures += report(rule.name, check_peer(opt, rule.step, RUN, PEER_BUFFERS));
    }

    for goal in &GOALS {
        if let Err(e) = train(goal, RUN, REFERENCE, CHECKPOINT, ORDER) {
            hprintln!("  {} FAILED: {}", goal.rule, e);
            failures += 1;
        }
    }

    let (peak, size) = stack::since_reset();
    hprintln!("\nstack: whole run {}", peak);
    hprintln!("(stack region {} bytes; no heap)", size);
    if failures == 0 {
        hprintln!("hd-embedded: all checks passed");
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        hprintln!("hd-embedded: {} check(s) FAILED", failures);
        debug::exit(debug::EXIT_FAILURE);
    }
    loop {
        cortex_m::asm::wfi();
    }
}

/// A fault ends the run as a failure instead of hanging QEMU.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("hard fault at pc {:#010x}", frame.pc());
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
