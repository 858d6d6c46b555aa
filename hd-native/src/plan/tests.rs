use super::keys::{Applies, Kind};
use super::*;
use clap::CommandFactory;

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
        for optimizer in OptimizerKind::ALL {
            let run = Run {
                index: 0,
                id: String::new(),
                experiment: String::new(),
                options: vec![
                    ("model", Value::Str("logreg".into())),
                    ("dataset", Value::Str("mnist".into())),
                    ("optimizer", Value::Str(optimizer.id().into())),
                    (key.name, value.clone()),
                ],
                config: placeholder_config(),
            };
            let accepted = resolve(&run);
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
    assert_eq!(checked, 10 * OptimizerKind::ALL.len());
}
