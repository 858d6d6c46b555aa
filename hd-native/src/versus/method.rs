//! The methods of the head-to-head, each with its one knob, and the one type that steps any of
//! them on a flat buffer of parameters ([`Stepper`]).

use hd_core::{
    Config, Optimizer, Prodigy, ProdigyConfig, ProdigyState, ScheduleFree, ScheduleFreeConfig,
    ScheduleFreeState, State,
};
use std::fmt;

/// A method of the head-to-head. Each has exactly one knob ([`Method::knob`]); everything
/// else is fixed by the plan (β, κ) or by the method's package defaults.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Plain SGD at α0.
    Sgd,
    /// SGD-HD: α adapted from α0 at rate β (paper Eq. 5).
    SgdHd,
    /// SGD-HD with β itself adapted at rate κ.
    SgdHdStacked,
    /// Adam at α0, (β1, β2, ε) = (0.9, 0.999, 1e−8).
    Adam,
    /// Adam-HD: α adapted from α0 at rate β.
    AdamHd,
    /// Adam-HD with β itself adapted at rate κ.
    AdamHdStacked,
    /// Prodigy (`prodigyopt` defaults, lr 1), knob d0.
    Prodigy,
    /// Schedule-Free SGD (`schedulefree` defaults), knob lr.
    SfSgd,
    /// Schedule-Free AdamW (`schedulefree` defaults), knob lr.
    SfAdamw,
}

/// What a method's one knob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Knob {
    /// The initial (or fixed) learning rate α0.
    Alpha0,
    /// Prodigy's initial estimate d0 of the distance to the solution.
    D0,
    /// Schedule-Free's learning rate.
    Lr,
}

impl Knob {
    /// The plan's key for the knob's grid (`alpha0`, `d0`, `lr`).
    pub const fn key(self) -> &'static str {
        match self {
            Knob::Alpha0 => "alpha0",
            Knob::D0 => "d0",
            Knob::Lr => "lr",
        }
    }

    /// The knob as the report writes it (`α0`, `d0`, `lr`).
    pub const fn symbol(self) -> &'static str {
        match self {
            Knob::Alpha0 => "α0",
            Knob::D0 => "d0",
            Knob::Lr => "lr",
        }
    }
}

/// Which side of the question a method is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A base rule with a fixed learning rate (SGD, Adam).
    Base,
    /// A hypergradient rule, plain or stacked.
    Hd,
    /// A learning-rate-free peer (Prodigy, Schedule-Free).
    LrFree,
}

impl Method {
    /// Every method, in the order the report lists them.
    pub const ALL: [Method; 9] = [
        Method::Sgd,
        Method::SgdHd,
        Method::SgdHdStacked,
        Method::Adam,
        Method::AdamHd,
        Method::AdamHdStacked,
        Method::Prodigy,
        Method::SfSgd,
        Method::SfAdamw,
    ];

    /// The id, as the plan and the record files write it (`sgd-hd-stacked`).
    pub const fn id(self) -> &'static str {
        match self {
            Method::Sgd => "sgd",
            Method::SgdHd => "sgd-hd",
            Method::SgdHdStacked => "sgd-hd-stacked",
            Method::Adam => "adam",
            Method::AdamHd => "adam-hd",
            Method::AdamHdStacked => "adam-hd-stacked",
            Method::Prodigy => "prodigy",
            Method::SfSgd => "sf-sgd",
            Method::SfAdamw => "sf-adamw",
        }
    }

    /// The name the report writes (`SGD-HD stacked`, `SF-AdamW`).
    pub const fn label(self) -> &'static str {
        match self {
            Method::Sgd => "SGD",
            Method::SgdHd => "SGD-HD",
            Method::SgdHdStacked => "SGD-HD stacked",
            Method::Adam => "Adam",
            Method::AdamHd => "Adam-HD",
            Method::AdamHdStacked => "Adam-HD stacked",
            Method::Prodigy => "Prodigy",
            Method::SfSgd => "SF-SGD",
            Method::SfAdamw => "SF-AdamW",
        }
    }

    /// The one knob.
    pub const fn knob(self) -> Knob {
        match self {
            Method::Sgd
            | Method::SgdHd
            | Method::SgdHdStacked
            | Method::Adam
            | Method::AdamHd
            | Method::AdamHdStacked => Knob::Alpha0,
            Method::Prodigy => Knob::D0,
            Method::SfSgd | Method::SfAdamw => Knob::Lr,
        }
    }

    /// Which side of the question it is on.
    pub const fn side(self) -> Side {
        match self {
            Method::Sgd | Method::Adam => Side::Base,
            Method::SgdHd | Method::SgdHdStacked | Method::AdamHd | Method::AdamHdStacked => {
                Side::Hd
            }
            Method::Prodigy | Method::SfSgd | Method::SfAdamw => Side::LrFree,
        }
    }

    /// Whether the plan gives it a β (the HD rules, plain and stacked).
    pub const fn takes_beta(self) -> bool {
        matches!(self.side(), Side::Hd)
    }

    /// Whether the plan gives it a κ (the stacked rules).
    pub const fn takes_kappa(self) -> bool {
        matches!(self, Method::SgdHdStacked | Method::AdamHdStacked)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A method with the settings the plan fixes for it: β for the HD rules, κ for the stacked
/// ones (`None` where the method takes none).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tuned {
    /// The method.
    pub method: Method,
    /// β of the HD rules.
    pub beta: Option<f32>,
    /// κ of the stacked rules.
    pub kappa: Option<f32>,
}

