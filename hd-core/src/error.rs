//! The one error type of hd-core.

use core::fmt;

/// Everything that can go wrong in hd-core. Every fallible call checks its input before it
/// writes anything, so an `Err` always leaves parameters, buffers and state exactly as they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A hyperparameter is out of its domain, e.g. `beta < 0` or `eps <= 0`.
    InvalidHyperparameter {
        /// Its name as in the paper (`alpha0`, `beta`, `mu`, `beta1`, …).
        name: &'static str,
        /// What it must satisfy, e.g. `"finite and >= 0"`.
        requirement: &'static str,
    },
    /// Two hyperparameters, each valid alone, that contradict each other, e.g. a clamp range
    /// that excludes α_0 (the first step must use α_0).
    InconsistentHyperparameters {
        /// The first one's name (`alpha0`, …).
        first: &'static str,
        /// The second one's name (`clamp`, …).
        second: &'static str,
        /// What they must satisfy together, e.g. `"lo <= alpha0 <= hi"`.
        requirement: &'static str,
    },
    /// Two slices that must match in length do not.
    LengthMismatch {
        /// Which slice is wrong (`grads`, `buffers`, `states`, …).
        name: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        found: usize,
    },
    /// The gradient holds a NaN or an infinity, or is so large that the hypergradient or the
    /// new learning rate overflows. Nothing was changed.
    NonFinite,
    /// The step counter would overflow `u64`.
    StepOverflow,
    /// An output byte buffer is too short.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        found: usize,
    },
    /// Serialised bytes that are not an hd-core record (bad magic, wrong length, bad tag).
    Corrupt {
        /// What is wrong with them.
        reason: &'static str,
    },
    /// A name that is not one of [`Variant`](crate::Variant)'s ids.
    UnknownOptimizer,
    /// A record written by a layout version this build does not read.
    UnsupportedVersion {
        /// The version found in the record.
        found: u16,
    },
}

impl Error {
    /// `Ok` when `holds`, else [`Error::InvalidHyperparameter`] naming `name` and what it
    /// must satisfy: one line per check in the rules' `validate`.
    #[inline(always)]
    pub(crate) fn require(
        holds: bool,
        name: &'static str,
        requirement: &'static str,
    ) -> Result<(), Error> {
        if holds {
            Ok(())
        } else {
            Err(Error::InvalidHyperparameter { name, requirement })
        }
    }

    /// Checks that `grads` has `params`' length and `buffers` holds `slots` slots of it.
    #[inline(always)]
    pub(crate) fn check_lengths(
        slots: usize,
        params: usize,
        grads: usize,
        buffers: usize,
    ) -> Result<(), Error> {
        if grads != params {
            return Err(Error::LengthMismatch {
                name: "grads",
                expected: params,
                found: grads,
            });
        }
        let expected = params.checked_mul(slots).ok_or(Error::LengthMismatch {
            name: "params",
            expected: usize::MAX / slots.max(1),
            found: params,
        })?;
        if buffers != expected {
            return Err(Error::LengthMismatch {
                name: "buffers",
                expected,
                found: buffers,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::InvalidHyperparameter { name, requirement } => {
                write!(f, "invalid hyperparameter {name}: must be {requirement}")
            }
            Error::InconsistentHyperparameters {
                first,
                second,
                requirement,
            } => write!(
                f,
                "hyperparameters {first} and {second} contradict each other: must be {requirement}"
            ),
            Error::LengthMismatch {
                name,
                expected,
                found,
            } => write!(f, "{name} has length {found}, expected {expected}"),
            Error::NonFinite => f.write_str(
                "gradient is not finite (NaN or infinity) or the hypergradient overflowed; nothing was changed",
            ),
            Error::StepOverflow => f.write_str("step counter overflow"),
            Error::BufferTooSmall { needed, found } => {
                write!(f, "buffer too small: {found} bytes, {needed} needed")
            }
            Error::Corrupt { reason } => write!(f, "corrupt optimizer record: {reason}"),
            Error::UnknownOptimizer => f.write_str(
                "unknown optimizer; expected one of sgd, sgd-hd, sgd-hdm, sgdn, sgdn-hd, sgdn-hdm, adam, adam-hd, adam-hdm",
            ),
            Error::UnsupportedVersion { found } => {
                write!(f, "optimizer record version {found} is not supported")
            }
        }
    }
}

impl core::error::Error for Error {}
