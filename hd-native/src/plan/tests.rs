use super::keys::{Applies, Kind};
use super::*;
use crate::cli::{Cli, Command};
use crate::config::Options;
use clap::{CommandFactory, Parser};

/// `train`'s options by their long names, and whether each is a flag (takes no value).
fn train_options() -> Vec<(String, bool)> {
    let cli = Cli::command();
    let train = cli
        .find_subcommand("train")
        .unwrap_or_else(|| unreachable!("hd-native has a train command"));
    train
        .get_arguments()
        .filter_map(|a| {
            let flag = matches!(a.get_action(), clap::ArgAction::SetTrue);
            a.get_long().map(|l| (l.to_string(), flag))
        })
        .filter(|(l, _)| l != "help")
        .collect()
}

/// Every option of `train` is a plan key or set by the sweep, and every plan key is an
/// option of `train` that takes a value exactly when the key is not a switch: an option
/// added to `train` without a plan key fails here.
#[test]
fn the_keys_are_trains_options_but_the_sweeps() {
    let options = train_options();
    for (long, flag) in &options {
        match KEYS.iter().find(|k| k.name == long) {
            Some(key) => assert_eq!(key.kind == Kind::Bool, *flag, "--{long}"),
            None => assert!(
                SWEEP_KEYS.contains(&long.as_str()),
                "--{long} is neither a plan key nor set by the sweep"
            ),
        }
    }
    for key in KEYS {
        assert!(
            options.iter().any(|(long, _)| long == key.name),
            "plan key `{}` is not an option of train",
            key.name
        );
    }
}

/// A key that applies to some optimizers only applies exactly to those `train` accepts it
/// for: each is given to a LogReg run of every optimizer, and `train`'s own checks decide.
#[test]
fn a_key_applies_to_exactly_the_optimizers_train_takes_it_for() {
    let mut checked = 0;
    for key in KEYS.iter().filter(|k| k.applies != Applies::Every) {
        // A value `train` accepts wherever the option applies.
        let value = match key.kind {
            Kind::Float => Value::Float(0.5),
            Kind::Bool => Value::Bool(true),
            Kind::Pair if key.name == "transition" => Value::Pair(2.0, 1e-3),
            Kind::Pair => Value::Pair(0.0, 1.0),
            Kind::Str if key.name == "scope" => Value::Str("per-tensor".into()),
            kind => unreachable!("no sample value of {kind:?} for `{}`", key.name),
        };
        for optimizer in Variant::ALL {
            let options = vec![
                ("model", Value::Str("logreg".into())),
                ("dataset", Value::Str("mnist".into())),
                ("optimizer", Value::Str(optimizer.id().into())),
                (key.name, value.clone()),
            ];
            let accepted = resolve(&options);
            assert_eq!(
                accepted.is_ok(),
                key.applies.to(optimizer),
                "--{} for {optimizer}: {accepted:?}",
                key.name
            );
            checked += 1;
        }
    }
    // β, β′, μ, Adam's four and α's three: 10 keys over the 9 optimizers.
    assert_eq!(checked, 10 * Variant::ALL.len());
}

