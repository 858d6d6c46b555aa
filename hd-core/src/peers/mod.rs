//! The learning-rate-free peers of HD: [Prodigy](crate::Prodigy) (Mishchenko & Defazio 2023)
//! and [Schedule-Free](crate::ScheduleFree) (Defazio et al. 2024), exact, `no_std`,
//! allocation-free and panic-free like the HD rules, so that HD can be compared with them on
//! the same data from the same core.
//!
//! Each follows the reference PyTorch package operation by operation (`prodigyopt` 1.1.2's
//! `Prodigy`, `schedulefree` 1.4.1's `SGDScheduleFree` and `AdamWScheduleFree`), in f32; where
//! the arithmetic differs (their host scalars are Python floats, i.e. f64; torch's CPU kernels
//! may fuse a multiply and an add) the rule's doc comment says so.
//!
//! **Two phases**, as for HD's global α: Prodigy's step size d comes from sums over *every*
//! parameter, so a step over many tensors is [`accumulate`](crate::Prodigy::accumulate) over
//! every tensor into one [`PeerSums`], [`advance`](crate::Prodigy::advance) once (the scalars
//! of the step, returned as a plan), [`apply`](crate::Prodigy::apply) to every tensor.
//! Schedule-Free has no global sum, but takes the same three phases so that a non-finite
//! gradient in any tensor is found before any tensor is written. `step` does all three over
//! one buffer, `step_tensors` over a model's tensors; splitting a buffer into tensors gives
//! the same bits, because element j of the concatenation always lands in lane j mod
//! [`LANES`](crate::LANES) of the sums and the lanes are reduced in a fixed order.
//!
//! Buffers are one slice per tensor holding the rule's slots one after another (slot k of n
//! parameters is `buffers[k·n..(k+1)·n]`), as for the HD rules. Unlike theirs, a fresh start
//! is not all zeros: both rules keep a copy of the initial parameters (Prodigy's x_0,
//! Schedule-Free's z_0 = x_0), so `init_buffers` takes the parameters.
//!
//! **Saving**: `encode` / `decode` write and read a versioned little-endian record of their
//! own ([`PEER_RECORD_LEN`] bytes, layout in `record.rs`'s docs); buffers are plain f32s
//! ([`encode_f32s`](crate::encode_f32s)).

mod prodigy;
mod record;
mod schedule_free;
mod shared;

pub use prodigy::{Prodigy, ProdigyConfig, ProdigyState, ProdigyStep};
pub use record::PEER_RECORD_LEN;
pub use schedule_free::{
    ScheduleFree, ScheduleFreeBase, ScheduleFreeConfig, ScheduleFreeState, ScheduleFreeStep,
};
pub use shared::PeerSums;
