//! Reading a stored [`RunConfig`]: the current layout (with hd-core's `Config` as `core`), or
//! the one written before it, with the hyperparameters flattened beside the model.

use super::hyper::Hyperparameters;
use super::serial::optimizer_id;
use super::{RunConfig, Variant};
use crate::data::DatasetKind;
use crate::models::Model;

impl serde::Serialize for RunConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The derived (remote = "Self") layout: always the current one.
        RunConfig::serialize(self, s)
    }
}

impl<'de> serde::Deserialize<'de> for RunConfig {
    /// The current layout (with `core`), or the one before it (flattened hyperparameters).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        let read = if value.get("core").is_some() {
            RunConfig::deserialize(value)
        } else {
            Flattened::deserialize(value).map(RunConfig::from)
        };
        read.map_err(D::Error::custom)
    }
}

/// A run's configuration in the layout written before it held hd-core's [`Config`].
#[derive(serde::Deserialize)]
struct Flattened {
    model: Model,
    dataset: DatasetKind,
    #[serde(with = "optimizer_id")]
    optimizer: Variant,
    #[serde(flatten)]
    hyper: Hyperparameters,
    epochs: u32,
    batch_size: i64,
    seed: u64,
}

impl From<Flattened> for RunConfig {
    fn from(f: Flattened) -> Self {
        RunConfig {
            core: f.hyper.config(f.optimizer),
            model: f.model,
            dataset: f.dataset,
            optimizer: f.optimizer,
            epochs: f.epochs,
            batch_size: f.batch_size,
            seed: f.seed,
            stop_at_loss: None,
        }
    }
}
