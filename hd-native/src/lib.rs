//! # hd-native — hypergradient descent on libtorch
//!
//! The native side of the hd project: the experiments of the paper (Baydin et al., *Online
//! Learning Rate Adaptation with Hypergradient Descent*, ICLR 2018) and of the seed study that
//! extends it (DESIGN §1), as a resumable command-line runner on CPU or GPU. Every update rule
//! comes from `hd-core`; the optimizer over a `VarStore` is `hd-tch`'s `HdOptimizer` (its fused
//! GPU step from `hd-fused`); this crate is the experiments around it.
//!
//! - [`models`]: LogReg, MLP, VGG-16, ResNet-18/101 (CIFAR forms), WideResNet.
//! - [`data`]: MNIST / Fashion-MNIST IDX and CIFAR-10/100 binary readers with typed errors.
//! - [`config`], [`train`]: the runner behind `hd-native train`; [`run_dir`]: the format of
//!   the run directories it writes, which everything else reads through.
//! - [`plot`]: the figures behind `hd-native plot`.
//! - [`plan`], [`sweep`], [`report`]: the experiment suite behind `hd-native plan`, `sweep`
//!   and `report`; [`files`]: how they read files (regular files only, up to a limit).
//! - [`versus`]: the head-to-head of HD against Prodigy and Schedule-Free behind
//!   `hd-native versus`.
//! - [`bench`](mod@bench): the benchmarks behind `hd-native bench`.

pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod files;
pub mod lock;
pub mod models;
pub mod plan;
pub mod plot;
pub mod report;
pub mod run_dir;
pub mod sweep;
pub mod train;
pub mod versus;
