//! The vocabulary every part of a relaylab lab shares.
//!
//! The builtin relay, the mock MX hosts, the scripted senders and the harness all
//! speak SMTP and all need to agree on what a reply, a transcript and a received
//! message are. Keeping those few types here (and nothing else) lets each of the
//! other crates stay small and single-purpose, the way Postfix keeps its parts
//! apart behind small messages.
//!
//! # Layout
//! - [`addr`]: the virtual internet's address map (lab address ↔ loopback address).
//! - [`clock`]: the one clock a lab reads: wall time, or virtual time the lab advances.
//! - [`codec`]: SMTP lines and DATA with dot transparency (RFC 5321 4.5.2).
//! - [`command`]: parsing one SMTP command line into a [`Command`], for every
//!   server in the lab (the builtin relay and the MX sinks).
//! - [`reply`]: SMTP replies, single and multi-line.
//! - [`transcript`]: what crossed the wire in one session, for reports.
//! - [`client`]: an SMTP client that records its transcript; used by the relay's
//!   delivery agent and by every mock sender.
//! - [`envelope`]: envelopes and received messages.
//! - [`activity`]: busy tracking, a count of work in flight to wait on; the relay
//!   and the mock hosts each keep one, and the lab settles when all are idle.

pub mod activity;
pub mod addr;
pub mod client;
pub mod clock;
pub mod codec;
pub mod command;
pub mod envelope;
pub mod reply;
pub mod transcript;

pub use activity::{Activity, BusyGuard};
pub use addr::AddressMap;
pub use client::SmtpClient;
pub use clock::{Clock, SharedClock, StartLatchedClock, VirtualClock, WallClock};
pub use command::Command;
pub use envelope::{Envelope, ReceivedMessage};
pub use reply::Reply;
pub use transcript::{Direction, Transcript, TranscriptLine, TranscriptRecorder};
