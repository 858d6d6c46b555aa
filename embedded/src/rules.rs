//! Every hd-core rule as its own step function, with its hyperparameters fixed at compile time.
//!
//! A firmware usually knows its optimizer when it is built, so each function below hands its
//! optimizer's `new` a constant: what a firmware using only that rule would compile, and all
//! the compiler needs to drop the other rules' code where hd-core lets it inline that far. The
//! functions are never inlined and keep unmangled names (`hd_step_<rule>`), so
//! `cargo xtask footprint` finds them in the symbol table and adds up everything each one
//! reaches; the firmware calls them to measure each rule's stack. The paper's nine rules and
//! stacked HD step through hd-core's [`Optimizer`]; the learning-rate-free peers through
//! [`Prodigy`] and [`ScheduleFree`], whose state types differ, so a rule is generic over both.

use hd_core::{
    paper, Config, Error, Optimizer, Prodigy, ProdigyConfig, ProdigyState, ScheduleFree,
    ScheduleFreeConfig, ScheduleFreeState, State,
};

/// The signature shared by every rule's step: its optimizer's one-buffer `step`, on the
/// rule's own state type `S`.
pub type StepFn<S = State> = fn(&mut S, &mut [f32], &[f32], &mut [f32]) -> Result<(), Error>;

/// A rule: its name, its hyperparameters `C` and its step function (state `S`).
#[derive(Clone, Copy)]
pub struct Rule<C = Config, S = State> {
    /// Short name, as in the paper: `sgd-hd`, `adam-hdm`, … (`-stacked` for stacked HD,
    /// `prodigy`, `sf-sgd`, `sf-adamw` for the peers).
    pub name: &'static str,
    /// Hyperparameters (also what a checkpoint must carry to be resumed by this rule).
    pub config: C,
    /// One step over the flat parameter buffer.
    pub step: StepFn<S>,
}

impl Rule {
    /// The optimizer for this rule's hyperparameters (for state, buffers and checkpoints).
    pub fn optimizer(&self) -> Result<Optimizer, Error> {
        Optimizer::new(self.config)
    }
}

/// What the firmware's check needs to start a peer from θ, the same three calls on both
/// peers (unlike hd-core's rules, their buffers start from a copy of θ, not zeros).
pub trait Peer {
    /// The peer's scalar state between steps.
    type State;
    /// Length of the buffer slice for `n` parameters.
    fn buffer_len(&self, n: usize) -> Option<usize>;
    /// The state before the first step.
    fn init_state(&self) -> Self::State;
    /// A fresh start for `params`.
    fn init_buffers(&self, params: &[f32], buffers: &mut [f32]) -> Result<(), Error>;
}

/// [`Peer`] for each peer, forwarding to its own methods of the same names.
macro_rules! peer {
    ($($opt:ident, $state:ident;)*) => {
        $(
            impl Peer for $opt {
                type State = $state;
                fn buffer_len(&self, n: usize) -> Option<usize> {
                    $opt::buffer_len(self, n)
                }
                fn init_state(&self) -> $state {
                    $opt::init_state(self)
                }
                fn init_buffers(&self, params: &[f32], buffers: &mut [f32]) -> Result<(), Error> {
                    $opt::init_buffers(self, params, buffers)
                }
            }
        )*
    };
}

peer! {
    Prodigy, ProdigyState;
    ScheduleFree, ScheduleFreeState;
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

/// Hypergradient rate κ of stacked SGD-HD and SGDN-HD: small beside β, since its step
/// κ h_t h_{t−1} is to nudge β (here h is at most about 1.5, at θ = 0), not to swamp it.
const SGD_KAPPA: f32 = 1e-4;
/// Hypergradient rate κ of stacked Adam-HD: smaller, as Adam's β is and as its h = g·d_{t−1}
/// is larger (d is about ±1 per element: h about 10 here).
const ADAM_KAPPA: f32 = 1e-9;

/// Defines each rule's step function, never inlined and unmangled, `$opt::new($config)?.step`
/// (the one way a rule's step is exposed, whichever optimizer steps it), and the list `$list`
/// of those rules.
macro_rules! rules {
    ($(#[$doc:meta])* $list:ident: $opt:ident, $config_ty:ident, $state:ident;
     $($fn_name:ident, $name:literal, $config:expr;)*) => {
        $(
            #[doc = concat!("One `", $name, "` step: hd-core's `", stringify!($opt), "::step` for `", stringify!($config), "`.")]
            #[inline(never)]
            #[no_mangle]
            pub fn $fn_name(
                state: &mut $state,
                params: &mut [f32],
                grads: &[f32],
                buffers: &mut [f32],
            ) -> Result<(), Error> {
                $opt::new($config)?.step(state, params, grads, buffers)
            }
        )*

        $(#[$doc])*
        pub const $list: &[Rule<$config_ty, $state>] =
            &[$(Rule { name: $name, config: $config, step: $fn_name },)*];
    };
}

rules! {
    /// The paper's nine rules, in the order the footprint table lists them.
    ALL: Optimizer, Config, State;
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

rules! {
    /// Stacked HD on each family's HD rule, from the same α_0 and β_0.
    STACKED: Optimizer, Config, State;
    hd_step_sgd_hd_stacked, "sgd-hd-stacked", Config::sgd(SGD_ALPHA0).with_weight_decay(WEIGHT_DECAY).with_hd(SGD_BETA).with_kappa(SGD_KAPPA);
    hd_step_sgdn_hd_stacked, "sgdn-hd-stacked", Config::sgdn(SGD_ALPHA0, MOMENTUM).with_weight_decay(WEIGHT_DECAY).with_hd(SGD_BETA).with_kappa(SGD_KAPPA);
    hd_step_adam_hd_stacked, "adam-hd-stacked", Config::adam(ADAM_ALPHA0).with_weight_decay(WEIGHT_DECAY).with_hd(ADAM_BETA).with_kappa(ADAM_KAPPA);
}

rules! {
    /// Prodigy with the package's defaults (d_0 = 1e−6, lr 1) and the firmware's coupled L2.
    PRODIGY: Prodigy, ProdigyConfig, ProdigyState;
    hd_step_prodigy, "prodigy", ProdigyConfig { weight_decay: WEIGHT_DECAY, decouple: false, ..ProdigyConfig::DEFAULT };
}

rules! {
    /// Schedule-Free SGD and AdamW, each at its family's α_0, with the firmware's weight decay.
    SCHEDULE_FREE: ScheduleFree, ScheduleFreeConfig, ScheduleFreeState;
    hd_step_sf_sgd, "sf-sgd", ScheduleFreeConfig { weight_decay: WEIGHT_DECAY, ..ScheduleFreeConfig::sgd(SGD_ALPHA0) };
    hd_step_sf_adamw, "sf-adamw", ScheduleFreeConfig { weight_decay: WEIGHT_DECAY, ..ScheduleFreeConfig::adamw(ADAM_ALPHA0) };
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

// The lists above are written by hand (each rule needs its own symbol); a rule hd-core adds, or
// one listed out of order, fails the build here rather than going missing from the table, and
// so does a stacked rule whose κ of 0 would make it plain HD.
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
    let mut i = 0;
    while i < STACKED.len() {
        assert!(
            matches!(STACKED[i].config.hyper, Some(h) if h.kappa > 0.0),
            "embedded: the stacked rules have κ > 0"
        );
        i += 1;
    }
};

/// The rule called `name`.
pub fn by_name(name: &str) -> Option<Rule> {
    ALL.iter().copied().find(|r| r.name == name)
}
