//! Policy: which transactions the relay takes on.
//!
//! Talks to nothing: pure decisions over the profile and what the session
//! knows about the client. Later issues add the access database here.

pub mod relay_check;

pub use relay_check::{RcptVerdict, RelayPolicy};
