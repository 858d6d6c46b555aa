//! The nine optimizers the paper compares, by name: one list for every front end.

use crate::{Adam, Base, Config, Error, Hyper, HyperRule, Sgd};
use core::fmt;
use core::str::FromStr;

/// The paper's nine optimizers: SGD, SGD with Nesterov momentum (SGDN) and Adam, each plain,
/// with additive HD and with multiplicative HDM. Ids (`sgdn-hd`) name them in URLs, CLI
/// arguments and files; labels (`SGDN-HD`) are the paper's.
///
/// ```
/// use hd_core::{Optimizer, Variant};
/// let v: Variant = "adam-hd".parse()?;
/// assert_eq!(v.label(), "Adam-HD");
/// // The paper's settings: α0 = 0.001, β = 1e-7 for Adam-HD.
/// let opt = Optimizer::new(v.config(0.001, 1e-7, 0.0))?;
/// assert_eq!(opt.config().alpha0, 0.001);
/// # Ok::<(), hd_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// SGD with a fixed α.
    Sgd,
    /// SGD with additive hypergradient descent.
    SgdHd,
    /// SGD with multiplicative, normalised hypergradient descent.
    SgdHdm,
    /// SGD with Nesterov momentum.
    Sgdn,
    /// SGDN with HD.
    SgdnHd,
    /// SGDN with HDM.
    SgdnHdm,
    /// Adam.
    Adam,
    /// Adam with HD.
    AdamHd,
    /// Adam with HDM.
    AdamHdm,
}

impl Variant {
    /// All nine, in the paper's order.
    pub const ALL: [Variant; 9] = [
        Variant::Sgd,
        Variant::SgdHd,
        Variant::SgdHdm,
        Variant::Sgdn,
        Variant::SgdnHd,
        Variant::SgdnHdm,
        Variant::Adam,
        Variant::AdamHd,
        Variant::AdamHdm,
    ];

    /// The id, e.g. `sgdn-hd`.
    pub const fn id(self) -> &'static str {
        match self {
            Variant::Sgd => "sgd",
            Variant::SgdHd => "sgd-hd",
            Variant::SgdHdm => "sgd-hdm",
            Variant::Sgdn => "sgdn",
            Variant::SgdnHd => "sgdn-hd",
            Variant::SgdnHdm => "sgdn-hdm",
            Variant::Adam => "adam",
            Variant::AdamHd => "adam-hd",
            Variant::AdamHdm => "adam-hdm",
        }
    }

    /// The paper's name, e.g. `SGDN-HD`.
    pub const fn label(self) -> &'static str {
        match self {
            Variant::Sgd => "SGD",
            Variant::SgdHd => "SGD-HD",
            Variant::SgdHdm => "SGD-HDM",
            Variant::Sgdn => "SGDN",
            Variant::SgdnHd => "SGDN-HD",
            Variant::SgdnHdm => "SGDN-HDM",
            Variant::Adam => "Adam",
            Variant::AdamHd => "Adam-HD",
            Variant::AdamHdm => "Adam-HDM",
        }
    }

    /// The same base rule without hypergradient: `Sgd`, `Sgdn` or `Adam`.
    pub const fn base(self) -> Variant {
        match self {
            Variant::Sgd | Variant::SgdHd | Variant::SgdHdm => Variant::Sgd,
            Variant::Sgdn | Variant::SgdnHd | Variant::SgdnHdm => Variant::Sgdn,
            Variant::Adam | Variant::AdamHd | Variant::AdamHdm => Variant::Adam,
        }
    }

    /// The hypergradient rule, `None` for a base optimizer.
    pub const fn rule(self) -> Option<HyperRule> {
        match self {
            Variant::Sgd | Variant::Sgdn | Variant::Adam => None,
            Variant::SgdHd | Variant::SgdnHd | Variant::AdamHd => Some(HyperRule::Additive),
            Variant::SgdHdm | Variant::SgdnHdm | Variant::AdamHdm => {
                Some(HyperRule::Multiplicative)
            }
        }
    }

    /// Bytes of f32 traffic per parameter one step must move (DESIGN §7's cost model): the base
    /// rule reads g and reads and writes θ and each of its buffers; HD adds a pass that reads g
    /// and the state d_{t−1} comes from (d_{t−1} itself, or Adam's m and v), and SGD and SGDN
    /// write d_{t−1} back. HDM moves what HD does. (hd-core's slice step moves 4 more for a base
    /// rule, which reads g once more to refuse a non-finite gradient before writing.)
    pub const fn model_bytes_per_parameter(self) -> usize {
        let (base_slots, previous_direction_reads) = match self.base() {
            Variant::Sgd => (0, 4),
            Variant::Sgdn => (1, 4),
            _ => (2, 8),
        };
        let base = 4 + 8 + 8 * base_slots;
        match (self.rule(), self.base()) {
            (None, _) => base,
            (Some(_), Variant::Adam) => base + 4 + previous_direction_reads,
            (Some(_), _) => base + 4 + previous_direction_reads + 4,
        }
    }

    /// Its configuration: initial rate α0, hypergradient rate `beta` (β for HD, β′ for HDM;
    /// ignored by a base optimizer), Nesterov momentum `mu` (SGDN family only; ignored by the
    /// others), Adam with (0.9, 0.999, 1e−8), no weight decay, one global α. Validate it with
    /// [`Optimizer::new`](crate::Optimizer::new).
    ///
    /// Three positional numbers are easy to swap, and the ones that do not apply are dropped
    /// without a word: [`configure`](Variant::configure) names them and refuses those.
    pub fn config(self, alpha0: f32, beta: f32, mu: f32) -> Config {
        let base = match self.base() {
            Variant::Sgdn => Base::Sgd(Sgd::nesterov(mu)),
            Variant::Adam => Base::Adam(Adam::default()),
            _ => Base::Sgd(Sgd::PLAIN),
        };
        Config {
            base,
            alpha0,
            weight_decay: 0.0,
            hyper: match self.rule() {
                Some(HyperRule::Additive) => Some(Hyper::additive(beta)),
                Some(HyperRule::Multiplicative) => Some(Hyper::multiplicative(beta)),
                None => None,
            },
        }
    }
}

