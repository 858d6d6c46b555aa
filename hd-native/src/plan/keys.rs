//! The plan keys: every option of `train` a plan may set, the kind of value each takes, the
//! runs it applies to, and the checked [`Value`]s that reach `train`'s command line.

use crate::config::{parse_pair, Options, Preset, Variant};
use crate::models::ModelSpec;
use hd_core::{BaseOptions, HyperRule};
use std::fmt;

/// The kind of value a plan key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Str,
    Int,
    Float,
    Bool,
    Ints,
    Pair,
}

/// Which runs an option applies to: the rules `train` enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Applies {
    /// Every run.
    Every,
    /// Runs with additive hypergradient (HD).
    Additive,
    /// Runs with multiplicative hypergradient (HDM).
    Multiplicative,
    /// Runs with either hypergradient rule.
    Hypergradient,
    /// Runs whose base rule takes the momentum μ.
    Mu,
    /// Runs whose base rule is Adam.
    Adam,
}

impl Applies {
    /// Whether an option that applies to these runs applies to a run of `optimizer`.
    pub(super) fn to(self, optimizer: Variant) -> bool {
        let rule = optimizer.rule();
        // Destructured without `..`: an option added to BaseOptions does not compile until it
        // has its own `Applies` here.
        let BaseOptions { mu, adam } = optimizer.family().options();
        match self {
            Applies::Every => true,
            Applies::Additive => rule == Some(HyperRule::Additive),
            Applies::Multiplicative => rule == Some(HyperRule::Multiplicative),
            Applies::Hypergradient => rule.is_some(),
            Applies::Mu => mu,
            Applies::Adam => adam,
        }
    }
}

/// A plan key: one of `train`'s options, under the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The option's name (`beta-mult`).
    pub name: &'static str,
    /// How it is abbreviated in run ids (`bm`).
    pub short: &'static str,
    /// The value it takes.
    pub(super) kind: Kind,
    /// The runs it applies to; it is left out of the others.
    pub(super) applies: Applies,
}

const fn key(name: &'static str, short: &'static str, kind: Kind, applies: Applies) -> Key {
    Key {
        name,
        short,
        kind,
        applies,
    }
}

/// The plan keys: every option of `train` but those the sweep sets (`SWEEP_KEYS`), each
/// with its value, abbreviation and the runs it applies to. This order is the order of axes
/// and of options on the command line.
pub const KEYS: [Key; 24] = {
    use Applies::{Adam, Additive, Every, Hypergradient, Mu, Multiplicative};
    use Kind::{Bool, Float, Int, Ints, Pair, Str};
    [
        key("preset", "preset", Str, Every),
        key("model", "model", Str, Every),
        key("hidden", "hidden", Ints, Every),
        key("no-batch-norm", "no-bn", Bool, Every),
        key("depth", "depth", Int, Every),
        key("width", "width", Int, Every),
        key("dataset", "data", Str, Every),
        key("optimizer", "opt", Str, Every),
        key("alpha0", "a0", Float, Every),
        key("beta", "b", Float, Additive),
        key("beta-mult", "bm", Float, Multiplicative),
        key("mu", "mu", Float, Mu),
        key("weight-decay", "wd", Float, Every),
        key("beta1", "b1", Float, Adam),
        key("beta2", "b2", Float, Adam),
        key("eps", "eps", Float, Adam),
        key("adam-sqrt-decay", "sqrt", Bool, Adam),
        key("scope", "scope", Str, Hypergradient),
        key("clamp", "clamp", Pair, Hypergradient),
        key("transition", "tr", Pair, Hypergradient),
        key("epochs", "e", Int, Every),
        key("batch-size", "bs", Int, Every),
        key("seed", "s", Int, Every),
        key("stop-at-loss", "stop", Float, Every),
    ]
};

/// `train` options that the sweep sets for every run, so a plan may not.
pub(super) const SWEEP_KEYS: [&str; 7] = [
    "data-dir", "out", "resume", "quiet", "device", "threads", "progress",
];

/// One value of a plan key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A name (`"sgd-hd"`).
    Str(String),
    /// An integer.
    Int(i64),
    /// A number.
    Float(f64),
    /// A switch.
    Bool(bool),
    /// A list of integers (`hidden`).
    Ints(Vec<i64>),
    /// Two numbers (`clamp`, `transition`).
    Pair(f64, f64),
}

/// A number as written by hand, the shorter of the two forms: `0.1`, `0.02`, `1e-3`, `1e-6`.
fn short(x: f64) -> String {
    let (plain, exp) = (format!("{x}"), format!("{x:e}"));
    if exp.len() < plain.len() {
        exp
    } else {
        plain
    }
}

impl Value {
    /// The value as `train` takes it on its command line.
    pub(super) fn arg(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => format!("{x:e}"),
            Value::Bool(b) => b.to_string(),
            Value::Ints(v) => v.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
            Value::Pair(a, b) => format!("{a:e},{b:e}"),
        }
    }
}

impl fmt::Display for Value {
    /// The value as written in run ids: short, and free of `/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&short(*x)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Ints(v) => {
                f.write_str(&v.iter().map(i64::to_string).collect::<Vec<_>>().join("x"))
            }
            Value::Pair(a, b) => write!(f, "{}_{}", short(*a), short(*b)),
        }
    }
}

