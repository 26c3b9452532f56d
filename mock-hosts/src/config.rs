//! How an MX sink is configured: its name, its behaviour (see
//! [`behaviour`](crate::behaviour)), its outage schedule, and what it does
//! with the mail it accepts (see [`relay_back`](crate::relay_back)).

use crate::behaviour::{Schedule, SinkBehaviour};
use crate::relay_back::{Outbound, Reaction};
use chrono::{DateTime, Utc};
use lab_core::AddressMap;
use std::time::Duration;

/// Longest message a sink stores (50 MB), advertised as `SIZE` in EHLO
/// (RFC 1870). Bytes past it are read and dropped, and the message is refused
/// with `552`, so a broken peer cannot exhaust memory.
pub const MAX_MESSAGE_SIZE: usize = 50 * 1024 * 1024;

/// Default read timeout: RFC 5321 4.5.3.2.7 asks servers to wait at least five
/// minutes for the next command.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Everything an [`MxSink`](crate::MxSink) needs besides its address and clock.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// The name the sink gives in its greeting, EHLO reply and received messages.
    pub hostname: String,
    /// How it answers.
    pub behaviour: SinkBehaviour,
    /// How long to wait for the next command or for the whole message.
    pub read_timeout: Duration,
    /// When it is down (not listening), counted from `epoch`.
    pub schedule: Schedule,
    /// When the lab started; `None`: when the sink starts.
    pub epoch: Option<DateTime<Utc>>,
    /// Real ↔ lab addresses, so clients are known (greylist, greeting) by their lab address.
    pub addresses: AddressMap,
    /// What it does with accepted mail besides recording it (forward, explode, auto-reply).
    pub reaction: Option<(Reaction, Outbound)>,
}

impl SinkConfig {
    /// A sink that accepts everything, with the default read timeout.
    pub fn accept(hostname: impl Into<String>) -> Self {
        SinkConfig {
            hostname: hostname.into(),
            behaviour: SinkBehaviour::accept(),
            read_timeout: DEFAULT_READ_TIMEOUT,
            schedule: Schedule::default(),
            epoch: None,
            addresses: AddressMap::identity(),
            reaction: None,
        }
    }

    /// A sink with this behaviour.
    pub fn with_behaviour(hostname: impl Into<String>, behaviour: SinkBehaviour) -> Self {
        SinkConfig { behaviour, ..SinkConfig::accept(hostname) }
    }
}
