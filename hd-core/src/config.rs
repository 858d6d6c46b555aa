//! The optimizer's configuration: the base rule and every hyperparameter, plain `Copy` data
//! with builders and validation.

use crate::adam::Adam;
use crate::error::Error;
use crate::hyper::{Hyper, HyperRule, Scope, Transition};
use crate::sgd::Sgd;

/// The base rule, i.e. the direction d_t of θ_t = θ_{t−1} − γ_t d_t.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Base {
    /// SGD, with optional heavy-ball or Nesterov momentum.
    Sgd(Sgd),
    /// Adam.
    Adam(Adam),
}

/// Every hyperparameter of an optimizer: plain `Copy` data, validated by
/// [`Optimizer::new`](crate::Optimizer::new).
///
/// The gradient the rules see is g_t = ∇f_t(θ_{t−1}) + λ θ_{t−1} (coupled L2, λ = `weight_decay`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// The base direction.
    pub base: Base,
    /// Initial learning rate α_0 (finite).
    pub alpha0: f32,
    /// Coupled L2 coefficient λ ≥ 0 (the paper uses 1e−4 on LogReg and MLP).
    pub weight_decay: f32,
    /// Hypergradient adaptation of α; `None` is the base optimizer with fixed α_0.
    pub hyper: Option<Hyper>,
}

// The builders are `#[inline]`: a firmware builds its configuration from constants, and
// unless these fold before LLVM removes dead stores, a rule keeps the code of the branches
// its configuration never takes (an HD rule set up HDM's sums: 36–52 B of flash).
impl Config {
    /// Plain SGD with learning rate α_0.
    #[inline]
    pub const fn sgd(alpha0: f32) -> Config {
        Config {
            base: Base::Sgd(Sgd::PLAIN),
            alpha0,
            weight_decay: 0.0,
            hyper: None,
        }
    }

    /// SGD with Nesterov momentum μ (the paper's SGDN).
    #[inline]
    pub const fn sgdn(alpha0: f32, momentum: f32) -> Config {
        Config {
            base: Base::Sgd(Sgd::nesterov(momentum)),
            ..Config::sgd(alpha0)
        }
    }

