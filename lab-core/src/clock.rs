//! The one clock a lab reads.
//!
//! Every date the relay writes (greeting, `Received:`, `Date:`, queue ids, log
//! stamps) comes from a [`Clock`], never from the system directly, so that a lab
//! can later run on virtual time and so that golden output can be munged
//! predictably.

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A source of "now".
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock fixed at one instant (tests and golden output).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The wall clock as a shared handle.
pub fn wall() -> SharedClock {
    Arc::new(WallClock)
}
