//! The byte layout: round trips, and corrupt input rejected with the right error.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use hd_core::{decode_f32s, encode_f32s, Error, Optimizer, Scope, Variant, RECORD_LEN};

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

/// Every optimizer the front ends offer ([`Variant::ALL`], which a new family joins by
/// construction) is saved and restored exactly, in every scope its rule takes.
#[test]
fn every_variant_round_trips_in_every_scope() {
    for v in Variant::ALL {
        let config = v.config(0.01, 1e-3, 0.9);
        let scopes: &[Scope] = match config.hyper {
            None => &[Scope::Global],
            Some(_) => &Scope::ALL,
        };
        for &scope in scopes {
            let config = match config.hyper {
                Some(h) => hd_core::Config {
                    hyper: Some(hd_core::Hyper { scope, ..h }),
                    ..config
                },
                None => config,
            };
            // Per-parameter α is the additive rule's only.
            if Optimizer::new(config).is_err() {
                assert_eq!(scope, Scope::PerParameter, "{v} refused in {scope:?}");
                continue;
            }
            let mut run = Run::new(config, theta0());
            run.steps(3, quadratic_grad);
            let mut bytes = [0u8; RECORD_LEN];
            assert_eq!(run.opt.encode(&run.state, &mut bytes), Ok(RECORD_LEN));
            let (decoded, state) = Optimizer::decode(&bytes).unwrap();
            assert_eq!(decoded, run.opt, "{v} {scope:?}");
            assert_eq!(state, run.state, "{v} {scope:?}");
        }
    }
}

#[test]
fn the_layout_is_little_endian_as_documented() {
    let config = hd_core::Config::sgdn(0.5, 0.25)
        .with_hd(2.0)
        .with_kappa(0.125);
    let run = Run::new(config, vec![0.0]);
    let mut b = [0u8; RECORD_LEN];
    run.opt.encode(&run.state, &mut b).unwrap();
    assert_eq!(&b[0..4], b"HDOP");
    assert_eq!(&b[4..6], &[3, 0]); // version 3
    assert_eq!(b[6], 0); // SGD
    assert_eq!(b[7], 1 | 4); // Nesterov, hyper
    assert_eq!(&b[8..10], &[0, 0]); // additive, global
    assert_eq!(&b[12..16], &0.5f32.to_le_bytes()); // α_0
    assert_eq!(&b[20..24], &0.25f32.to_le_bytes()); // μ
    assert_eq!(&b[32..36], &2.0f32.to_le_bytes()); // β
    assert_eq!(&b[52..60], &0u64.to_le_bytes()); // t
    assert_eq!(&b[60..64], &0.5f32.to_le_bytes()); // α_t
    assert_eq!(&b[64..68], &0.125f32.to_le_bytes()); // κ
    assert_eq!(&b[68..72], &2.0f32.to_le_bytes()); // β_t = β_0 before the first step
    assert_eq!(&b[72..76], &0.0f32.to_le_bytes()); // no dot product yet
    assert_eq!(&b[76..80], &crc32(&b[..76]).to_le_bytes()); // CRC-32 of the rest
}

/// Bytes 6, 8 and 9 hold the codes the module documents for the base rule, the hypergradient
/// rule and the scope, so a reordered enum cannot change what old records mean.
#[test]
fn the_coded_bytes_are_the_documented_codes() {
    use hd_core::Scope;
    let code = |config: hd_core::Config| {
        let run = Run::new(config, vec![0.0]);
        let mut b = [0u8; RECORD_LEN];
        run.opt.encode(&run.state, &mut b).unwrap();
        [b[6], b[8], b[9]]
    };
    let adam = hd_core::Config::adam(0.001);
    assert_eq!(code(adam.with_hdm(0.02)), [1, 1, 0]); // Adam, multiplicative, global
    let per_tensor = adam.with_hdm(0.02).with_scope(Scope::PerTensor);
    assert_eq!(code(per_tensor), [1, 1, 1]); // per-tensor
    let per_parameter = adam.with_hd(1e-4).with_scope(Scope::PerParameter);
    assert_eq!(code(per_parameter), [1, 0, 2]); // additive, per-parameter
}

/// CRC-32 (IEEE 802.3) written independently of hd-core's: table-driven, from the reflected
/// polynomial 0xEDB88320; checked against the standard check value below.
fn crc32(bytes: &[u8]) -> u32 {
    let table: Vec<u32> = (0..256u32)
        .map(|n| {
            (0..8).fold(n, |c, _| {
                if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                }
            })
        })
        .collect();
    !bytes.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

