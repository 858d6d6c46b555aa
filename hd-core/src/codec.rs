//! A versioned little-endian byte layout for an optimizer and its state, written and read
//! without allocation, so a microcontroller or a checkpoint can save and restore it exactly.
//!
//! Record layout, version 3 ([`RECORD_LEN`] bytes, all numbers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `HDOP` |
//! | 4 | 2 | version (3) |
//! | 6 | 1 | base: 0 SGD, 1 Adam |
//! | 7 | 1 | flags: 1 Nesterov, 2 Adam 1/√t, 4 hyper, 8 clamp, 16 transition |
//! | 8 | 1 | hyper rule: 0 additive, 1 multiplicative |
//! | 9 | 1 | scope: 0 global, 1 per-tensor, 2 per-parameter |
//! | 10 | 2 | reserved, 0 |
//! | 12 | 4 × 9 | f32: α_0, λ, μ or β1, 0 or β2, 0 or ε, β, clamp lo, clamp hi, p |
//! | 48 | 4 | f32: α_∞ |
//! | 52 | 8 | u64: step t |
//! | 60 | 4 | f32: α_t |
//! | 64 | 4 × 3 | f32: κ, β_t, g_t·d_{t−1} (stacked HD's state; κ = 0 otherwise) |
//! | 76 | 4 | u32: CRC-32 of bytes 0..76 |
//!
//! The CRC is the common CRC-32 (IEEE 802.3, zlib, PNG: reflected polynomial 0xEDB88320,
//! initial value and final XOR 0xFFFFFFFF; "123456789" gives 0xCBF43926). It detects every
//! error of up to 3 bits and every burst of up to 32 bits, so a damaged checkpoint is refused
//! rather than resumed as a different optimizer. Older records are still read, as HD without
//! stacking (κ = 0): version 2 (the first 64 bytes above, then the CRC of those 64 bytes) and
//! version 1 (the first 64 bytes, no CRC).
//!
//! Per-element buffers are plain f32 arrays: [`encode_f32s`] / [`decode_f32s`].

use crate::macros::enum_with_all;
use crate::{
    Adam, Base, Config, Error, Hyper, HyperRule, Optimizer, Scope, Sgd, State, Transition,
};

/// Bytes of one encoded optimizer record (the current version, 3).
pub const RECORD_LEN: usize = 80;
/// Bytes of a version 1 record: the fields every version shares, no checksum.
const RECORD_LEN_V1: usize = 64;
/// Bytes of a version 2 record: version 1's fields and their CRC.
const RECORD_LEN_V2: usize = 68;
const MAGIC: [u8; 4] = *b"HDOP";
const VERSION: u16 = 3;

/// CRC-32 (IEEE 802.3) of `bytes`, bit by bit: a few dozen bytes of code and no table, which
/// suits a record read once per resume.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

const NESTEROV: u8 = 1;
const SQRT_DECAY: u8 = 2;
const HYPER: u8 = 4;
const CLAMP: u8 = 8;
const TRANSITION: u8 = 16;

// The coded bytes (6, 8 and 9). Each code is a position in an `ALL` that holds every value:
// `HyperRule::ALL` and `Scope::ALL` for bytes 8 and 9, and for byte 6 the tags below, which
// map to and from `Base` (whose rules carry parameters) by exhaustive matches. So a new base
// rule does not compile until it has a tag, and every code `encode` writes `decode` reads;
// tests/codec.rs pins the documented codes.

enum_with_all! {
    /// Byte 6: the base rule.
    #[derive(Clone, Copy)]
    enum BaseTag {
        Sgd,
        Adam,
    }
    ALL;
}

impl BaseTag {
    /// `base`'s tag, its flags and its parameters (μ or β1, 0 or β2, 0 or ε).
    fn of(base: Base) -> (BaseTag, u8, [f32; 3]) {
        match base {
            Base::Sgd(s) => (
                BaseTag::Sgd,
                if s.nesterov { NESTEROV } else { 0 },
                [s.momentum, 0.0, 0.0],
            ),
            Base::Adam(a) => (
                BaseTag::Adam,
                if a.sqrt_decay { SQRT_DECAY } else { 0 },
                [a.beta1, a.beta2, a.eps],
            ),
        }
    }

