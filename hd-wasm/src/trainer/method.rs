//! What trains a run: one of the paper's nine optimizers, or one of the learning-rate-free peers
//! HD is compared with (DESIGN §2, "The peers"), and the hd-core object that steps it. Every
//! update is hd-core's; this module only picks the rule, keeps its state and reads back what the
//! page shows.

use std::borrow::Cow;
use std::fmt;

use hd_core::{
    HyperRule, Optimizer, Prodigy, ProdigyConfig, ProdigyState, ScheduleFree, ScheduleFreeConfig,
    ScheduleFreeState, State, Terms, Variant,
};

use super::settings::{config_with, Hyperparameters};
use crate::{phases, Error};

/// A learning-rate-free peer, trained in the α0 sweep with its one knob swept over the same
/// decades as α0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Prodigy with `prodigyopt`'s defaults (lr 1), swept over its initial estimate d_0.
    Prodigy,
    /// Schedule-Free SGD (`SGDScheduleFree`'s defaults, momentum 0.9), swept over its
    /// learning rate.
    ScheduleFreeSgd,
    /// Schedule-Free AdamW (`AdamWScheduleFree`'s defaults), swept over its learning rate.
    ScheduleFreeAdamW,
}

impl Peer {
    /// Every peer, in display order.
    pub const ALL: [Peer; 3] = [
        Peer::Prodigy,
        Peer::ScheduleFreeSgd,
        Peer::ScheduleFreeAdamW,
    ];

    /// The page's id: `prodigy`, `sf-sgd`, `sf-adamw`.
    pub fn id(self) -> &'static str {
        match self {
            Peer::Prodigy => "prodigy",
            Peer::ScheduleFreeSgd => "sf-sgd",
            Peer::ScheduleFreeAdamW => "sf-adamw",
        }
    }

    /// The display name.
    pub fn label(self) -> &'static str {
        match self {
            Peer::Prodigy => "Prodigy",
            Peer::ScheduleFreeSgd => "Schedule-Free SGD",
            Peer::ScheduleFreeAdamW => "Schedule-Free AdamW",
        }
    }

    /// The name of its one knob, the value the α0 sweep sets in α0's place.
    pub fn knob(self) -> &'static str {
        match self {
            Peer::Prodigy => "d0",
            Peer::ScheduleFreeSgd | Peer::ScheduleFreeAdamW => "lr",
        }
    }
}

/// The optimizer of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// One of the paper's nine (a base optimizer, HD or HDM), from α0.
    Paper(Variant),
    /// A learning-rate-free peer, from the value of its knob.
    Peer(Peer),
}