#[test]
fn the_test_crc_is_the_standard_one() {
    // The catalogue check value of CRC-32/ISO-HDLC ("CRC-32" of zlib and PNG).
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

/// A damaged record is refused, never resumed as another optimizer: every single-bit flip of
/// a record (the audit found about 70 % of flipped records accepted) and trailing bytes.
#[test]
fn damaged_records_and_trailing_bytes_are_refused() {
    let config = hd_core::Config::sgdn(0.01, 0.9)
        .with_hd(1e-3)
        .with_clamp(0.0, 0.1);
    let mut run = Run::new(config, theta0());
    run.steps(5, quadratic_grad);
    let mut good = [0u8; RECORD_LEN];
    run.opt.encode(&run.state, &mut good).unwrap();
    for bit in 0..RECORD_LEN * 8 {
        let mut b = good;
        b[bit / 8] ^= 1 << (bit % 8);
        assert!(
            Optimizer::decode(&b).is_err(),
            "bit {bit} flipped was accepted"
        );
    }
    let mut longer = good.to_vec();
    longer.push(0);
    assert_eq!(
        Optimizer::decode(&longer).unwrap_err(),
        Error::Corrupt {
            reason: "trailing bytes after the record"
        }
    );
    let mut b = good;
    b[76] ^= 0x10;
    assert_eq!(
        Optimizer::decode(&b).unwrap_err(),
        Error::Corrupt {
            reason: "checksum mismatch"
        }
    );
}

/// Version 1 records (64 bytes, no checksum) and version 2 records (the same 64 bytes and
/// their CRC), written as their documented layouts, still load as HD without stacking.
#[test]
fn version_1_and_2_records_are_still_read() {
    let mut run = Run::new(hd_core::Config::adam(0.001).with_hd(1e-7), theta0());
    run.steps(3, quadratic_grad);
    let mut v3 = [0u8; RECORD_LEN];
    run.opt.encode(&run.state, &mut v3).unwrap();
    let mut v1 = [0u8; 64];
    v1.copy_from_slice(&v3[..64]);
    v1[4..6].copy_from_slice(&1u16.to_le_bytes());
    assert_eq!(Optimizer::decode(&v1), Ok((run.opt, run.state)));
    // Exactly one record there too.
    let mut longer = v1.to_vec();
    longer.extend_from_slice(&[0; 4]);
    assert!(Optimizer::decode(&longer).is_err());
    let mut v2 = v1.to_vec();
    v2[4..6].copy_from_slice(&2u16.to_le_bytes());
    let crc = crc32(&v2);
    v2.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(Optimizer::decode(&v2), Ok((run.opt, run.state)));
    v2[67] ^= 1;
    assert!(Optimizer::decode(&v2).is_err());
}

#[test]
fn corrupt_records_are_rejected() {
    let run = Run::new(hd_core::Config::adam(0.001).with_hd(1e-7), vec![0.0]);
    let mut good = [0u8; RECORD_LEN];
    run.opt.encode(&run.state, &mut good).unwrap();
    // Each field is damaged and the checksum recomputed, so that the field's own check is
    // what refuses it.
    let reseal = |b: &mut [u8; RECORD_LEN]| {
        let crc = crc32(&b[..76]);
        b[76..].copy_from_slice(&crc.to_le_bytes());
    };
    let corrupt = |at: usize, v: u8| {
        let mut b = good;
        b[at] = v;
        reseal(&mut b);
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
    reseal(&mut b);
    assert!(matches!(
        Optimizer::decode(&b),
        Err(Error::InvalidHyperparameter { name: "beta2", .. })
    ));
    let mut b = good;
    b[60..64].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut b);
    assert_eq!(
        Optimizer::decode(&b).unwrap_err(),
        Error::Corrupt {
            reason: "alpha is not finite"
        }
    );
    // κ < 0 (bytes 64..68) is refused like β; a non-finite β_t (68..72) is damage.
    let mut b = good;
    b[64..68].copy_from_slice(&(-1.0f32).to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        Optimizer::decode(&b),
        Err(Error::InvalidHyperparameter { name: "kappa", .. })
    ));
    let mut b = good;
    b[68..72].copy_from_slice(&f32::INFINITY.to_le_bytes());
    reseal(&mut b);
    assert_eq!(
        Optimizer::decode(&b).unwrap_err(),
        Error::Corrupt {
            reason: "stacked HD's beta or last dot product is not finite"
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
