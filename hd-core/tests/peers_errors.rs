//! The peers' errors (bad input leaves everything untouched, invalid hyperparameters are
//! named) and their record (saved and resumed bit for bit, damage refused).
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

mod peer_reference;

use hd_core::{
    decode_f32s, encode_f32s, Error, Prodigy, ProdigyConfig, ScheduleFree, ScheduleFreeBase,
    ScheduleFreeConfig, TensorMut, PEER_RECORD_LEN,
};
use peer_reference::*;

/// A NaN or ∞ anywhere in any tensor's gradient is refused before anything is written, in
/// every tensor, and a length mismatch likewise; a later good step is then as if the bad
/// call had not happened.
#[test]
fn bad_input_leaves_everything_untouched() {
    let prodigy = Prodigy::new(ProdigyConfig::DEFAULT).unwrap();
    let sf = [
        ScheduleFree::new(ScheduleFreeConfig::sgd(0.1)).unwrap(),
        ScheduleFree::new(ScheduleFreeConfig::adamw(0.01)).unwrap(),
    ];
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for at in [0, 4, 5, 20, N - 1] {
            let mut g = gradient_at(3, 0, &params0(N));
            g[at] = bad;
            // Prodigy, after a few steps so that every buffer is non-zero.
            let (mut state, mut x, mut b) = prodigy_after(&prodigy, 2);
            let before = snapshot(state, &x, &b);
            assert_eq!(
                prodigy.step(&mut state, &mut x, &g, &mut b),
                Err(Error::NonFinite)
            );
            assert_eq!(snapshot(state, &x, &b), before, "prodigy {bad} at {at}");
            let mut parts = split_params(&x);
            let mut bufs = split(&b, 4);
            let gs = split_params(&g);
            let mut list: Vec<TensorMut> = parts
                .iter_mut()
                .zip(&gs)
                .zip(bufs.iter_mut())
                .map(|((params, grads), buffers)| TensorMut {
                    params,
                    grads,
                    buffers,
                })
                .collect();
            assert_eq!(
                prodigy.step_tensors(&mut state, &mut list),
                Err(Error::NonFinite)
            );
            assert_eq!(snapshot(state, &parts.concat(), &join(&bufs, 4)), before);
            for opt in sf {
                let (mut state, mut y, mut b) = schedule_free_after(&opt, 2);
                let before = snapshot(state, &y, &b);
                assert_eq!(
                    opt.step(&mut state, &mut y, &g, &mut b),
                    Err(Error::NonFinite)
                );
                assert_eq!(snapshot(state, &y, &b), before, "{opt:?} {bad} at {at}");
            }
        }
    }
    // Lengths: grads, buffers.
    let (mut state, mut x, mut b) = prodigy_after(&prodigy, 2);
    let before = snapshot(state, &x, &b);
    let g = gradient_at(3, 0, &x);
    let short = prodigy.step(&mut state, &mut x, &g[1..], &mut b);
    assert!(matches!(
        short,
        Err(Error::LengthMismatch { name: "grads", .. })
    ));
    let short = prodigy.step(&mut state, &mut x, &g, &mut b[1..]);
    assert!(matches!(
        short,
        Err(Error::LengthMismatch {
            name: "buffers",
            ..
        })
    ));
    assert_eq!(snapshot(state, &x, &b), before);
    for opt in sf {
        let (mut state, mut y, mut b) = schedule_free_after(&opt, 2);
        let before = snapshot(state, &y, &b);
        let short = opt.step(&mut state, &mut y, &g, &mut b[1..]);
        assert!(matches!(
            short,
            Err(Error::LengthMismatch {
                name: "buffers",
                ..
            })
        ));
        let mut x = vec![0.0; N - 1];
        let short = opt.eval_point(&y, &b, &mut x);
        assert!(matches!(short, Err(Error::LengthMismatch { .. })));
        assert_eq!(snapshot(state, &y, &b), before);
    }
    // The step counter.
    let (mut state, mut x, mut b) = prodigy_after(&prodigy, 1);
    state.step = u64::MAX;
    let before = snapshot(state, &x, &b);
    assert_eq!(
        prodigy.step(&mut state, &mut x, &g, &mut b),
        Err(Error::StepOverflow)
    );
    assert_eq!(snapshot(state, &x, &b), before);
}