/// The hd-core configuration of an α0 method at `alpha0`: SGD or Adam, plain, with HD at rate
/// β, or stacked (HD whose β is adapted at rate κ); `None` for the peers, which are not
/// hd-core `Config`s. Weight decay is 0: the runner adds the coupled L2 to the gradient itself,
/// the same for every method.
pub fn config(tuned: Tuned, alpha0: f32) -> Option<Config> {
    let (beta, kappa) = (tuned.beta.unwrap_or(0.0), tuned.kappa.unwrap_or(0.0));
    Some(match tuned.method {
        Method::Sgd => Config::sgd(alpha0),
        Method::SgdHd => Config::sgd(alpha0).with_hd(beta),
        Method::SgdHdStacked => Config::sgd(alpha0).with_hd(beta).with_kappa(kappa),
        Method::Adam => Config::adam(alpha0),
        Method::AdamHd => Config::adam(alpha0).with_hd(beta),
        Method::AdamHdStacked => Config::adam(alpha0).with_hd(beta).with_kappa(kappa),
        Method::Prodigy | Method::SfSgd | Method::SfAdamw => return None,
    })
}

/// Prodigy at `d0`: the package's defaults (lr 1, no weight decay) otherwise.
fn prodigy(d0: f32) -> ProdigyConfig {
    ProdigyConfig {
        d0,
        ..ProdigyConfig::DEFAULT
    }
}

/// A method's rule at one knob value, with its state and buffers, stepping one flat buffer of
/// parameters: the model's every tensor in one fixed order, so HD's α and Prodigy's d come
/// from sums over every parameter, the paper's global scope.
#[derive(Debug)]
pub struct Stepper {
    rule: Rule,
    buffers: Vec<f32>,
}

#[derive(Debug)]
enum Rule {
    Hd(Optimizer, State),
    Prodigy(Prodigy, ProdigyState),
    ScheduleFree(ScheduleFree, ScheduleFreeState),
}

impl Stepper {
    /// Checks `tuned` at knob value `knob` (what the plan does for every value of a grid).
    ///
    /// # Errors
    /// hd-core's [`hd_core::Error::InvalidHyperparameter`] naming the value out of its domain.
    pub fn check(tuned: Tuned, knob: f32) -> Result<(), hd_core::Error> {
        Stepper::rule(tuned, knob).map(|_| ())
    }

    fn rule(tuned: Tuned, knob: f32) -> Result<Rule, hd_core::Error> {
        let schedule_free = |c: ScheduleFreeConfig| -> Result<Rule, hd_core::Error> {
            let opt = ScheduleFree::new(c)?;
            Ok(Rule::ScheduleFree(opt, opt.init_state()))
        };
        match tuned.method {
            Method::Sgd
            | Method::SgdHd
            | Method::SgdHdStacked
            | Method::Adam
            | Method::AdamHd
            | Method::AdamHdStacked => {
                // `config` gives every α0 method its configuration.
                let c = config(tuned, knob).ok_or(hd_core::Error::InvalidHyperparameter {
                    name: "alpha0",
                    requirement: "a knob of SGD or Adam",
                })?;
                let opt = Optimizer::new(c)?;
                Ok(Rule::Hd(opt, opt.init_state()))
            }
            Method::Prodigy => {
                let opt = Prodigy::new(prodigy(knob))?;
                Ok(Rule::Prodigy(opt, opt.init_state()))
            }
            Method::SfSgd => schedule_free(ScheduleFreeConfig::sgd(knob)),
            Method::SfAdamw => schedule_free(ScheduleFreeConfig::adamw(knob)),
        }
    }

