//! The learning-rate-free peers in the trainer: they learn, they take exactly hd-core's steps
//! on the trainer's gradients, Schedule-Free is evaluated at x, and bad knobs are refused.

use super::tests::{schedule, separable, settings};
use super::*;
use hd_core::{
    Prodigy, ProdigyConfig, ProdigyState, ScheduleFree, ScheduleFreeConfig, ScheduleFreeState,
};

/// Each peer at a knob that suits the separable problem: the packages' defaults (Prodigy's
/// d_0 = 1e-6, Schedule-Free SGD's lr = 1, Schedule-Free AdamW's lr = 0.0025).
const PEERS: [(Peer, f32); 3] = [
    (Peer::Prodigy, 1e-6),
    (Peer::ScheduleFreeSgd, 1.0),
    (Peer::ScheduleFreeAdamW, 0.0025),
];

#[test]
fn ids_labels_and_knobs() {
    for peer in Peer::ALL {
        assert_eq!(parse_method(peer.id()).unwrap(), Method::Peer(peer));
    }
    for variant in Variant::ALL {
        assert_eq!(parse_method(variant.id()).unwrap(), Method::Paper(variant));
        assert_eq!(Method::Paper(variant).knob(), "α0");
    }
    let ids: Vec<_> = Peer::ALL.iter().map(|p| p.id()).collect();
    assert_eq!(ids, ["prodigy", "sf-sgd", "sf-adamw"]);
    assert_eq!(Method::Peer(Peer::Prodigy).knob(), "d0");
    assert_eq!(Peer::ScheduleFreeAdamW.knob(), "lr");
    assert_eq!(Peer::ScheduleFreeSgd.label(), "Schedule-Free SGD");
    let err = parse_method("adagrad").unwrap_err().to_string();
    assert!(err.contains("\"adagrad\""), "{err}");
    assert!(
        err.ends_with("adam-hdm, prodigy, sf-sgd, sf-adamw"),
        "{err}"
    );
    // The β sweep scales β, which no peer has.
    assert!(parse_optimizer("prodigy").is_err());
}

#[test]
fn every_peer_learns_a_separable_problem() {
    let mut t = Trainer::new(separable(200), settings(schedule(16, 5))).unwrap();
    for (peer, knob) in PEERS {
        t.add_peer_run(peer, knob).unwrap();
    }
    t.step(u32::MAX).unwrap();
    assert!(t.finished());
    for (run, (peer, knob)) in t.runs().iter().zip(PEERS) {
        assert_eq!(run.method(), Method::Peer(peer));
        assert_eq!(run.status(), Status::Finished, "{peer:?}");
        assert_eq!((run.knob(), run.beta()), (knob, None));
        let train = run.epoch_train_loss();
        assert!(train[5] < 0.5 * train[0], "{peer:?}: {train:?}");
        let test = run.epoch_test_loss();
        assert!(test[5] < 0.5 * test[0], "{peer:?}: {test:?}");
        assert!(*run.epoch_test_accuracy().last().unwrap() > 0.9, "{peer:?}");
        // No hypergradient, so no signal.
        assert!(run.iteration_signal().iter().all(|s| s.is_nan()));
    }
}

/// A peer stepped by the test itself through hd-core, for comparison with the trainer's run.
enum Reference {
    Prodigy(Prodigy, ProdigyState),
    ScheduleFree(ScheduleFree, ScheduleFreeState),
}

impl Reference {
    /// `peer` configured as DESIGN §2 and the trainer's doc say: the package's defaults, the
    /// knob, and the paper's L2 as the package's weight decay (coupled for Prodigy).
    fn new(peer: Peer, knob: f32) -> Reference {
        let l2 = Hyperparameters::PAPER.l2;
        let sf = |c: ScheduleFreeConfig| {
            let opt = ScheduleFree::new(ScheduleFreeConfig {
                weight_decay: l2,
                ..c
            })
            .unwrap();
            Reference::ScheduleFree(opt, opt.init_state())
        };
        match peer {
            Peer::Prodigy => {
                let opt = Prodigy::new(ProdigyConfig {
                    d0: knob,
                    weight_decay: l2,
                    decouple: false,
                    ..ProdigyConfig::DEFAULT
                })
                .unwrap();
                Reference::Prodigy(opt, opt.init_state())
            }
            Peer::ScheduleFreeSgd => sf(ScheduleFreeConfig::sgd(knob)),
            Peer::ScheduleFreeAdamW => sf(ScheduleFreeConfig::adamw(knob)),
        }
    }

    fn buffers(&self, params: &[f32]) -> Vec<f32> {
        let mut b = match self {
            Reference::Prodigy(o, _) => vec![0.0; o.buffer_len(params.len()).unwrap()],
            Reference::ScheduleFree(o, _) => vec![0.0; o.buffer_len(params.len()).unwrap()],
        };
        match self {
            Reference::Prodigy(o, _) => o.init_buffers(params, &mut b).unwrap(),
            Reference::ScheduleFree(o, _) => o.init_buffers(params, &mut b).unwrap(),
        }
        b
    }

    fn step(&mut self, params: &mut [f32], grad: &[f32], buffers: &mut [f32]) {
        match self {
            Reference::Prodigy(o, s) => o.step(s, params, grad, buffers).unwrap(),
            Reference::ScheduleFree(o, s) => o.step(s, params, grad, buffers).unwrap(),
        }
    }

