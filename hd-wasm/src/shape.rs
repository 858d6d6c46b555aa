//! The model's shapes, shared by the data ([`crate::data`]) and the model ([`crate::model`]) so
//! neither needs the other's module for them.

/// Pixels per image (28 × 28).
pub const INPUTS: usize = 784;
/// Digit classes.
pub const CLASSES: usize = 10;
/// Weights: one row of [`INPUTS`] per class.
pub const WEIGHTS: usize = INPUTS * CLASSES;
/// All parameters: weights then biases.
pub const PARAMS: usize = WEIGHTS + CLASSES;
