//! The WebAssembly side of the hd web demo: multinomial logistic regression on MNIST, trained in
//! the browser by several of hd-core's optimizers side by side.
//!
//! Rust owns everything big (the digits, every run's parameters, optimizer state and metrics)
//! behind one opaque handle, [`web::Session`]; JavaScript gets scalars, or fresh typed arrays
//! copied out right before use, never views into wasm memory that could go stale when it grows.
//! The optimizer maths is hd-core's alone: this crate computes the model's loss and gradient
//! ([`model`]), draws the data ([`data`]) and schedules the runs ([`trainer`]).

pub mod data;
pub mod model;
mod phases;
pub mod playground;
pub mod shape;
pub mod trainer;
pub mod web;

use std::fmt;

/// What can go wrong in the demo's engine.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The digits file or an image is malformed.
    Data(String),
    /// A setting is out of range (batch size, epochs, an unknown optimizer, …).
    Settings(String),
    /// hd-core rejected a hyperparameter or an input.
    Optimizer(hd_core::Error),
    /// hd-core rejected a setting of a learning-rate-free peer (e.g. Prodigy's d0 ≤ 0).
    Peer {
        /// The peer whose setting it was.
        peer: trainer::Peer,
        /// hd-core's reason, naming the setting.
        error: hd_core::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Data(msg) => write!(f, "bad data: {msg}"),
            Error::Settings(msg) => write!(f, "bad setting: {msg}"),
            Error::Optimizer(e) => write!(f, "optimizer: {e}"),
            Error::Peer { peer, error } => write!(f, "{}: {error}", peer.label()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Optimizer(e) | Error::Peer { error: e, .. } => Some(e),
            Error::Data(_) | Error::Settings(_) => None,
        }
    }
}

impl From<hd_core::Error> for Error {
    fn from(e: hd_core::Error) -> Self {
        Error::Optimizer(e)
    }
}