    /// Adam with the usual (0.9, 0.999, 1e−8).
    #[inline]
    pub const fn adam(alpha0: f32) -> Config {
        Config {
            base: Base::Adam(Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                sqrt_decay: false,
            }),
            ..Config::sgd(alpha0)
        }
    }

    /// This base rule with additive hypergradient descent (HD) at rate β, keeping any scope,
    /// clamp or transition set before.
    #[inline]
    pub const fn with_hd(self, beta: f32) -> Config {
        self.with_rule(HyperRule::Additive, beta)
    }

    /// This base rule with multiplicative hypergradient descent (HDM) at rate β′, keeping any
    /// scope, clamp or transition set before.
    #[inline]
    pub const fn with_hdm(self, beta: f32) -> Config {
        self.with_rule(HyperRule::Multiplicative, beta)
    }

    #[inline]
    const fn with_rule(self, rule: HyperRule, beta: f32) -> Config {
        let hyper = self.hyper_or_neutral();
        Config {
            hyper: Some(Hyper {
                rule,
                beta,
                ..hyper
            }),
            ..self
        }
    }

    /// The hypergradient settings, or additive HD with β = 0 (the base rule exactly) so that
    /// the builders below never drop a value set before [`with_hd`](Config::with_hd).
    #[inline]
    const fn hyper_or_neutral(&self) -> Hyper {
        match self.hyper {
            Some(h) => h,
            None => Hyper::additive(0.0),
        }
    }

    /// This configuration with α shared over `scope`.
    ///
    /// Called before [`with_hd`](Config::with_hd) / [`with_hdm`](Config::with_hdm) (or without
    /// them), it adds additive HD with β = 0, which steps exactly as the base rule; the later
    /// call then sets the rule and β and keeps the scope. The same holds for
    /// [`with_clamp`](Config::with_clamp) and [`with_transition`](Config::with_transition), so
    /// the order of the builders does not matter and nothing set is ever dropped.
    ///
    /// ```
    /// use hd_core::{Config, Optimizer, Scope};
    /// let a = Config::sgd(0.01).with_scope(Scope::PerParameter).with_hd(1e-3);
    /// let b = Config::sgd(0.01).with_hd(1e-3).with_scope(Scope::PerParameter);
    /// assert_eq!(a, b);
    /// assert_eq!(Optimizer::new(a)?.slots(), 2); // d_{t−1} and α
    /// # Ok::<(), hd_core::Error>(())
    /// ```
    #[inline]
    pub const fn with_scope(self, scope: Scope) -> Config {
        let hyper = self.hyper_or_neutral();
        Config {
            hyper: Some(Hyper { scope, ..hyper }),
            ..self
        }
    }

    /// This configuration with α clamped to [lo, hi] after each update (see
    /// [`with_scope`](Config::with_scope) for the order of builders).
    /// [`Optimizer::new`](crate::Optimizer::new) refuses a range that excludes α_0.
    #[inline]
    pub const fn with_clamp(self, lo: f32, hi: f32) -> Config {
        let hyper = self.hyper_or_neutral();
        Config {
            hyper: Some(Hyper {
                clamp: Some((lo, hi)),
                ..hyper
            }),
            ..self
        }
    }

    /// This configuration with the convergent schedule of paper §5.1 (see
    /// [`with_scope`](Config::with_scope) for the order of builders).
    #[inline]
    pub const fn with_transition(self, transition: Transition) -> Config {
        let hyper = self.hyper_or_neutral();
        Config {
            hyper: Some(Hyper {
                transition: Some(transition),
                ..hyper
            }),
            ..self
        }
    }

    /// This configuration as *stacked* HD: β itself adapted by its hypergradient at rate κ,
    /// β_t = β_{t−1} + κ h_t h_{t−1}, starting from the β set by [`with_hd`](Config::with_hd)
    /// (DESIGN §2, "Stacked HD"; see [`with_scope`](Config::with_scope) for the order of
    /// builders). [`Optimizer::new`](crate::Optimizer::new) refuses κ > 0 with the
    /// multiplicative rule or per-parameter scope.
    ///
    /// ```
    /// use hd_core::{Config, Optimizer};
    /// let opt = Optimizer::new(Config::sgd(0.01).with_hd(1e-4).with_kappa(1e-6))?;
    /// assert_eq!(opt.init_state().beta, 1e-4); // β_0 = β
    /// assert!(Optimizer::new(Config::sgd(0.01).with_hdm(0.02).with_kappa(1e-6)).is_err());
    /// # Ok::<(), hd_core::Error>(())
    /// ```
    #[inline]
    pub const fn with_kappa(self, kappa: f32) -> Config {
        let hyper = self.hyper_or_neutral();
        Config {
            hyper: Some(Hyper { kappa, ..hyper }),
            ..self
        }
    }

    /// This Adam configuration with the paper's 1/√t decay of the step (used for logistic
    /// regression).
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] naming `sqrt_decay` if the base rule is not Adam: the
    /// decay is defined for Adam only, and dropping it silently would train something else.
    #[inline]
    pub const fn with_sqrt_decay(self) -> Result<Config, Error> {
        match self.base {
            Base::Adam(a) => Ok(Config {
                base: Base::Adam(Adam {
                    sqrt_decay: true,
                    ..a
                }),
                ..self
            }),
            Base::Sgd(_) => Err(Error::InvalidHyperparameter {
                name: "sqrt_decay",
                requirement: "used with an Adam base rule only",
            }),
        }
    }

    /// This configuration with coupled L2 weight decay λ.
    #[inline]
    pub const fn with_weight_decay(self, weight_decay: f32) -> Config {
        Config {
            weight_decay,
            ..self
        }
    }

    /// Checks every hyperparameter.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] naming the first one out of its domain;
    /// [`Error::InconsistentHyperparameters`] naming `alpha0` and `clamp` when the clamp range
    /// excludes α_0.
    #[inline(always)]
    pub fn validate(&self) -> Result<(), Error> {
        if !self.alpha0.is_finite() {
            return Err(Error::InvalidHyperparameter {
                name: "alpha0",
                requirement: "finite",
            });
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::InvalidHyperparameter {
                name: "weight_decay",
                requirement: "finite and >= 0",
            });
        }
        match self.base {
            Base::Sgd(s) => s.validate()?,
            Base::Adam(a) => a.validate()?,
        }
        let Some(h) = self.hyper else {
            return Ok(());
        };
        h.validate()?;
        match h.clamp {
            // The first step uses α_0 (h_1 = 0); a clamp that excludes it would replace it.
            Some((lo, hi)) if !(lo <= self.alpha0 && self.alpha0 <= hi) => {
                Err(Error::InconsistentHyperparameters {
                    first: "alpha0",
                    second: "clamp",
                    requirement: "lo <= alpha0 <= hi",
                })
            }
            _ => Ok(()),
        }
    }
}