impl Method {
    /// The page's id (`sgd-hd`, `prodigy`, …).
    pub fn id(self) -> &'static str {
        match self {
            Method::Paper(v) => v.id(),
            Method::Peer(p) => p.id(),
        }
    }

    /// The display name (`SGD-HD`, `Prodigy`, …).
    pub fn label(self) -> &'static str {
        match self {
            Method::Paper(v) => v.label(),
            Method::Peer(p) => p.label(),
        }
    }

    /// The name of the value a run starts from: `α0`, or a peer's knob.
    pub fn knob(self) -> &'static str {
        match self {
            Method::Paper(_) => "α0",
            Method::Peer(p) => p.knob(),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The optimizer or peer with id `id` (the paper's nine, then `prodigy`, `sf-sgd`,
/// `sf-adamw`).
///
/// # Errors
/// [`Error::Settings`] naming the unknown id and every known one.
pub fn parse_method(id: &str) -> Result<Method, Error> {
    if let Ok(variant) = id.parse() {
        return Ok(Method::Paper(variant));
    }
    if let Some(&peer) = Peer::ALL.iter().find(|p| p.id() == id) {
        return Ok(Method::Peer(peer));
    }
    let ids: Vec<&str> = Variant::ALL
        .iter()
        .map(|v| v.id())
        .chain(Peer::ALL.iter().map(|p| p.id()))
        .collect();
    Err(Error::Settings(format!(
        "unknown optimizer {id:?}; expected one of {}",
        ids.join(", ")
    )))
}

/// hd-core's rule of one run with its state: what steps the run's parameters.
#[derive(Debug)]
pub(super) enum Stepper {
    /// One of the paper's nine.
    Paper {
        /// HD, HDM or none: which signal the page records.
        rule: Option<HyperRule>,
        optimizer: Optimizer,
        state: State,
    },
    /// Prodigy.
    Prodigy {
        optimizer: Prodigy,
        state: ProdigyState,
    },
    /// Schedule-Free, SGD or AdamW.
    ScheduleFree {
        optimizer: ScheduleFree,
        state: ScheduleFreeState,
    },
}

impl Stepper {
    /// `variant` from α0 with this β (β′ for HDM; `None` for a base optimizer).
    ///
    /// # Errors
    /// [`Error::Optimizer`] when hd-core rejects a hyperparameter.
    pub(super) fn paper(
        variant: Variant,
        alpha0: f32,
        beta: Option<f32>,
        h: &Hyperparameters,
    ) -> Result<Stepper, Error> {
        let optimizer = Optimizer::new(config_with(variant, alpha0, beta, h))?;
        Ok(Stepper::Paper {
            rule: variant.rule(),
            state: optimizer.init_state(),
            optimizer,
        })
    }

    /// `peer` with its knob at `knob` and its package's defaults otherwise. The page's L2 λ
    /// reaches it as its package's `weight_decay`: coupled for Prodigy (`decouple = false`, as
    /// the HD rules' L2) and Schedule-Free SGD (added to the gradient at y), decoupled for
    /// Schedule-Free AdamW (the package's only form), so that all minimise about the same
    /// objective.
    ///
    /// # Errors
    /// [`Error::Peer`] naming the peer when hd-core rejects the knob (d_0 ≤ 0, a negative
    /// learning rate, NaN) or λ.
    pub(super) fn peer(peer: Peer, knob: f32, h: &Hyperparameters) -> Result<Stepper, Error> {
        let refused = |error| Error::Peer { peer, error };
        let schedule_free = |config: ScheduleFreeConfig| {
            let optimizer = ScheduleFree::new(ScheduleFreeConfig {
                weight_decay: h.l2,
                ..config
            })
            .map_err(refused)?;
            Ok(Stepper::ScheduleFree {
                state: optimizer.init_state(),
                optimizer,
            })
        };
        match peer {
            Peer::Prodigy => {
                let optimizer = Prodigy::new(ProdigyConfig {
                    d0: knob,
                    weight_decay: h.l2,
                    decouple: false,
                    ..ProdigyConfig::DEFAULT
                })
                .map_err(refused)?;
                Ok(Stepper::Prodigy {
                    state: optimizer.init_state(),
                    optimizer,
                })
            }
            Peer::ScheduleFreeSgd => schedule_free(ScheduleFreeConfig::sgd(knob)),
            Peer::ScheduleFreeAdamW => schedule_free(ScheduleFreeConfig::adamw(knob)),
        }
    }

    /// The buffers of a fresh start from `params` (the peers keep a copy of them).
    ///
    /// # Errors
    /// [`Error::Settings`] if their length overflows.
    pub(super) fn buffers(&self, params: &[f32]) -> Result<Vec<f32>, Error> {
        let n = params.len();
        let len = match self {
            Stepper::Paper { optimizer, .. } => optimizer.buffer_len(n),
            Stepper::Prodigy { optimizer, .. } => optimizer.buffer_len(n),
            Stepper::ScheduleFree { optimizer, .. } => optimizer.buffer_len(n),
        }
        .ok_or_else(|| Error::Settings("optimizer buffers overflow".into()))?;
        let mut buffers = vec![0.0; len];
        match self {
            Stepper::Paper { optimizer, .. } => optimizer.init_buffers(&mut buffers)?,
            Stepper::Prodigy { optimizer, .. } => optimizer.init_buffers(params, &mut buffers)?,
            Stepper::ScheduleFree { optimizer, .. } => {
                optimizer.init_buffers(params, &mut buffers)?
            }
        }
        Ok(buffers)
    }

    /// One step of hd-core's rule on the gradient `grad` (for Schedule-Free, taken at y, which
    /// `params` hold). Returns the hypergradient signal the page plots (see
    /// [`Run::iteration_signal`](super::Run::iteration_signal)): NaN without HD.
    ///
    /// # Errors
    /// hd-core's, with everything unchanged ([`hd_core::Error::NonFinite`] for a gradient or
    /// sum that stopped being finite).
    pub(super) fn step(
        &mut self,
        params: &mut [f32],
        grad: &[f32],
        buffers: &mut [f32],
    ) -> Result<f32, hd_core::Error> {
        match self {
            Stepper::Paper {
                rule,
                optimizer,
                state,
            } => {
                let acc = phases::step(optimizer, state, params, grad, buffers)?;
                let terms = acc.terms(*rule == Some(HyperRule::Multiplicative));
                Ok(signal(*rule, &terms))
            }
            Stepper::Prodigy { optimizer, state } => {
                optimizer.step(state, params, grad, buffers)?;
                Ok(f32::NAN)
            }
            Stepper::ScheduleFree { optimizer, state } => {
                optimizer.step(state, params, grad, buffers)?;
                Ok(f32::NAN)
            }
        }
    }

    /// The step size now, the page's α: α_t for the paper's optimizers; Prodigy's d_t · lr
    /// (the estimate after the last step, times lr = 1; no bias correction, as the package's
    /// default); Schedule-Free's learning rate, which never moves (no warm-up, no schedule).
    pub(super) fn alpha(&self) -> f32 {
        match self {
            Stepper::Paper { state, .. } => state.alpha,
            Stepper::Prodigy { optimizer, state } => state.d * optimizer.config().lr,
            Stepper::ScheduleFree { optimizer, .. } => optimizer.config().lr,
        }
    }

    /// The parameters at which the model is evaluated: `params` themselves, except for
    /// Schedule-Free, whose `params` are y (where gradients are taken) and whose model is the
    /// average x (the package's `eval()`), computed into a copy.
    ///
    /// # Errors
    /// [`Error::Optimizer`] if `buffers` do not fit `params` (an internal inconsistency).
    pub(super) fn model<'a>(
        &self,
        params: &'a [f32],
        buffers: &[f32],
    ) -> Result<Cow<'a, [f32]>, Error> {
        match self {
            Stepper::Paper { .. } | Stepper::Prodigy { .. } => Ok(Cow::Borrowed(params)),
            Stepper::ScheduleFree { optimizer, .. } => {
                let mut x = vec![0.0; params.len()];
                optimizer.eval_point(params, buffers, &mut x)?;
                Ok(Cow::Owned(x))
            }
        }
    }
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
