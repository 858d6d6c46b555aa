//! The byte layout: round trips, and corrupt input rejected with the right error.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use hd_core::{decode_f32s, encode_f32s, Error, Optimizer, RECORD_LEN};

#[test]
fn every_config_round_trips_exactly() {
    for (name, config) in all_configs() {
        let mut run = Run::new(config, theta0());
        run.steps(7, quadratic_grad);
        let mut bytes = [0u8; RECORD_LEN];
        assert_eq!(run.opt.encode(&run.state, &mut bytes), Ok(RECORD_LEN));
        let (opt, state) = Optimizer::decode(&bytes).unwrap();
        assert_eq!(opt, run.opt, "{name}");
        assert_eq!(state, run.state, "{name}");
    }
}

#[test]
fn the_layout_is_little_endian_as_documented() {
    let run = Run::new(hd_core::Config::sgdn(0.5, 0.25).with_hd(2.0), vec![0.0]);
    let mut b = [0u8; RECORD_LEN];
    run.opt.encode(&run.state, &mut b).unwrap();
    assert_eq!(&b[0..4], b"HDOP");
    assert_eq!(&b[4..6], &[1, 0]); // version 1
    assert_eq!(b[6], 0); // SGD
    assert_eq!(b[7], 1 | 4); // Nesterov, hyper
    assert_eq!(&b[12..16], &0.5f32.to_le_bytes()); // α_0
    assert_eq!(&b[20..24], &0.25f32.to_le_bytes()); // μ
    assert_eq!(&b[32..36], &2.0f32.to_le_bytes()); // β
    assert_eq!(&b[52..60], &0u64.to_le_bytes()); // t
    assert_eq!(&b[60..64], &0.5f32.to_le_bytes()); // α_t
}

#[test]
fn corrupt_records_are_rejected() {
    let run = Run::new(hd_core::Config::adam(0.001).with_hd(1e-7), vec![0.0]);
    let mut good = [0u8; RECORD_LEN];
    run.opt.encode(&run.state, &mut good).unwrap();
    let corrupt = |at: usize, v: u8| {
        let mut b = good;
        b[at] = v;
        Optimizer::decode(&b)
    };
    assert_eq!(
        corrupt(0, b'X').unwrap_err(),
        Error::Corrupt {
            reason: "bad magic"
        }
    );
    assert_eq!(
        corrupt(4, 9).unwrap_err(),
        Error::UnsupportedVersion { found: 9 }
    );
    assert_eq!(
        corrupt(6, 7).unwrap_err(),
        Error::Corrupt {
            reason: "unknown base rule"
        }
    );
    assert_eq!(
        corrupt(7, 0x80).unwrap_err(),
        Error::Corrupt {
            reason: "unknown flags"
        }
    );
    assert_eq!(
        corrupt(9, 3).unwrap_err(),
        Error::Corrupt {
            reason: "unknown scope"
        }
    );
    assert_eq!(
        Optimizer::decode(&good[..40]).unwrap_err(),
        Error::Corrupt {
            reason: "truncated"
        }
    );
    // β2 = 1.5 (bytes 24..28) is decoded, then refused by the same validation as Optimizer::new.
    let mut b = good;
    b[24..28].copy_from_slice(&1.5f32.to_le_bytes());
    assert!(matches!(
        Optimizer::decode(&b),
        Err(Error::InvalidHyperparameter { name: "beta2", .. })
    ));
    let mut b = good;
    b[60..64].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_eq!(
        Optimizer::decode(&b).unwrap_err(),
        Error::Corrupt {
            reason: "alpha is not finite"
        }
    );
}

#[test]
fn short_output_buffers_are_refused_without_writing() {
    let run = Run::new(hd_core::Config::sgd(0.1), vec![0.0]);
    let mut b = [7u8; RECORD_LEN - 1];
    assert_eq!(
        run.opt.encode(&run.state, &mut b),
        Err(Error::BufferTooSmall {
            needed: RECORD_LEN,
            found: RECORD_LEN - 1
        })
    );
    assert!(b.iter().all(|&x| x == 7));
    let mut small = [7u8; 7];
    assert_eq!(
        encode_f32s(&[1.0, 2.0], &mut small),
        Err(Error::BufferTooSmall {
            needed: 8,
            found: 7
        })
    );
    let mut out = [9.0f32; 2];
    assert!(matches!(
        decode_f32s(&[0u8; 7], &mut out),
        Err(Error::LengthMismatch { .. })
    ));
    assert_eq!(out, [9.0, 9.0]);
}
