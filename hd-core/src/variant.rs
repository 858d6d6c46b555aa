//! The nine optimizers the paper compares, by name: one list for every front end.

use crate::macros::enum_with_all;
use crate::{Adam, Base, Config, Error, Hyper, HyperRule, Sgd};
use core::fmt;
use core::str::FromStr;

enum_with_all! {
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
    /// All nine, in the paper's order: each [`Family`] plain, with HD, with HDM (checked at
    /// compile time against [`Family::ALL`] and [`of`](Variant::of)).
    ALL;
}

enum_with_all! {
    /// The paper's three base rules, each run plain, with HD and with HDM ([`Variant::of`]).
    /// Every match over a family is exhaustive, so adding one makes the compiler name each place
    /// that must learn it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Family {
        /// SGD (a fixed-α step along g).
        Sgd,
        /// SGD with Nesterov momentum.
        Sgdn,
        /// Adam.
        Adam,
    }
    /// All three, in the paper's order.
    ALL;
}

// `Variant::ALL` is each family of `Family::ALL` plain, with HD, with HDM, in that order: checked
// at compile time, so a variant declared out of place, or a family whose variants are missing,
// is a build error (as an index out of range is here, not a panic).
#[allow(clippy::indexing_slicing)]
const _: () = {
    const RULES: [Option<HyperRule>; 3] = [
        None,
        Some(HyperRule::Additive),
        Some(HyperRule::Multiplicative),
    ];
    assert!(
        Variant::ALL.len() == Family::ALL.len() * RULES.len(),
        "three variants per family"
    );
    let mut i = 0;
    while i < Variant::ALL.len() {
        let expected = Variant::of(Family::ALL[i / RULES.len()], RULES[i % RULES.len()]);
        // `==` is not const; a fieldless enum's discriminant is.
        assert!(
            Variant::ALL[i] as u8 == expected as u8,
            "Variant::ALL is each family plain, with HD, with HDM"
        );
        i += 1;
    }
};

/// The settings a family's base rule takes beyond α0 and λ (which every rule takes): what a
/// front end asks for and accepts for it ([`Family::options`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseOptions {
    /// The momentum μ.
    pub mu: bool,
    /// Adam's β1, β2, ε and its 1/√t step decay.
    pub adam: bool,
}

/// A family owns its base rule: which settings it takes ([`options`](Family::options)) and
/// how they make a [`Base`] ([`base_rule`](Family::base_rule)), each one exhaustive match, so
/// that a new family does not compile until it has both. [`Base`] is the rule with its
/// numbers and is wider than the families: SGD with heavy-ball momentum is a `Base` of no
/// family (hd-core runs it; the paper's nine do not include it).
impl Family {
    /// Its variant without hypergradient.
    pub const fn base(self) -> Variant {
        Variant::of(self, None)
    }

    /// The settings its base rule takes.
    pub const fn options(self) -> BaseOptions {
        match self {
            Family::Sgd => BaseOptions {
                mu: false,
                adam: false,
            },
            Family::Sgdn => BaseOptions {
                mu: true,
                adam: false,
            },
            Family::Adam => BaseOptions {
                mu: false,
                adam: true,
            },
        }
    }

    /// Its base rule with momentum `mu` and Adam's constants `adam`, each used only where
    /// [`options`](Family::options) says the family takes it: SGD, SGD with Nesterov momentum
    /// μ, or `adam`. The one place a family becomes a base rule.
    ///
    /// ```
    /// use hd_core::{Adam, Base, Family, Sgd};
    /// assert_eq!(Family::Sgdn.base_rule(0.9, Adam::default()), Base::Sgd(Sgd::nesterov(0.9)));
    /// assert_eq!(Family::Sgd.base_rule(0.9, Adam::default()), Base::Sgd(Sgd::PLAIN));
    /// ```
    pub const fn base_rule(self, mu: f32, adam: Adam) -> Base {
        match self {
            Family::Sgd => Base::Sgd(Sgd::PLAIN),
            Family::Sgdn => Base::Sgd(Sgd::nesterov(mu)),
            Family::Adam => Base::Adam(adam),
        }
    }
}

