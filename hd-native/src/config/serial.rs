//! hd-core's [`Config`] as `summary.json` and checkpoints store it, and the optimizer as its
//! id.
//!
//! hd-core has no serde (it is `no_std` and takes no dependencies), so its types are
//! described here with serde's remote derive: each definition names hd-core's type and the
//! derive reads and builds that type's own fields, so a field added to or renamed in hd-core
//! fails to compile here rather than being silently left out of the files.

use hd_core::{Adam, Base, Config, Hyper, HyperRule, Scope, Sgd, Transition};
use serde::{Deserialize, Serialize};

/// [`Config`]: `{"base": …, "alpha0": …, "weight_decay": …, "hyper": … or null}`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Config")]
pub(super) struct ConfigDef {
    #[serde(with = "BaseDef")]
    base: Base,
    alpha0: f32,
    weight_decay: f32,
    #[serde(with = "optional_hyper")]
    hyper: Option<Hyper>,
}

/// [`Base`]: `{"sgd": {"momentum": …, "nesterov": …}}` or `{"adam": {…}}`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Base", rename_all = "kebab-case")]
enum BaseDef {
    Sgd(#[serde(with = "SgdDef")] Sgd),
    Adam(#[serde(with = "AdamDef")] Adam),
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Sgd")]
struct SgdDef {
    momentum: f32,
    nesterov: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Adam")]
struct AdamDef {
    beta1: f32,
    beta2: f32,
    eps: f32,
    sqrt_decay: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Hyper")]
struct HyperDef {
    #[serde(with = "HyperRuleDef")]
    rule: HyperRule,
    beta: f32,
    #[serde(with = "ScopeDef")]
    scope: Scope,
    clamp: Option<(f32, f32)>,
    #[serde(with = "optional_transition")]
    transition: Option<Transition>,
    /// Stacked HD's κ; absent (0, plain HD) in summaries written before it existed.
    #[serde(default)]
    kappa: f32,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "HyperRule", rename_all = "kebab-case")]
enum HyperRuleDef {
    Additive,
    Multiplicative,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Scope", rename_all = "kebab-case")]
enum ScopeDef {
    Global,
    PerTensor,
    PerParameter,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Transition")]
struct TransitionDef {
    power: f32,
    alpha_inf: f32,
}

/// A module of `serialize`/`deserialize` for `Option<$ty>` through the remote definition
/// `$def` (a remote definition does not reach inside `Option`).
macro_rules! optional {
    ($module:ident, $ty:ident, $def:literal) => {
        mod $module {
            use super::*;
            use serde::{Deserializer, Serializer};

            #[derive(Serialize, Deserialize)]
            struct Stored(#[serde(with = $def)] $ty);

            pub fn serialize<S: Serializer>(v: &Option<$ty>, s: S) -> Result<S::Ok, S::Error> {
                v.map(Stored).serialize(s)
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$ty>, D::Error> {
                Ok(Option::<Stored>::deserialize(d)?.map(|Stored(x)| x))
            }
        }
    };
}

optional!(optional_hyper, Hyper, "HyperDef");
optional!(optional_transition, Transition, "TransitionDef");

/// `summary.json` and checkpoints write the optimizer as its id.
pub(super) mod optimizer_id {
    use crate::config::Variant;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Variant, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.id())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Variant, D::Error> {
        let id = String::deserialize(d)?;
        id.parse().map_err(D::Error::custom)
    }
}
