//! Scenarios: the YAML format, loading with located errors, and discovery.
//!
//! A malformed scenario is reported as `file:line:column: what was expected`,
//! before anything runs.

pub mod actor_spec;
pub mod conformance_spec;
pub mod duration;
pub mod load;
pub mod matcher;
pub mod model;
pub mod queue_spec;
pub mod smtp_spec;

pub use actor_spec::*;
pub use conformance_spec::*;
pub use load::{discover, load_file, load_profile, load_str, LoadedScenario, ScenarioError};
pub use matcher::{ReplyMatcher, ValueMatcher};
pub use model::*;
pub use queue_spec::*;
pub use smtp_spec::*;
