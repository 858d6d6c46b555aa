//! The names of the sweep's own state under its output directory, and how its manifest names
//! a plan.

use crate::plan::Source;

/// The directory of the sweep's own state under the output directory.
pub const STATE_DIR: &str = ".sweep";
pub(super) const MANIFEST: &str = "manifest.json";
/// The plan's text, under the state directory.
pub const PLAN_COPY: &str = "plan.toml";
pub(super) const STATUS: &str = "status.json";
pub(super) const TRAIN_LOG: &str = "train.log";

/// How the manifest names a plan: its file's absolute path, or the shipped plan's name.
pub(super) fn origin(source: &Source) -> String {
    match source {
        Source::File(f) => std::path::absolute(f)
            .unwrap_or_else(|_| f.clone())
            .display()
            .to_string(),
        Source::Shipped(name) => format!(
            "{name} (shipped with hd-native {})",
            env!("CARGO_PKG_VERSION")
        ),
    }
}