impl Variant {
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

    /// Its base rule's family: SGD, SGDN or Adam.
    pub const fn family(self) -> Family {
        match self {
            Variant::Sgd | Variant::SgdHd | Variant::SgdHdm => Family::Sgd,
            Variant::Sgdn | Variant::SgdnHd | Variant::SgdnHdm => Family::Sgdn,
            Variant::Adam | Variant::AdamHd | Variant::AdamHdm => Family::Adam,
        }
    }

    /// The variant of `family` with hypergradient `rule` (`None` for the base optimizer): the
    /// inverse of ([`family`](Variant::family), [`rule`](Variant::rule)).
    ///
    /// ```
    /// use hd_core::{Family, HyperRule, Variant};
    /// assert_eq!(Variant::of(Family::Sgdn, Some(HyperRule::Additive)), Variant::SgdnHd);
    /// for v in Variant::ALL {
    ///     assert_eq!(Variant::of(v.family(), v.rule()), v);
    /// }
    /// ```
    pub const fn of(family: Family, rule: Option<HyperRule>) -> Variant {
        match (family, rule) {
            (Family::Sgd, None) => Variant::Sgd,
            (Family::Sgd, Some(HyperRule::Additive)) => Variant::SgdHd,
            (Family::Sgd, Some(HyperRule::Multiplicative)) => Variant::SgdHdm,
            (Family::Sgdn, None) => Variant::Sgdn,
            (Family::Sgdn, Some(HyperRule::Additive)) => Variant::SgdnHd,
            (Family::Sgdn, Some(HyperRule::Multiplicative)) => Variant::SgdnHdm,
            (Family::Adam, None) => Variant::Adam,
            (Family::Adam, Some(HyperRule::Additive)) => Variant::AdamHd,
            (Family::Adam, Some(HyperRule::Multiplicative)) => Variant::AdamHdm,
        }
    }

    /// The same base rule without hypergradient: `Sgd`, `Sgdn` or `Adam` (its
    /// [`family`](Variant::family)'s [`base`](Family::base)).
    pub const fn base(self) -> Variant {
        self.family().base()
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
        // (base slots, bytes read to get d_{t−1}, bytes written to keep d_{t−1})
        let (base_slots, previous_direction_reads, direction_writes) = match self.family() {
            Family::Sgd => (0, 4, 4),
            Family::Sgdn => (1, 4, 4),
            // Adam recomputes d_{t−1} from m and v.
            Family::Adam => (2, 8, 0),
        };
        let base = 4 + 8 + 8 * base_slots;
        match self.rule() {
            None => base,
            Some(_) => base + 4 + previous_direction_reads + direction_writes,
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
        Config {
            base: self.family().base_rule(mu, Adam::default()),
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
        let family = self.family();
        if family.options().mu != mu.is_some() {
            return Err(Error::InvalidHyperparameter {
                name: "mu",
                requirement: if mu.is_some() {
                    "given for the SGDN family only"
                } else {
                    "given for the SGDN family"
                },
            });
        }
        let base = Config {
            base: family.base_rule(mu.unwrap_or(0.0), Adam::default()),
            ..Config::sgd(alpha0)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The nine in the order the paper lists them (SGD, SGD-HD, …, Adam-HDM), each once, and
    /// family and rule name each one exactly.
    #[test]
    fn all_in_the_papers_order_and_family_with_rule_names_each() {
        let ids = Variant::ALL.map(Variant::id);
        assert_eq!(
            ids,
            [
                "sgd", "sgd-hd", "sgd-hdm", "sgdn", "sgdn-hd", "sgdn-hdm", "adam", "adam-hd",
                "adam-hdm"
            ]
        );
        for v in Variant::ALL {
            assert_eq!(Variant::of(v.family(), v.rule()), v, "{v}");
            assert_eq!(v.base(), v.family().base(), "{v}");
            assert_eq!(v.base().rule(), None, "{v}");
        }
        assert_eq!(
            Family::ALL.map(Family::base),
            [Variant::Sgd, Variant::Sgdn, Variant::Adam]
        );
    }
}
