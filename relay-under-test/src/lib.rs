//! The relay under test: the boundary every relay flavour implements, and
//! the builtin reference relay.
//!
//! A relaylab scenario puts one mail relay in a virtual internet of scripted
//! senders, mock MX hosts and a mock DNS, then checks what the relay said,
//! logged, queued and passed on. The harness sees the relay only through
//! [`RelayUnderTest`]: where to connect, its log lines, its outbound SMTP
//! transcripts, its queue, and `settle`/`stop`. The builtin flavour,
//! [`BuiltinRelay`], behaves like Sendmail 8.13 as taught in the relay course
//! (`shared/spec/relay-behaviour.md`): same replies, same `Received:` shape,
//! same log lines, same queue ids; later flavours drive real MTAs.
//!
//! # Layout
//! Each part talks to one kind of peer (Postfix style):
//! - [`smtp`]: talks to SMTP clients. [`lab_core::command`] parses lines,
//!   [`smtp::session`] is the state machine (no socket), [`smtp::server`] the
//!   accept loop and connection tasks.
//! - [`policy`]: talks to nothing; [`policy::relay_check`] decides whether a
//!   client may relay to a recipient (relay tricks undone first),
//!   [`policy::access_db`] holds the access map, [`policy::rulesets`] the
//!   `check_relay`/`check_mail`/`check_rcpt` decisions.
//! - [`intake`]: talks to nothing; the cleanup step at end of DATA
//!   (`Received:`, `Message-Id:`, `Date:`, MaxHopCount).
//! - [`addresses`]: talks to nothing; domaintable, virtusertable, aliases,
//!   masquerading.
//! - [`routing`]: the routing decision (mailertable, SMART_HOST, MAIL_HUB,
//!   MX) and DNS, behind a small [`routing::Resolver`] trait.
//! - [`deliver`]: talks to MX hosts; tries them in preference order; sends DSNs.
//! - [`queue`]: talks to the queue directory; the durable queue, the queue
//!   runner, DSN texts, `mailq`, and the control socket of a daemon.
//! - [`queue_id`], [`log`], [`dates`], [`activity`]: Sendmail-style queue
//!   ids, syslog lines, date formats, busy tracking.
//! - [`profile`] and [`network`]: what the scenario and the lab give the relay.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use relay_under_test::{BuiltinRelay, LabNetwork, RelayProfile, RelayUnderTest};
//! use std::time::Duration;
//!
//! let profile: RelayProfile = serde_yaml::from_str(
//!     "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com, 192.168.2]\n",
//! )?;
//! let net = LabNetwork {
//!     listen: "127.45.3.2:2525".parse()?,
//!     virtual_ip: "198.51.100.25".parse()?,
//!     dns: "127.45.0.53:5353".parse()?,
//!     smtp_port: 2525,
//!     addresses: lab_core::AddressMap::identity(),
//!     clock: lab_core::clock::wall(),
//! };
//! let relay = BuiltinRelay::start(profile, net).await?;
//! // ... lab clients connect to relay.smtp_addr() ...
//! relay.settle(Duration::from_secs(10)).await;
//! for line in relay.log_lines() {
//!     println!("{line}");
//! }
//! relay.stop().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod addresses;
pub mod dates;
pub mod deliver;
pub mod error;
pub mod flavours;
pub mod intake;
pub mod log;
pub mod netns;
pub mod network;
pub mod policy;
pub mod profile;
pub mod queue;
pub mod queue_id;
pub mod relay;
pub mod routing;
pub mod smtp;

/// Busy tracking: the one copy lives in `lab-core`, shared by the relay and the mock hosts.
pub use lab_core::activity;

pub use error::RelayError;
pub use network::LabNetwork;
pub use profile::{ProfileError, RelayProfile};
pub use queue::QueuedMessage;
pub use relay::BuiltinRelay;

use async_trait::async_trait;
use std::net::SocketAddr;
use std::time::Duration;

/// What the harness needs from any relay, builtin or real.
#[async_trait]
pub trait RelayUnderTest: Send + Sync {
    /// Which flavour this is (`"builtin"`).
    fn flavour(&self) -> &str;

    /// Where lab clients connect (a real address).
    fn smtp_addr(&self) -> SocketAddr;

    /// The relay's log so far, one Sendmail syslog line each.
    fn log_lines(&self) -> Vec<String>;

    /// Transcripts of the relay's outbound SMTP sessions, in start order.
    fn outbound_sessions(&self) -> Vec<lab_core::Transcript>;

    /// Messages still held: not yet delivered, or deferred.
    fn queue(&self) -> Vec<QueuedMessage>;

    /// Wait until no inbound message is between DATA and its final reply and
    /// no delivery attempt is pending or running. True when settled within
    /// `timeout`. Deferred messages sitting in the queue count as settled.
    async fn settle(&self, timeout: Duration) -> bool;

    /// Stop listening, end sessions and deliveries (bounded). Idempotent.
    async fn stop(&self);

    /// The queue as `mailq` (`sendmail -bp`) lists it, when this relay can
    /// tell (spec §7.2).
    fn mailq(&self) -> Option<String> {
        None
    }

    /// Run the queue now (`sendmail -q`), or only the messages with a
    /// recipient in `domain` (`sendmail -qR@domain`); returns when the run
    /// is over.
    async fn flush_queue(&self, domain: Option<&str>) -> Result<queue::queue_run::RunSummary, String> {
        let _ = domain;
        Err(format!("the {} relay cannot be told to run its queue from the lab yet", self.flavour()))
    }

    /// The queue's depth over time, each message's attempts and the DSNs
    /// sent, when this relay keeps them.
    fn queue_history(&self) -> Option<queue::QueueHistory> {
        None
    }
}
