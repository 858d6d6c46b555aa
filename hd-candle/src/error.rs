//! [`HdError`]: everything that can go wrong building or stepping an
//! [`HdOptimizer`](crate::HdOptimizer), and its conversion into candle's error.

use candle_core::DType;

/// What can go wrong building, stepping or restoring an [`HdOptimizer`](crate::HdOptimizer).
///
/// Every error of a step is raised before anything is written: the variables, α and the
/// optimizer's buffers are as they were.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HdError {
    /// hd-core refused the configuration ([`hd_core::Error::InvalidHyperparameter`], …), a
    /// gradient ([`hd_core::Error::NonFinite`]: NaN or ±∞, or an α that would overflow), the
    /// step count ([`hd_core::Error::StepOverflow`]) or a saved record.
    #[error("optimizer: {0}")]
    Core(#[from] hd_core::Error),
    /// candle failed (a device error, or an allocation).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A variable is not `f32`: hd-core's rules are defined in single precision.
    #[error("variable {index} is {dtype:?}; the optimizer needs f32 variables")]
    UnsupportedDType {
        /// The variable's position in the list the optimizer was built from.
        index: usize,
        /// Its dtype.
        dtype: DType,
    },
    /// A variable is not contiguous (candle cannot write such a variable in place).
    #[error("variable {index} is not contiguous")]
    NotContiguous {
        /// The variable's position.
        index: usize,
    },
    /// Variables live on different devices: one α cannot be shared across them.
    #[error("variable {index} is on {found} but variable 0 is on {expected}")]
    MixedDevices {
        /// The variable's position.
        index: usize,
        /// Its device.
        found: String,
        /// Variable 0's device.
        expected: String,
    },
    /// A gradient does not fit its variable (dtype, shape or device).
    #[error("the gradient of variable {index} {problem}")]
    Gradient {
        /// The variable's position.
        index: usize,
        /// What does not fit.
        problem: String,
    },
    /// A saved state does not belong to this optimizer (another rule or hyperparameters,
    /// other variables' shapes, or a tensor missing or of the wrong dtype).
    #[error("saved optimizer state does not match: {0}")]
    StateMismatch(String),
    /// [`set_learning_rate`](candle_nn::optim::Optimizer::set_learning_rate) was given an α0
    /// hd-core refuses; reported by the next step, which then does nothing.
    #[error("learning rate {lr}: {source}")]
    InvalidLearningRate {
        /// The value given.
        lr: f64,
        /// Why hd-core refused it.
        source: hd_core::Error,
    },
}

impl From<HdError> for candle_core::Error {
    /// The typed error wrapped in candle's, for [`candle_nn::optim::Optimizer::step`]; a candle
    /// error is passed through unwrapped.
    fn from(e: HdError) -> candle_core::Error {
        match e {
            HdError::Candle(c) => c,
            other => candle_core::Error::wrap(other),
        }
    }
}
