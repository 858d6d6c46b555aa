//! Nothing: the package exists for its benchmark (`benches/step.rs`).