/// The numbers that pick one of the nine optimizers' configurations, by name, for
/// [`Variant::configure`]. Each must be given exactly where it applies.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Settings {
    /// Initial learning rate α_0 (every variant).
    pub alpha0: f32,
    /// β for HD, β′ for HDM; `None` for SGD, SGDN and Adam.
    pub beta: Option<f32>,
    /// Nesterov momentum μ; SGDN family only.
    pub mu: Option<f32>,
}

impl Variant {
    /// Its configuration from named [`Settings`] (Adam with (0.9, 0.999, 1e−8), no weight
    /// decay, one global α; add the rest with [`Config`]'s `with_…` builders), validated as
    /// [`Optimizer::new`](crate::Optimizer::new) does.
    ///
    /// ```
    /// use hd_core::{Error, Settings, Variant};
    /// let sgdn_hd = Variant::SgdnHd.configure(Settings { alpha0: 0.001, beta: Some(0.001), mu: Some(0.9) })?;
    /// assert_eq!(sgdn_hd, hd_core::Config::sgdn(0.001, 0.9).with_hd(0.001));
    /// // A β for plain Adam would be dropped by `config`; here it is an error.
    /// let adam = Variant::Adam.configure(Settings { alpha0: 0.001, beta: Some(1e-7), mu: None });
    /// assert!(matches!(adam, Err(Error::InvalidHyperparameter { name: "beta", .. })));
    /// # Ok::<(), hd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] naming `beta` or `mu` when it is given for a variant
    /// it does not apply to or missing for one it does; then as [`Config::validate`].
    pub fn configure(self, settings: Settings) -> Result<Config, Error> {
        let Settings { alpha0, beta, mu } = settings;
        let base = match (self.base(), mu) {
            (Variant::Sgdn, Some(mu)) => Config::sgdn(alpha0, mu),
            (Variant::Sgdn, None) => {
                return Err(Error::InvalidHyperparameter {
                    name: "mu",
                    requirement: "given for the SGDN family",
                })
            }
            (_, Some(_)) => {
                return Err(Error::InvalidHyperparameter {
                    name: "mu",
                    requirement: "given for the SGDN family only",
                })
            }
            (Variant::Adam, None) => Config::adam(alpha0),
            (_, None) => Config::sgd(alpha0),
        };
        let config = match (self.rule(), beta) {
            (Some(HyperRule::Additive), Some(b)) => base.with_hd(b),
            (Some(HyperRule::Multiplicative), Some(b)) => base.with_hdm(b),
            (None, None) => base,
            (Some(_), None) => {
                return Err(Error::InvalidHyperparameter {
                    name: "beta",
                    requirement: "given for a hypergradient variant",
                })
            }
            (None, Some(_)) => {
                return Err(Error::InvalidHyperparameter {
                    name: "beta",
                    requirement: "given for a hypergradient variant only",
                })
            }
        };
        config.validate()?;
        Ok(config)
    }
}

impl fmt::Display for Variant {
    /// The paper's name ([`label`](Variant::label)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for Variant {
    type Err = Error;

    /// Parses an [`id`](Variant::id).
    ///
    /// # Errors
    /// [`Error::UnknownOptimizer`] for anything else.
    fn from_str(s: &str) -> Result<Variant, Error> {
        Variant::ALL
            .into_iter()
            .find(|v| v.id() == s)
            .ok_or(Error::UnknownOptimizer)
    }
}