    /// The base rule [`of`](BaseTag::of) wrote as this tag, `flags` and `p`.
    fn base(self, flags: u8, p: [f32; 3]) -> Base {
        let [p0, p1, p2] = p;
        match self {
            BaseTag::Sgd => Base::Sgd(Sgd {
                momentum: p0,
                nesterov: flags & NESTEROV != 0,
            }),
            BaseTag::Adam => Base::Adam(Adam {
                beta1: p0,
                beta2: p1,
                eps: p2,
                sqrt_decay: flags & SQRT_DECAY != 0,
            }),
        }
    }
}

/// The value coded as `code` in `all` (a type's `ALL`), or [`Error::Corrupt`] with `reason`.
fn tag<T: Copy>(all: &[T], code: u8, reason: &'static str) -> Result<T, Error> {
    all.get(usize::from(code))
        .copied()
        .ok_or(Error::Corrupt { reason })
}

/// A cursor over a fixed byte slice; every access is bounds-checked and never panics.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.at..self.at + b.len()) {
            dst.copy_from_slice(b);
        }
        self.at += b.len();
    }
    fn f32(&mut self, x: f32) {
        self.bytes(&x.to_le_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let b = self
            .bytes
            .get(self.at..self.at + N)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or(Error::Corrupt {
                reason: "truncated",
            })?;
        self.at += N;
        Ok(b)
    }
    fn f32(&mut self) -> Result<f32, Error> {
        Ok(f32::from_le_bytes(self.take()?))
    }
}

impl Optimizer {
    /// Writes the hyperparameters and `state` into `out[..RECORD_LEN]`; returns [`RECORD_LEN`].
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than [`RECORD_LEN`]; nothing is written.
    pub fn encode(&self, state: &State, out: &mut [u8]) -> Result<usize, Error> {
        if out.len() < RECORD_LEN {
            return Err(Error::BufferTooSmall {
                needed: RECORD_LEN,
                found: out.len(),
            });
        }
        let c = self.config();
        let (base, mut flags, p) = BaseTag::of(c.base);
        let h = c.hyper.unwrap_or(Hyper::additive(0.0));
        if c.hyper.is_some() {
            flags |= HYPER;
        }
        let (lo, hi) = h.clamp.unwrap_or((0.0, 0.0));
        if h.clamp.is_some() {
            flags |= CLAMP;
        }
        let tr = h.transition.unwrap_or(Transition {
            power: 0.0,
            alpha_inf: 0.0,
        });
        if h.transition.is_some() {
            flags |= TRANSITION;
        }
        // A code is the discriminant: the position in the declaration, so in `ALL`.
        let (rule, scope) = (h.rule as u8, h.scope as u8);
        let mut w = Writer { out, at: 0 };
        w.bytes(&MAGIC);
        w.bytes(&VERSION.to_le_bytes());
        w.bytes(&[base as u8, flags, rule, scope, 0, 0]);
        for x in [
            c.alpha0,
            c.weight_decay,
            p[0],
            p[1],
            p[2],
            h.beta,
            lo,
            hi,
            tr.power,
        ] {
            w.f32(x);
        }
        w.f32(tr.alpha_inf);
        w.bytes(&state.step.to_le_bytes());
        w.f32(state.alpha);
        for x in [h.kappa, state.beta, state.previous_dot] {
            w.f32(x);
        }
        let crc = crc32(w.out.get(..RECORD_LEN - 4).unwrap_or_default());
        w.bytes(&crc.to_le_bytes());
        Ok(w.at)
    }

