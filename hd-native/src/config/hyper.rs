//! [`Hyperparameters`]: every hyperparameter as an option of `train` sets it, and the mapping
//! to and from hd-core's [`Config`].

use super::{ScopeArg, Variant};
use hd_core::{Adam, Base, Config, Hyper, Scope, Transition};

/// Every hyperparameter as an option of `train` sets it: the command line's view of hd-core's
/// [`Config`] (and the layout runs were stored in before they stored that `Config`). Those
/// that do not apply to an optimizer hold their defaults.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
pub(super) struct Hyperparameters {
    /// α0.
    pub(super) alpha0: f32,
    /// The hypergradient rate in use: β for HD, β′ for HDM, 0 for a base optimizer.
    pub(super) beta: f32,
    /// Nesterov momentum μ (SGDN family only).
    pub(super) mu: f32,
    /// Coupled L2 weight decay λ.
    pub(super) weight_decay: f32,
    /// Adam's β1.
    pub(super) beta1: f32,
    /// Adam's β2.
    pub(super) beta2: f32,
    /// Adam's ε.
    pub(super) eps: f32,
    /// Adam's step divided by √t (the paper's logistic-regression setting).
    pub(super) adam_sqrt_decay: bool,
    /// α's scope.
    pub(super) scope: ScopeArg,
    /// Optional clamp of α to `[lo, hi]`.
    pub(super) clamp: Option<(f32, f32)>,
    /// Optional convergent transition `(p, α∞)` of paper §5.1.
    pub(super) transition: Option<(f32, f32)>,
}

impl Hyperparameters {
    /// hd-core's configuration of `optimizer` with these settings (those that do not apply
    /// to it left out).
    pub(super) fn config(&self, optimizer: Variant) -> Config {
        let base = optimizer.family().base_rule(
            self.mu,
            Adam {
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
                sqrt_decay: self.adam_sqrt_decay,
            },
        );
        let hyper = optimizer.rule().map(|rule| Hyper {
            rule,
            beta: self.beta,
            scope: match self.scope {
                ScopeArg::Global => Scope::Global,
                ScopeArg::PerTensor => Scope::PerTensor,
                ScopeArg::PerParameter => Scope::PerParameter,
            },
            clamp: self.clamp,
            transition: self
                .transition
                .map(|(power, alpha_inf)| Transition { power, alpha_inf }),
            // Stacked HD runs on hd-core's slices (the head-to-head), not through hd-tch.
            kappa: 0.0,
        });
        Config {
            base,
            alpha0: self.alpha0,
            weight_decay: self.weight_decay,
            hyper,
        }
    }

    /// The settings of `config`: [`config`](Self::config)'s inverse, with what does not apply
    /// at its default (μ = 0 without momentum, Adam's defaults outside Adam, β = 0 and a global
    /// α without hypergradient).
    pub(super) fn of(config: &Config) -> Self {
        let adam_defaults = Adam::default();
        let (mu, adam) = match config.base {
            Base::Sgd(sgd) => (sgd.momentum, adam_defaults),
            Base::Adam(adam) => (0.0, adam),
        };
        let hyper = config.hyper;
        Hyperparameters {
            alpha0: config.alpha0,
            beta: hyper.map_or(0.0, |h| h.beta),
            mu,
            weight_decay: config.weight_decay,
            beta1: adam.beta1,
            beta2: adam.beta2,
            eps: adam.eps,
            adam_sqrt_decay: adam.sqrt_decay,
            scope: match hyper.map_or(Scope::Global, |h| h.scope) {
                Scope::Global => ScopeArg::Global,
                Scope::PerTensor => ScopeArg::PerTensor,
                Scope::PerParameter => ScopeArg::PerParameter,
            },
            clamp: hyper.and_then(|h| h.clamp),
            transition: hyper
                .and_then(|h| h.transition)
                .map(|t| (t.power, t.alpha_inf)),
        }
    }
}
