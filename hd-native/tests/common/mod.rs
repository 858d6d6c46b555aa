//! What the integration tests share: small dataset files in the real formats
//! ([`data`](self::data)), and the binary with its run directories ([`run`](self::run)).
#![allow(dead_code)] // each test file uses a different part

mod data;
mod fake;
mod run;

pub use data::*;
#[allow(unused_imports)] // only the report tests fake runs
pub use fake::Fake;
#[allow(unused_imports)] // the data and model tests start no process
pub use run::*;
