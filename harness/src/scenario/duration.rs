//! Durations as scenarios write them: `500ms`, `20s`, `4h`, `5d`.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A duration read from YAML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabDuration(pub Duration);

impl<'de> Deserialize<'de> for LabDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim()).map(LabDuration).map_err(|e| {
            serde::de::Error::custom(format!(
                "expected a duration such as \"500ms\", \"20s\", \"4h\" or \"5d\", found {s:?} ({e})"
            ))
        })
    }
}