/// Every hyperparameter out of its domain is refused by name.
#[test]
fn invalid_hyperparameters_are_named() {
    let d = ProdigyConfig::DEFAULT;
    let prodigy = [
        ("lr", ProdigyConfig { lr: 0.0, ..d }),
        ("lr", ProdigyConfig { lr: f32::NAN, ..d }),
        ("beta1", ProdigyConfig { beta1: 1.0, ..d }),
        ("beta2", ProdigyConfig { beta2: -0.1, ..d }),
        (
            "beta3",
            ProdigyConfig {
                beta3: Some(1.0),
                ..d
            },
        ),
        ("eps", ProdigyConfig { eps: 0.0, ..d }),
        (
            "weight_decay",
            ProdigyConfig {
                weight_decay: -1.0,
                ..d
            },
        ),
        (
            "weight_decay",
            ProdigyConfig {
                weight_decay: f32::INFINITY,
                ..d
            },
        ),
        ("d0", ProdigyConfig { d0: 0.0, ..d }),
        ("d_coef", ProdigyConfig { d_coef: 0.0, ..d }),
        (
            "growth_rate",
            ProdigyConfig {
                growth_rate: 0.5,
                ..d
            },
        ),
        (
            "growth_rate",
            ProdigyConfig {
                growth_rate: f32::NAN,
                ..d
            },
        ),
    ];
    for (name, c) in prodigy {
        match Prodigy::new(c) {
            Err(Error::InvalidHyperparameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(Prodigy::new(d).is_ok());
    for base in [ScheduleFreeConfig::sgd(1.0), ScheduleFreeConfig::adamw(1.0)] {
        let mut cases = vec![
            ("lr", ScheduleFreeConfig { lr: -1.0, ..base }),
            ("beta", ScheduleFreeConfig { beta: 0.0, ..base }),
            ("beta", ScheduleFreeConfig { beta: 1.0, ..base }),
            (
                "weight_decay",
                ScheduleFreeConfig {
                    weight_decay: -0.1,
                    ..base
                },
            ),
            (
                "r",
                ScheduleFreeConfig {
                    r: f32::NAN,
                    ..base
                },
            ),
            (
                "weight_lr_power",
                ScheduleFreeConfig {
                    weight_lr_power: -1.0,
                    ..base
                },
            ),
        ];
        if let ScheduleFreeBase::AdamW { eps, .. } = base.base {
            let beta2 = ScheduleFreeBase::AdamW { beta2: 1.0, eps };
            cases.push((
                "beta2",
                ScheduleFreeConfig {
                    base: beta2,
                    ..base
                },
            ));
            let eps = ScheduleFreeBase::AdamW {
                beta2: 0.9,
                eps: 0.0,
            };
            cases.push(("eps", ScheduleFreeConfig { base: eps, ..base }));
        }
        for (name, c) in cases {
            match ScheduleFree::new(c) {
                Err(Error::InvalidHyperparameter { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(ScheduleFree::new(base).is_ok());
    }
}

/// Saved after 40 steps (record and buffers) and resumed, each rule continues with the bits
/// of the uninterrupted run; a damaged record is refused, and so is the other rule's.
#[test]
fn a_saved_peer_resumes_bit_for_bit() {
    for (name, config) in prodigy_configs() {
        let opt = Prodigy::new(config).unwrap();
        let (state, x, b) = prodigy_after(&opt, 40);
        let mut record = [0u8; PEER_RECORD_LEN];
        assert_eq!(opt.encode(&state, &mut record), Ok(PEER_RECORD_LEN));
        let mut bytes = vec![0u8; 4 * b.len()];
        encode_f32s(&b, &mut bytes).unwrap();
        let (opt2, mut state2) = Prodigy::decode(&record).unwrap();
        assert_eq!((opt2, state2), (opt, state), "{name}");
        let mut b2 = vec![0.0; b.len()];
        decode_f32s(&bytes, &mut b2).unwrap();
        let (mut x2, mut state1, mut x1, mut b1) = (x.clone(), state, x, b);
        for t in 41..=60 {
            let g = gradient_at(t, 0, &x1);
            opt.step(&mut state1, &mut x1, &g, &mut b1).unwrap();
            let g = gradient_at(t, 0, &x2);
            opt2.step(&mut state2, &mut x2, &g, &mut b2).unwrap();
        }
        assert_eq!(
            (state2, bits(&x2), bits(&b2)),
            (state1, bits(&x1), bits(&b1))
        );
        assert_refused(&record, |r| Prodigy::decode(r).map(|_| ()));
        assert!(
            ScheduleFree::decode(&record).is_err(),
            "{name} read as Schedule-Free"
        );
    }
    for (name, config) in schedule_free_configs() {
        let opt = ScheduleFree::new(config).unwrap();
        let (state, y, b) = schedule_free_after(&opt, 40);
        let mut record = [0u8; PEER_RECORD_LEN];
        opt.encode(&state, &mut record).unwrap();
        let (opt2, mut state2) = ScheduleFree::decode(&record).unwrap();
        assert_eq!((opt2, state2), (opt, state), "{name}");
        let (mut y1, mut y2, mut b1, mut b2, mut state1) = (y.clone(), y, b.clone(), b, state);
        for t in 41..=60 {
            let g = gradient_at(t, 0, &y1);
            opt.step(&mut state1, &mut y1, &g, &mut b1).unwrap();
            let g = gradient_at(t, 0, &y2);
            opt2.step(&mut state2, &mut y2, &g, &mut b2).unwrap();
        }
        assert_eq!(
            (state2, bits(&y2), bits(&b2)),
            (state1, bits(&y1), bits(&b1))
        );
        assert_refused(&record, |r| ScheduleFree::decode(r).map(|_| ()));
        assert!(Prodigy::decode(&record).is_err(), "{name} read as Prodigy");
    }
    let opt = Prodigy::new(ProdigyConfig::DEFAULT).unwrap();
    let mut short = [0u8; PEER_RECORD_LEN - 1];
    assert_eq!(
        opt.encode(&opt.init_state(), &mut short),
        Err(Error::BufferTooSmall {
            needed: PEER_RECORD_LEN,
            found: PEER_RECORD_LEN - 1
        })
    );
    assert_eq!(short, [0u8; PEER_RECORD_LEN - 1]);
}

/// Every single-bit flip of `record` is refused (the CRC-32 catches them all), as are a
/// truncated record and one with a byte more; a record of another version reports it.
fn assert_refused(record: &[u8], decode: impl Fn(&[u8]) -> Result<(), Error>) {
    for byte in 0..record.len() {
        for bit in 0..8 {
            let mut r = record.to_vec();
            r[byte] ^= 1 << bit;
            assert!(
                decode(&r).is_err(),
                "flip of bit {bit} of byte {byte} accepted"
            );
        }
    }
    assert!(decode(&record[..record.len() - 1]).is_err());
    assert!(decode(&[record, &[0]].concat()).is_err());
    let mut v2 = record.to_vec();
    v2[4] = 2;
    assert_eq!(decode(&v2), Err(Error::UnsupportedVersion { found: 2 }));
}
