//! # hd-core — hypergradient descent, exact, `no_std`, allocation-free, panic-free
//!
//! Every update rule of Baydin, Cornish, Martínez Rubio, Schmidt & Wood, *Online Learning Rate
//! Adaptation with Hypergradient Descent* (ICLR 2018, arXiv:1703.04782), defined once.
//!
//! Each step writes u_t = θ_t − θ_{t−1} = −γ_t d_t with a base **direction** d_t
//! ([SGD](Sgd), [SGD with Nesterov momentum](Sgd::nesterov), [Adam]), so ∇_α u_{t−1} = −d_{t−1}
//! and the hypergradient is h_t = g_t · ∇_α u_{t−1} = −g_t · d_{t−1}: one dot product per step.
//! [`Hyper`] turns it into an α update — additive (HD) α_t = α_{t−1} − β h_t or multiplicative
//! normalised (HDM) α_t = α_{t−1}(1 + β′ cos(g_t, d_{t−1})) — with one global α (the paper's),
//! one per tensor or one per parameter, an optional clamp and the convergent [`Transition`] of §5.1.
//!
//! ```
//! use hd_core::{Config, Optimizer};
//! // Adam-HD with the paper's settings, on f(θ) = ½ Σ k θ_k².
//! let opt = Optimizer::new(Config::adam(0.001).with_hd(1e-7))?;
//! let mut state = opt.init_state();
//! let mut theta = [1.0f32; 4];
//! let mut buffers = [0.0f32; 8]; // m and v
//! opt.init_buffers(&mut buffers)?;
//! for _ in 0..10 {
//!     let grad: [f32; 4] = core::array::from_fn(|k| (k as f32 + 1.0) * theta[k]);
//!     opt.step(&mut state, &mut theta, &grad, &mut buffers)?;
//! }
//! assert_eq!(state.step, 10);
//! # Ok::<(), hd_core::Error>(())
//! ```
//!
//! **Design.** Hyperparameters are `Copy` structs ([`Config`]), state is plain data the caller
//! owns ([`State`] plus per-element buffer slices): nothing is hidden or allocated. Each rule is
//! written once over the [`Real`] trait and runs on single `f32`s, on SIMD-friendly blocks in the
//! fused slice loops here, and on tensors in `hd-native`. Inputs are checked before anything is
//! written: an [`Error`] leaves parameters, buffers and state untouched.
//!
//! **Global α over many tensors** is two phases: [`Optimizer::hypergradient`] over every tensor
//! into one [`Accumulator`], [`Optimizer::advance`] once, [`Optimizer::apply`] to every tensor
//! (or [`Optimizer::step_tensors`] for all three). [`Optimizer::step`] does it for one buffer.
//!
//! **Cost per parameter** (f32, one step; DESIGN §7): HD adds one read pass over g and d_{t−1}.
//! Base rules make that same read pass to check the gradient for NaN/∞ before writing anything,
//! so SGD moves 16 B (not 12), SGDN 24, Adam 32; SGD-HD 24, SGDN-HD 32, Adam-HD 40, as in §7.
//!
//! **Learning-rate-free peers**, for comparing HD with them from the same core: [`Prodigy`]
//! (its d estimate from global sums, in the same two phases) and [`ScheduleFree`] (SGD and
//! AdamW forms, with its evaluation point x apart from the training point y).
//!
//! **Serialisation**: [`Optimizer::encode`] / [`Optimizer::decode`] (a versioned little-endian
//! record), [`encode_f32s`] / [`decode_f32s`] for the buffers.
#![cfg_attr(not(test), no_std)]

mod accumulator;
mod adam;
mod base;
mod codec;
mod config;
mod constants;
mod error;
mod hyper;
mod layout;
mod macros;
mod optimizer;
pub mod paper;
mod peers;
mod real;
mod rule;
mod scalar;
mod sgd;
mod slices;
mod variant;

pub use accumulator::Accumulator;
pub use adam::Adam;
pub use codec::{decode_f32s, encode_f32s, RECORD_LEN};
pub use config::{Base, Config};
pub use constants::StepConstants;
pub use error::Error;
pub use hyper::{Hyper, HyperRule, Scope, Terms, Transition};
pub use optimizer::{Optimizer, State, TensorMut};
pub use peers::{
    PeerSums, Prodigy, ProdigyConfig, ProdigyState, ProdigyStep, ScheduleFree, ScheduleFreeBase,
    ScheduleFreeConfig, ScheduleFreeState, ScheduleFreeStep, PEER_RECORD_LEN,
};
pub use real::{Real, LANES};
pub use sgd::Sgd;
pub use variant::{BaseOptions, Family, Settings, Variant};

/// The README's example runs as a doctest, so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExample;