/// Checks one TOML value against a key's kind.
pub(super) fn typed(key: Key, v: &toml::Value) -> Result<Value, String> {
    let float = |v: &toml::Value| match v {
        toml::Value::Float(x) => Some(*x),
        toml::Value::Integer(i) => Some(*i as f64),
        _ => None,
    };
    let got = || format!("`{}` takes {}, not {v}", key.name, describe(key.kind));
    Ok(match (key.kind, v) {
        (Kind::Str, toml::Value::String(s)) => Value::Str(s.clone()),
        (Kind::Int, toml::Value::Integer(i)) => Value::Int(*i),
        (Kind::Float, v) => Value::Float(float(v).ok_or_else(got)?),
        (Kind::Bool, toml::Value::Boolean(b)) => Value::Bool(*b),
        (Kind::Ints, toml::Value::Array(a)) if !a.is_empty() => Value::Ints(
            a.iter()
                .map(|x| x.as_integer().ok_or_else(got))
                .collect::<Result<_, _>>()?,
        ),
        (Kind::Pair, toml::Value::Array(a)) if a.len() == 2 => {
            Value::Pair(float(&a[0]).ok_or_else(got)?, float(&a[1]).ok_or_else(got)?)
        }
        _ => return Err(got()),
    })
}

fn describe(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "a name",
        Kind::Int => "an integer",
        Kind::Float => "a number",
        Kind::Bool => "true or false",
        Kind::Ints => "a list of integers",
        Kind::Pair => "two numbers [A, B]",
    }
}

/// Whether a TOML value given for `key` is an axis (an array of values) rather than one value.
pub(super) fn is_axis(key: Key, v: &toml::Value) -> bool {
    match (key.kind, v) {
        (Kind::Ints | Kind::Pair, toml::Value::Array(a)) => {
            a.is_empty() || a.iter().all(|x| x.is_array())
        }
        (_, v) => v.is_array(),
    }
}

/// The options `train` takes from a run's plan values, read by the configuration's own types:
/// names by their `ValueEnum`s and hd-core's ids, numbers from the very text `train` receives
/// (so an `f32` rounds once, from the decimal, as on the command line), sizes through
/// [`ModelSpec`] as `train` builds its model. The plan module so never goes through the CLI.
pub(super) fn options(values: &[(&'static str, Value)]) -> Result<Options, String> {
    fn named<T: clap::ValueEnum>(key: &str, text: &str) -> Result<T, String> {
        T::from_str(text, false).map_err(|e| format!("--{key}={text}: {e}"))
    }
    fn number<T: std::str::FromStr<Err: fmt::Display>>(key: &str, text: &str) -> Result<T, String> {
        text.parse().map_err(|e| format!("--{key}={text}: {e}"))
    }
    let pair = |key: &str, text: &str| parse_pair(text).map_err(|e| format!("--{key}: {e}"));
    let mut o = Options::default();
    let mut model = ModelSpec::default();
    for (key, value) in values {
        let text = &value.arg();
        let flag = matches!(value, Value::Bool(true));
        match *key {
            "preset" => o.paper = named::<Preset>(key, text)? == Preset::Paper,
            "model" => model.name = Some(named(key, text)?),
            "hidden" => model.hidden = Some(number_list(key, text)?),
            "no-batch-norm" => model.no_batch_norm = flag,
            "depth" => model.depth = Some(number(key, text)?),
            "width" => model.width = Some(number(key, text)?),
            "dataset" => o.dataset = Some(named(key, text)?),
            "optimizer" => {
                o.optimizer = Some(
                    text.parse::<Variant>()
                        .map_err(|e| format!("--{key}={text}: {e}"))?,
                );
            }
            "alpha0" => o.alpha0 = Some(number(key, text)?),
            "beta" => o.beta = Some(number(key, text)?),
            "beta-mult" => o.beta_mult = Some(number(key, text)?),
            "mu" => o.mu = Some(number(key, text)?),
            "weight-decay" => o.weight_decay = Some(number(key, text)?),
            "beta1" => o.beta1 = Some(number(key, text)?),
            "beta2" => o.beta2 = Some(number(key, text)?),
            "eps" => o.eps = Some(number(key, text)?),
            "adam-sqrt-decay" => o.adam_sqrt_decay = flag,
            "scope" => o.scope = Some(named(key, text)?),
            "clamp" => o.clamp = Some(pair(key, text)?),
            "transition" => o.transition = Some(pair(key, text)?),
            "epochs" => o.epochs = Some(number(key, text)?),
            "batch-size" => o.batch_size = Some(number(key, text)?),
            "seed" => o.seed = Some(number(key, text)?),
            "stop-at-loss" => o.stop_at_loss = Some(number(key, text)?),
            // Every key of KEYS has its arm (a test gives each to both this and `train`).
            other => return Err(format!("`{other}` is not an option of train")),
        }
    }
    o.model = model.model().map_err(|e| e.to_string())?;
    Ok(o)
}

/// `A,B,…` as numbers (`--hidden`).
fn number_list(key: &str, text: &str) -> Result<Vec<i64>, String> {
    text.split(',')
        .map(|x| x.parse().map_err(|e| format!("--{key}={text}: {e}")))
        .collect()
}
