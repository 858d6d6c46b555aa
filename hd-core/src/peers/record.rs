//! A versioned little-endian record for a peer optimizer and its state, in the style of the HD
//! rules' record (`codec.rs`) but its own type, so that neither can be read as the other.
//!
//! Record layout, version 1 ([`PEER_RECORD_LEN`] bytes, all numbers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `HDPR` |
//! | 4 | 2 | version (1) |
//! | 6 | 1 | rule: 0 Prodigy, 1 Schedule-Free SGD, 2 Schedule-Free AdamW |
//! | 7 | 1 | flags (Prodigy): 1 decouple, 2 bias correction, 4 safeguard warm-up, 8 β3 given |
//! | 8 | 4 | reserved, 0 |
//! | 12 | 4 × 9 | f32 hyperparameters, below |
//! | 48 | 8 | u64: Schedule-Free's warmup_steps (0 for Prodigy) |
//! | 56 | 8 | u64: step t |
//! | 64 | 4 × 3 | f32 state: Prodigy d, d_max, r; Schedule-Free γ_max, W (high), W (low) |
//! | 76 | 4 | u32: CRC-32 of bytes 0..76 (as the HD record's) |
//!
//! Hyperparameters: Prodigy lr, β1, β2, β3 (0 unless given), ε, λ, d_0, d_coef, growth_rate;
//! Schedule-Free lr, β, β2 (0 for SGD), ε (0 for SGD), λ, r, weight_lr_power, 0, 0.

use super::prodigy::{Prodigy, ProdigyConfig, ProdigyState};
use super::schedule_free::{ScheduleFree, ScheduleFreeBase, ScheduleFreeConfig, ScheduleFreeState};
use crate::codec::crc32;
use crate::error::Error;

/// Bytes of one encoded peer record (version 1).
pub const PEER_RECORD_LEN: usize = 80;
/// Bytes covered by the checksum.
const BODY: usize = 76;
const MAGIC: [u8; 4] = *b"HDPR";
const VERSION: u16 = 1;

const PRODIGY: u8 = 0;
const SF_SGD: u8 = 1;
const SF_ADAMW: u8 = 2;

const DECOUPLE: u8 = 1;
const BIAS_CORRECTION: u8 = 2;
const SAFEGUARD: u8 = 4;
const BETA3: u8 = 8;

/// Everything a record holds, in the order written.
struct Fields {
    rule: u8,
    flags: u8,
    hyper: [f32; 9],
    warmup: u64,
    step: u64,
    state: [f32; 3],
}

impl Fields {
    fn write(&self, out: &mut [u8]) -> Result<usize, Error> {
        let Some(out) = out.get_mut(..PEER_RECORD_LEN) else {
            return Err(Error::BufferTooSmall {
                needed: PEER_RECORD_LEN,
                found: out.len(),
            });
        };
        let mut at = 0;
        let mut put = |b: &[u8]| {
            if let Some(dst) = out.get_mut(at..at + b.len()) {
                dst.copy_from_slice(b);
            }
            at += b.len();
        };
        put(&MAGIC);
        put(&VERSION.to_le_bytes());
        put(&[self.rule, self.flags, 0, 0, 0, 0]);
        for x in self.hyper {
            put(&x.to_le_bytes());
        }
        put(&self.warmup.to_le_bytes());
        put(&self.step.to_le_bytes());
        for x in self.state {
            put(&x.to_le_bytes());
        }
        let crc = crc32(out.get(..BODY).unwrap_or_default());
        if let Some(dst) = out.get_mut(BODY..PEER_RECORD_LEN) {
            dst.copy_from_slice(&crc.to_le_bytes());
        }
        Ok(PEER_RECORD_LEN)
    }

    fn read(bytes: &[u8]) -> Result<Fields, Error> {
        if bytes.len() != PEER_RECORD_LEN {
            return Err(Error::Corrupt {
                reason: "a peer record is 80 bytes",
            });
        }
        let mut at = 0;
        let mut take = |n: usize| -> &[u8] {
            let b = bytes.get(at..at + n).unwrap_or_default();
            at += n;
            b
        };
        let array = |b: &[u8]| -> [u8; 8] {
            let mut a = [0u8; 8];
            for (d, s) in a.iter_mut().zip(b) {
                *d = *s;
            }
            a
        };
        let u16_at = |b: &[u8]| {
            let [a, b, ..] = array(b);
            u16::from_le_bytes([a, b])
        };
        let f32_at = |b: &[u8]| {
            let [a, b, c, d, ..] = array(b);
            f32::from_le_bytes([a, b, c, d])
        };
        if take(4) != MAGIC {
            return Err(Error::Corrupt {
                reason: "not a peer record (bad magic)",
            });
        }
        let version = u16_at(take(2));
        if version != VERSION {
            return Err(Error::UnsupportedVersion { found: version });
        }
        let (body, stored) = bytes.split_at(BODY);
        if stored != crc32(body).to_le_bytes() {
            return Err(Error::Corrupt {
                reason: "checksum mismatch",
            });
        }
        let [rule, flags, r0, r1, r2, r3, ..] = array(take(6));
        if [r0, r1, r2, r3] != [0, 0, 0, 0] {
            return Err(Error::Corrupt {
                reason: "reserved bytes are not 0",
            });
        }
        let hyper = core::array::from_fn(|_| f32_at(take(4)));
        let warmup = u64::from_le_bytes(array(take(8)));
        let step = u64::from_le_bytes(array(take(8)));
        let state: [f32; 3] = core::array::from_fn(|_| f32_at(take(4)));
        if !state.iter().all(|x| x.is_finite()) {
            return Err(Error::Corrupt {
                reason: "state is not finite",
            });
        }
        Ok(Fields {
            rule,
            flags,
            hyper,
            warmup,
            step,
            state,
        })
    }
}

