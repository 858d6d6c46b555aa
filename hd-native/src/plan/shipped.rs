//! The plans built into the binary: every `*.toml` of the crate's `plans/` directory, listed by
//! `build.rs` when the crate is built, so a new plan file needs no code change.

/// A plan shipped in the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shipped {
    /// Its name: the file's stem (`smoke` for `plans/smoke.toml`).
    pub name: &'static str,
    /// The file's text.
    pub text: &'static str,
}

/// Every shipped plan, by name.
static SHIPPED: &[Shipped] = include!(concat!(env!("OUT_DIR"), "/plans.rs"));

/// The shipped plans, sorted by name.
pub fn shipped() -> &'static [Shipped] {
    SHIPPED
}
