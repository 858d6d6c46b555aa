//! Every hd-core rule as its own step function, with its hyperparameters fixed at compile time.
//!
//! A firmware usually knows its optimizer when it is built, so each function below hands
//! `Optimizer::new` a constant: what a firmware using only that rule would compile, and all the
//! compiler needs to drop the other rules' code where hd-core lets it inline that far. The
//! functions are never inlined and keep unmangled names (`hd_step_<rule>`), so
//! `cargo xtask footprint` finds them in the symbol table and adds up everything each one
//! reaches; the firmware calls them to measure each rule's stack.

use hd_core::{paper, Config, Error, Optimizer, State};

/// The signature shared by every rule's step: hd-core's one-buffer [`Optimizer::step`].
pub type StepFn = fn(&mut State, &mut [f32], &[f32], &mut [f32]) -> Result<(), Error>;

/// A rule: its name, its hyperparameters and its step function.
#[derive(Clone, Copy)]
pub struct Rule {
    /// Short name, as in the paper: `sgd-hd`, `adam-hdm`, …
    pub name: &'static str,
    /// Hyperparameters (also what a checkpoint must carry to be resumed by this rule).
    pub config: Config,
    /// One step over the flat parameter buffer.
    pub step: StepFn,
}

impl Rule {
    /// The optimizer for this rule's hyperparameters (for state, buffers and checkpoints).
    pub fn optimizer(&self) -> Result<Optimizer, Error> {
        Optimizer::new(self.config)
    }
}

/// Coupled L2 on the logistic regression, as in the paper's LogReg experiments.
const WEIGHT_DECAY: f32 = paper::weight_decay(paper::ModelKind::LogReg);

/// Initial learning rate of the SGD family: deliberately small, so α has to adapt.
pub const SGD_ALPHA0: f32 = 0.01;
/// Hypergradient rate β of SGD-HD and SGDN-HD.
pub const SGD_BETA: f32 = 0.01;
/// Initial learning rate of the Adam family (the paper's α_0).
pub const ADAM_ALPHA0: f32 = paper::ALPHA0;
/// Hypergradient rate β of Adam-HD.
pub const ADAM_BETA: f32 = 1e-4;
/// Nesterov momentum μ (the paper's).
const MOMENTUM: f32 = paper::MU;
/// Multiplicative rate β′ of the HDM variants (the paper's α_0-sensitivity study uses 0.02).
const HDM_BETA: f32 = paper::BETA_MULT;

macro_rules! rules {
    ($($fn_name:ident, $name:literal, $config:expr;)*) => {
        $(
            #[doc = concat!("One `", $name, "` step: hd-core's `Optimizer::step` for `", stringify!($config), "`.")]
            #[inline(never)]
            #[no_mangle]
            pub fn $fn_name(
                state: &mut State,
                params: &mut [f32],
                grads: &[f32],
                buffers: &mut [f32],
            ) -> Result<(), Error> {
                Optimizer::new($config)?.step(state, params, grads, buffers)
            }
        )*

        /// Every rule, in the order the footprint table lists them.
        pub const ALL: &[Rule] = &[$(Rule { name: $name, config: $config, step: $fn_name },)*];
    };
}

rules! {
    hd_step_sgd, "sgd", Config::sgd(SGD_ALPHA0).with_weight_decay(WEIGHT_DECAY);
    hd_step_sgd_hd, "sgd-hd", Config::sgd(SGD_ALPHA0).with_weight_decay(WEIGHT_DECAY).with_hd(SGD_BETA);
    hd_step_sgd_hdm, "sgd-hdm", Config::sgd(SGD_ALPHA0).with_weight_decay(WEIGHT_DECAY).with_hdm(HDM_BETA);
    hd_step_sgdn, "sgdn", Config::sgdn(SGD_ALPHA0, MOMENTUM).with_weight_decay(WEIGHT_DECAY);
    hd_step_sgdn_hd, "sgdn-hd", Config::sgdn(SGD_ALPHA0, MOMENTUM).with_weight_decay(WEIGHT_DECAY).with_hd(SGD_BETA);
    hd_step_sgdn_hdm, "sgdn-hdm", Config::sgdn(SGD_ALPHA0, MOMENTUM).with_weight_decay(WEIGHT_DECAY).with_hdm(HDM_BETA);
    hd_step_adam, "adam", Config::adam(ADAM_ALPHA0).with_weight_decay(WEIGHT_DECAY);
    hd_step_adam_hd, "adam-hd", Config::adam(ADAM_ALPHA0).with_weight_decay(WEIGHT_DECAY).with_hd(ADAM_BETA);
    hd_step_adam_hdm, "adam-hdm", Config::adam(ADAM_ALPHA0).with_weight_decay(WEIGHT_DECAY).with_hdm(HDM_BETA);
}

/// Whether two strings are equal, in a constant (`str`'s `==` is not `const`).
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

// The list above is written by hand (each rule needs its own symbol); a rule hd-core adds, or
// one listed out of order, fails the build here rather than going missing from the table.
const _: () = {
    assert!(
        ALL.len() == hd_core::Variant::ALL.len(),
        "embedded: one step function per hd-core Variant"
    );
    let mut i = 0;
    while i < ALL.len() {
        assert!(
            same(ALL[i].name, hd_core::Variant::ALL[i].id()),
            "embedded: the rules in hd-core's Variant::ALL order, named by their ids"
        );
        i += 1;
    }
};

/// The rule called `name`.
pub fn by_name(name: &str) -> Option<Rule> {
    ALL.iter().copied().find(|r| r.name == name)
}