    /// The step size the page shows: Prodigy's d·lr, Schedule-Free's lr.
    fn alpha(&self) -> f32 {
        match self {
            Reference::Prodigy(o, s) => s.d * o.config().lr,
            Reference::ScheduleFree(o, _) => o.config().lr,
        }
    }

    /// Where the model is evaluated: the parameters, or Schedule-Free's x.
    fn model(&self, params: &[f32], buffers: &[f32]) -> Vec<f32> {
        match self {
            Reference::Prodigy(..) => params.to_vec(),
            Reference::ScheduleFree(o, _) => {
                let mut x = vec![0.0; params.len()];
                o.eval_point(params, buffers, &mut x).unwrap();
                x
            }
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn peers_take_exactly_hd_cores_steps_on_the_trainers_gradients() {
    // Two epochs of 8 minibatches, so the order is reshuffled once; small knobs and large
    // ones, so that Prodigy's d both grows from d_0 and stays at a d_0 already too large.
    let cases = [
        (Peer::Prodigy, 1e-6),
        (Peer::Prodigy, 1e-1),
        (Peer::ScheduleFreeSgd, 1e-2),
        (Peer::ScheduleFreeAdamW, 1e-3),
    ];
    let mut t = Trainer::new(separable(200), settings(schedule(20, 2))).unwrap();
    for (peer, knob) in cases {
        t.add_peer_run(peer, knob).unwrap();
    }
    let data = Rc::clone(&t.data);
    let mut refs: Vec<_> = cases.iter().map(|&(p, k)| Reference::new(p, k)).collect();
    let mut params = vec![vec![0.0f32; PARAMS]; cases.len()];
    let mut buffers: Vec<_> = refs
        .iter()
        .zip(&params)
        .map(|(r, p)| r.buffers(p))
        .collect();
    let mut grad = vec![0.0f32; PARAMS];
    while !t.finished() {
        // The minibatch the trainer takes: its order is shuffled when an epoch starts.
        let start = t.cursor;
        assert_eq!(t.step(1).unwrap(), 1);
        let end = if t.cursor == 0 {
            t.order.len()
        } else {
            t.cursor
        };
        let batch = t.order[start..end].to_vec();
        for (i, r) in refs.iter_mut().enumerate() {
            let loss =
                model::loss_and_gradient(&params[i], &data, t.inputs, &batch, &mut grad).unwrap();
            r.step(&mut params[i], &grad, &mut buffers[i]);
            let run = &t.runs()[i];
            let label = format!(
                "{:?} at {}, iteration {}",
                cases[i].0, cases[i].1, t.iteration
            );
            assert_eq!(bits(run.params()), bits(&params[i]), "{label}");
            assert_eq!(run.iteration_loss().last(), Some(&loss), "{label}");
            assert_eq!(run.alpha().to_bits(), r.alpha().to_bits(), "{label}");
        }
    }
    assert_eq!(t.iteration(), 16);
    for (i, r) in refs.iter().enumerate() {
        let run = &t.runs()[i];
        // The test loss is the model's: Schedule-Free's x, not the y it trains at.
        let model = r.model(&params[i], &buffers[i]);
        assert_eq!(bits(&run.model().unwrap()), bits(&model));
        let (test_loss, _) = model::evaluate(&model, &data, t.inputs, &t.test).unwrap();
        assert_eq!(run.epoch_test_loss().last(), Some(&test_loss));
        if let Reference::ScheduleFree(..) = r {
            assert_ne!(bits(&model), bits(run.params()), "x and y coincide");
        }
    }
    // Prodigy's d grew from 1e-6; from 1e-1 it stays (d never shrinks below d_0).
    assert!(t.runs()[0].alpha() > 1e-5, "{}", t.runs()[0].alpha());
    assert!(t.runs()[1].alpha() >= 1e-1);
}

#[test]
fn bad_peer_settings_are_refused_with_the_peer_and_the_setting_named() {
    let mut t = Trainer::new(separable(100), settings(schedule(10, 1))).unwrap();
    for d0 in [0.0, -1e-6, f32::NAN, f32::INFINITY] {
        let err = t.add_peer_run(Peer::Prodigy, d0).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Peer {
                    peer: Peer::Prodigy,
                    error: hd_core::Error::InvalidHyperparameter { name: "d0", .. }
                }
            ),
            "{d0}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            "Prodigy: invalid hyperparameter d0: must be finite and > 0"
        );
    }
    for peer in [Peer::ScheduleFreeSgd, Peer::ScheduleFreeAdamW] {
        for lr in [-1e-3, f32::NAN] {
            let err = t.add_peer_run(peer, lr).unwrap_err();
            let Error::Peer { peer: named, error } = &err else {
                panic!("{peer:?} {lr}: {err:?}");
            };
            assert_eq!(*named, peer);
            assert!(
                matches!(
                    error,
                    hd_core::Error::InvalidHyperparameter { name: "lr", .. }
                ),
                "{peer:?} {lr}: {err:?}"
            );
            assert!(err.to_string().starts_with(peer.label()), "{err}");
        }
    }
    assert!(t.runs().is_empty(), "a refused run was added");
    t.add_peer_run(Peer::Prodigy, 1e-6).unwrap();
    t.step(1).unwrap();
    assert!(matches!(
        t.add_peer_run(Peer::ScheduleFreeSgd, 0.1),
        Err(Error::Settings(_))
    ));
}