    /// Reads a record written by [`encode`](Optimizer::encode) (or a version 1 or 2 record),
    /// validating it as [`Optimizer::new`] does. `bytes` must be exactly one record.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (bad magic, truncated, trailing bytes, checksum mismatch, unknown
    /// tag or flag, non-finite α_t), [`Error::UnsupportedVersion`],
    /// [`Error::InvalidHyperparameter`], [`Error::InconsistentHyperparameters`].
    pub fn decode(bytes: &[u8]) -> Result<(Optimizer, State), Error> {
        let mut r = Reader { bytes, at: 0 };
        if r.take::<4>()? != MAGIC {
            return Err(Error::Corrupt {
                reason: "bad magic",
            });
        }
        let version = u16::from_le_bytes(r.take()?);
        let len = match version {
            1 => RECORD_LEN_V1,
            2 => RECORD_LEN_V2,
            VERSION => RECORD_LEN,
            _ => return Err(Error::UnsupportedVersion { found: version }),
        };
        if bytes.len() < len {
            return Err(Error::Corrupt {
                reason: "truncated",
            });
        }
        if bytes.len() > len {
            return Err(Error::Corrupt {
                reason: "trailing bytes after the record",
            });
        }
        if version > 1 {
            let (body, stored) = bytes.split_at(len - 4);
            if stored != crc32(body).to_le_bytes() {
                return Err(Error::Corrupt {
                    reason: "checksum mismatch",
                });
            }
        }
        let [base, flags, rule, scope, r0, r1] = r.take::<6>()?;
        if flags & !(NESTEROV | SQRT_DECAY | HYPER | CLAMP | TRANSITION) != 0 || r0 != 0 || r1 != 0
        {
            return Err(Error::Corrupt {
                reason: "unknown flags",
            });
        }
        let mut f = [0.0f32; 9];
        for x in f.iter_mut() {
            *x = r.f32()?;
        }
        let [alpha0, weight_decay, p0, p1, p2, beta, lo, hi, power] = f;
        let alpha_inf = r.f32()?;
        let step = u64::from_le_bytes(r.take()?);
        let alpha = r.f32()?;
        let [kappa, beta_t, previous_dot] = match version {
            VERSION => [r.f32()?, r.f32()?, r.f32()?],
            _ => [0.0, beta, 0.0],
        };
        let base = tag(&BaseTag::ALL, base, "unknown base rule")?.base(flags, [p0, p1, p2]);
        let rule = tag(&HyperRule::ALL, rule, "unknown hypergradient rule")?;
        let scope = tag(&Scope::ALL, scope, "unknown scope")?;
        let hyper = (flags & HYPER != 0).then_some(Hyper {
            rule,
            beta,
            scope,
            clamp: (flags & CLAMP != 0).then_some((lo, hi)),
            transition: (flags & TRANSITION != 0).then_some(Transition { power, alpha_inf }),
            kappa,
        });
        let opt = Optimizer::new(Config {
            base,
            alpha0,
            weight_decay,
            hyper,
        })?;
        if !alpha.is_finite() {
            return Err(Error::Corrupt {
                reason: "alpha is not finite",
            });
        }
        if !(beta_t.is_finite() && previous_dot.is_finite()) {
            return Err(Error::Corrupt {
                reason: "stacked HD's beta or last dot product is not finite",
            });
        }
        let state = State {
            step,
            alpha,
            beta: beta_t,
            previous_dot,
        };
        Ok((opt, state))
    }
}

/// Writes `values` as little-endian f32s into `out`; returns the bytes written (4 per value).
///
/// # Errors
/// [`Error::BufferTooSmall`] if `out` is too short; nothing is written.
pub fn encode_f32s(values: &[f32], out: &mut [u8]) -> Result<usize, Error> {
    let needed = values.len().saturating_mul(4);
    if out.len() < needed {
        return Err(Error::BufferTooSmall {
            needed,
            found: out.len(),
        });
    }
    for (chunk, v) in out.chunks_exact_mut(4).zip(values) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    Ok(needed)
}

/// Reads `out.len()` little-endian f32s from `bytes`, which must hold exactly that many.
///
/// # Errors
/// [`Error::LengthMismatch`] if `bytes.len() != 4 · out.len()`; `out` is unchanged.
pub fn decode_f32s(bytes: &[u8], out: &mut [f32]) -> Result<(), Error> {
    let expected = out.len().saturating_mul(4);
    if bytes.len() != expected {
        return Err(Error::LengthMismatch {
            name: "bytes",
            expected,
            found: bytes.len(),
        });
    }
    for (v, chunk) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        let mut b = [0u8; 4];
        b.copy_from_slice(chunk);
        *v = f32::from_le_bytes(b);
    }
    Ok(())
}