/// What `train`'s own command line makes of a run's options (the sweep starts `train` with
/// them): its resolved configuration, or its error.
fn train_resolves(options: &[(&'static str, Value)]) -> Result<RunConfig, ()> {
    let mut argv: Vec<String> = ["hd-native", "train", "--data-dir", ".", "--out", "."]
        .map(String::from)
        .to_vec();
    argv.extend(train_args(options));
    let Ok(Cli {
        command: Command::Train(args),
    }) = Cli::try_parse_from(&argv)
    else {
        return Err(());
    };
    args.options().map_err(drop)?.resolve().map_err(drop)
}

fn train_args(options: &[(&'static str, Value)]) -> Vec<String> {
    Run {
        index: 0,
        id: String::new(),
        experiment: String::new(),
        options: options.to_vec(),
        config: Options {
            model: Some(crate::models::Model::Logreg),
            dataset: Some(crate::data::DatasetKind::Mnist),
            optimizer: Some(Variant::Sgd),
            ..Default::default()
        }
        .resolve()
        .expect("a LogReg SGD run"),
    }
    .train_args()
}

/// A plan resolves each run through the configuration's types, `train` through its command
/// line: for every key, with values `train` takes and values it refuses (negative, out of
/// range, of another model, not a name), both accept the same runs and resolve them alike. A
/// key added without its arm in `keys::options`, or read differently there, fails here.
#[test]
fn a_plan_resolves_a_run_exactly_as_train_does() {
    let s = |x: &str| Value::Str(x.into());
    let samples: Vec<(&'static str, Vec<Value>)> = vec![
        ("preset", vec![s("paper"), s("fast")]),
        ("model", vec![s("mlp"), s("wrn"), s("vgg"), s("resnet")]),
        (
            "hidden",
            vec![
                Value::Ints(vec![3, 5]),
                Value::Ints(vec![0]),
                Value::Ints(vec![-2]),
            ],
        ),
        ("no-batch-norm", vec![Value::Bool(true), Value::Bool(false)]),
        (
            "depth",
            vec![Value::Int(16), Value::Int(15), Value::Int(-4)],
        ),
        (
            "width",
            vec![Value::Int(2), Value::Int(0), Value::Int(1 << 40)],
        ),
        (
            "dataset",
            vec![s("fashion-mnist"), s("cifar100"), s("imagenet")],
        ),
        ("optimizer", vec![s("adam-hdm"), s("sgdn-hd"), s("rmsprop")]),
        (
            "alpha0",
            vec![Value::Float(0.1), Value::Float(-1.0), Value::Float(1e300)],
        ),
        (
            "beta",
            vec![
                Value::Float(1e-4),
                Value::Float(0.0),
                Value::Float(f64::NAN),
            ],
        ),
        ("beta-mult", vec![Value::Float(0.02), Value::Float(-0.5)]),
        ("mu", vec![Value::Float(0.5), Value::Float(1.5)]),
        (
            "weight-decay",
            vec![Value::Float(1e-4), Value::Float(-1e-4)],
        ),
        ("beta1", vec![Value::Float(0.8), Value::Float(1.0)]),
        ("beta2", vec![Value::Float(0.99), Value::Float(2.0)]),
        ("eps", vec![Value::Float(1e-6), Value::Float(0.0)]),
        ("adam-sqrt-decay", vec![Value::Bool(true)]),
        (
            "scope",
            vec![s("per-tensor"), s("per-parameter"), s("everywhere")],
        ),
        ("clamp", vec![Value::Pair(-0.1, 0.1), Value::Pair(0.2, 0.1)]),
        (
            "transition",
            vec![Value::Pair(2.0, 1e-3), Value::Pair(-1.0, 1e-3)],
        ),
        (
            "epochs",
            vec![
                Value::Int(3),
                Value::Int(0),
                Value::Int(-1),
                Value::Int(1 << 33),
            ],
        ),
        ("batch-size", vec![Value::Int(64), Value::Int(0)]),
        ("seed", vec![Value::Int(7), Value::Int(-7)]),
        ("stop-at-loss", vec![Value::Float(0.29), Value::Float(-0.1)]),
    ];
    for key in KEYS {
        assert!(
            samples.iter().any(|(k, _)| *k == key.name),
            "no sample values for `{}`",
            key.name
        );
    }
    let (mut accepted, mut refused) = (0, 0);
    for (key, values) in &samples {
        for value in values {
            // The MLP and the WideResNet take their sizes; the optimizers theirs.
            let model = match *key {
                "hidden" => "mlp",
                "no-batch-norm" => "vgg",
                "depth" | "width" => "wrn",
                _ => "logreg",
            };
            for optimizer in ["sgd-hd", "adam-hdm", "sgdn"] {
                let mut options = vec![
                    ("model", s(model)),
                    ("dataset", s("mnist")),
                    ("optimizer", s(optimizer)),
                ];
                // A key given twice (`model`, `optimizer`, …): the plan's value is the last.
                options.retain(|(k, _)| k != key);
                options.push((*key, value.clone()));
                let ours = resolve(&options);
                let train = train_resolves(&options);
                assert_eq!(
                    ours.as_ref().ok(),
                    train.as_ref().ok(),
                    "{:?}: the plan gives {ours:?}",
                    train_args(&options)
                );
                if ours.is_ok() {
                    accepted += 1;
                } else {
                    refused += 1;
                }
            }
        }
    }
    // Both kinds were seen, so neither side agreeing trivially passes.
    assert!(
        accepted > 40 && refused > 40,
        "{accepted} accepted, {refused} refused"
    );
}