impl Prodigy {
    /// Writes the hyperparameters and `state` into `out[..PEER_RECORD_LEN]`; returns
    /// [`PEER_RECORD_LEN`].
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than [`PEER_RECORD_LEN`]; nothing is
    /// written.
    pub fn encode(&self, state: &ProdigyState, out: &mut [u8]) -> Result<usize, Error> {
        let c = self.config();
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        Fields {
            rule: PRODIGY,
            flags: flag(c.decouple, DECOUPLE)
                | flag(c.use_bias_correction, BIAS_CORRECTION)
                | flag(c.safeguard_warmup, SAFEGUARD)
                | flag(c.beta3.is_some(), BETA3),
            hyper: [
                c.lr,
                c.beta1,
                c.beta2,
                c.beta3.unwrap_or(0.0),
                c.eps,
                c.weight_decay,
                c.d0,
                c.d_coef,
                c.growth_rate,
            ],
            warmup: 0,
            step: state.step,
            state: [state.d, state.d_max, state.numerator],
        }
        .write(out)
    }

    /// Reads a record written by [`encode`](Prodigy::encode), validating it as
    /// [`Prodigy::new`] does. `bytes` must be exactly one record.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (wrong length, magic, checksum, rule, flags; a non-finite state or
    /// d ≤ 0), [`Error::UnsupportedVersion`], or the hyperparameter errors of
    /// [`Prodigy::new`].
    pub fn decode(bytes: &[u8]) -> Result<(Prodigy, ProdigyState), Error> {
        let f = Fields::read(bytes)?;
        if f.rule != PRODIGY {
            return Err(Error::Corrupt {
                reason: "not a Prodigy record",
            });
        }
        if f.flags & !(DECOUPLE | BIAS_CORRECTION | SAFEGUARD | BETA3) != 0 || f.warmup != 0 {
            return Err(Error::Corrupt {
                reason: "unknown flags",
            });
        }
        let [lr, beta1, beta2, beta3, eps, weight_decay, d0, d_coef, growth_rate] = f.hyper;
        let opt = Prodigy::new(ProdigyConfig {
            lr,
            beta1,
            beta2,
            beta3: (f.flags & BETA3 != 0).then_some(beta3),
            eps,
            weight_decay,
            decouple: f.flags & DECOUPLE != 0,
            use_bias_correction: f.flags & BIAS_CORRECTION != 0,
            safeguard_warmup: f.flags & SAFEGUARD != 0,
            d0,
            d_coef,
            growth_rate,
        })?;
        let [d, d_max, numerator] = f.state;
        if !(d > 0.0 && d_max > 0.0) {
            return Err(Error::Corrupt {
                reason: "d is not positive",
            });
        }
        Ok((
            opt,
            ProdigyState {
                step: f.step,
                d,
                d_max,
                numerator,
            },
        ))
    }
}

impl ScheduleFree {
    /// Writes the hyperparameters and `state` into `out[..PEER_RECORD_LEN]`; returns
    /// [`PEER_RECORD_LEN`].
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than [`PEER_RECORD_LEN`]; nothing is
    /// written.
    pub fn encode(&self, state: &ScheduleFreeState, out: &mut [u8]) -> Result<usize, Error> {
        let c = self.config();
        let (rule, beta2, eps) = match c.base {
            ScheduleFreeBase::Sgd => (SF_SGD, 0.0, 0.0),
            ScheduleFreeBase::AdamW { beta2, eps } => (SF_ADAMW, beta2, eps),
        };
        Fields {
            rule,
            flags: 0,
            hyper: [
                c.lr,
                c.beta,
                beta2,
                eps,
                c.weight_decay,
                c.r,
                c.weight_lr_power,
                0.0,
                0.0,
            ],
            warmup: c.warmup_steps,
            step: state.step,
            state: [state.lr_max, state.weight_sum, state.weight_sum_low],
        }
        .write(out)
    }

    /// Reads a record written by [`encode`](ScheduleFree::encode), validating it as
    /// [`ScheduleFree::new`] does. `bytes` must be exactly one record.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (wrong length, magic, checksum, rule, flags; a non-finite state),
    /// [`Error::UnsupportedVersion`], or the hyperparameter errors of [`ScheduleFree::new`].
    pub fn decode(bytes: &[u8]) -> Result<(ScheduleFree, ScheduleFreeState), Error> {
        let f = Fields::read(bytes)?;
        let [lr, beta, beta2, eps, weight_decay, r, weight_lr_power, p0, p1] = f.hyper;
        let base = match f.rule {
            SF_SGD if beta2 == 0.0 && eps == 0.0 => ScheduleFreeBase::Sgd,
            SF_ADAMW => ScheduleFreeBase::AdamW { beta2, eps },
            _ => {
                return Err(Error::Corrupt {
                    reason: "not a Schedule-Free record",
                })
            }
        };
        if f.flags != 0 || p0 != 0.0 || p1 != 0.0 {
            return Err(Error::Corrupt {
                reason: "unknown flags",
            });
        }
        let opt = ScheduleFree::new(ScheduleFreeConfig {
            base,
            lr,
            beta,
            weight_decay,
            warmup_steps: f.warmup,
            r,
            weight_lr_power,
        })?;
        let [lr_max, weight_sum, weight_sum_low] = f.state;
        Ok((
            opt,
            ScheduleFreeState {
                step: f.step,
                lr_max,
                weight_sum,
                weight_sum_low,
            },
        ))
    }
}