    /// `tuned` at knob value `knob`, starting from the parameters `params` (Prodigy keeps
    /// them as x_0, Schedule-Free as z_0).
    ///
    /// # Errors
    /// An invalid hyperparameter, or a model too large to hold the buffers
    /// ([`hd_core::Error::LengthMismatch`]).
    pub fn new(tuned: Tuned, knob: f32, params: &[f32]) -> Result<Stepper, hd_core::Error> {
        let rule = Stepper::rule(tuned, knob)?;
        let n = params.len();
        let len = match &rule {
            Rule::Hd(o, _) => o.buffer_len(n),
            Rule::Prodigy(o, _) => o.buffer_len(n),
            Rule::ScheduleFree(o, _) => o.buffer_len(n),
        }
        .ok_or(hd_core::Error::LengthMismatch {
            name: "buffers",
            expected: usize::MAX,
            found: n,
        })?;
        let mut buffers = vec![0.0; len];
        match &rule {
            Rule::Hd(o, _) => o.init_buffers(&mut buffers)?,
            Rule::Prodigy(o, _) => o.init_buffers(params, &mut buffers)?,
            Rule::ScheduleFree(o, _) => o.init_buffers(params, &mut buffers)?,
        }
        Ok(Stepper { rule, buffers })
    }

    /// One step of the rule on `params` with gradient `grads` (the coupled L2 already in it).
    ///
    /// # Errors
    /// hd-core's error, [`hd_core::Error::NonFinite`] for a gradient (or a step size) that is
    /// no longer finite; nothing changed then.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) -> Result<(), hd_core::Error> {
        let b = &mut self.buffers;
        match &mut self.rule {
            Rule::Hd(o, s) => o.step(s, params, grads, b),
            Rule::Prodigy(o, s) => o.step(s, params, grads, b),
            Rule::ScheduleFree(o, s) => o.step(s, params, grads, b),
        }
    }

    /// Where the model is evaluated when it is not at `params` (as [`step`](Stepper::step)
    /// leaves them): Schedule-Free's parameters hold y, where gradients are taken, and its
    /// model is the average x, written into `scratch` (`params` untouched); `None` for the
    /// others, whose model is `params` itself.
    ///
    /// # Errors
    /// [`hd_core::Error::LengthMismatch`] for parameters of another length than the buffers'.
    pub fn eval_point<'a>(
        &self,
        params: &[f32],
        scratch: &'a mut Vec<f32>,
    ) -> Result<Option<&'a [f32]>, hd_core::Error> {
        match &self.rule {
            Rule::ScheduleFree(o, _) => {
                scratch.resize(params.len(), 0.0);
                o.eval_point(params, &self.buffers, scratch)?;
                Ok(Some(scratch))
            }
            Rule::Hd(..) | Rule::Prodigy(..) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuned(method: Method) -> Tuned {
        Tuned {
            method,
            beta: method.takes_beta().then_some(1e-4),
            kappa: method.takes_kappa().then_some(1e-9),
        }
    }

    /// Every method builds at a value of its grid and steps f(θ) = ½‖θ‖² downhill from its
    /// evaluation point; an infinite gradient is hd-core's NonFinite and changes nothing.
    #[test]
    fn every_method_steps_a_quadratic_down() {
        for m in Method::ALL {
            let knob = match m.knob() {
                Knob::Alpha0 => 0.1,
                Knob::D0 => 1e-2,
                Knob::Lr => 0.1,
            };
            let mut theta = vec![1.0f32, -2.0, 0.5];
            let mut s = Stepper::new(tuned(m), knob, &theta).expect("builds");
            let before = s.buffers.clone();
            let e = s.step(&mut theta.clone(), &[f32::INFINITY, 0.0, 0.0]);
            assert_eq!(e, Err(hd_core::Error::NonFinite), "{m}");
            assert_eq!(s.buffers, before, "{m}");
            for _ in 0..200 {
                let g = theta.clone();
                s.step(&mut theta, &g).expect("steps");
            }
            let mut scratch = Vec::new();
            let x = s.eval_point(&theta, &mut scratch).expect("eval point");
            let norm: f32 = x.unwrap_or(&theta).iter().map(|v| v * v).sum();
            assert!(norm < 0.5, "{m}: ‖x‖² = {norm}");
        }
    }

    /// Schedule-Free is evaluated at its average x, not at y; the others where they stand.
    #[test]
    fn only_schedule_free_moves_the_evaluation_point() {
        for m in Method::ALL {
            let mut theta = vec![1.0f32, -2.0];
            let mut s = Stepper::new(tuned(m), 1e-2, &theta).expect("builds");
            for _ in 0..3 {
                let g = theta.clone();
                s.step(&mut theta, &g).expect("steps");
            }
            let mut scratch = Vec::new();
            let x = s.eval_point(&theta, &mut scratch).expect("eval point");
            let moved = x.is_some_and(|x| x != theta.as_slice());
            assert_eq!(moved, matches!(m, Method::SfSgd | Method::SfAdamw), "{m}");
        }
    }

    /// A knob value out of its domain is hd-core's error, naming it.
    #[test]
    fn a_bad_knob_value_is_refused() {
        let e = Stepper::check(tuned(Method::Prodigy), -1.0).expect_err("d0 < 0");
        assert!(e.to_string().contains("d0"), "{e}");
        assert!(Stepper::check(tuned(Method::SgdHd), 1e-3).is_ok());
    }
}
