//! The lab's fake SMTP peers.
//!
//! A relay under test talks to two kinds of strangers: the clients that hand
//! it mail (well-behaved MTAs, spammers, forgers) and the MX hosts it delivers
//! to. This crate plays both parts on real sockets:
//!
//! - [`MxSink`]: an SMTP server placed at a virtual MX host's address. It
//!   accepts every well-formed transaction, speaks ESMTP with PIPELINING, and
//!   records each session's transcript and each received message, so a test
//!   can check what the relay delivered, to whom, and how it spoke.
//! - [`Sender`]: a scripted SMTP client. It plays [`Step`]s (odd lines
//!   included) in lockstep or all at once, and returns a [`SessionRecord`] of
//!   replies and transcript.
//!
//! Around them live the lab's other inhabitants: scripted MX faults
//! (per-phase replies, delays, hang-ups, silence, greylisting, outages,
//! faults named in the address), forwarders, lists and auto-responders that
//! send mail back through the relay, slammers, and MTA-like senders that
//! retry on a schedule.
//!
//! # Layout
//! - [`session`]: the server-side SMTP state machine; no sockets, unit-tested.
//! - [`server`]: the sink's accept loop and per-connection tasks, outage windows.
//! - [`behaviour`]: how a sink misbehaves: [`SinkBehaviour`], rules per
//!   phase and recipient, [`Greylist`], the address fault grammar, [`Schedule`].
//! - [`config`]: [`SinkConfig`] and the sink's limits.
//! - [`relay_back`]: forwarders, mailing lists and auto-responders (mail loops).
//! - [`sender`]: scripted senders (lockstep or all at once, before the greeting).
//! - [`outbound`]: one well-mannered delivery attempt and its [`Delivery`] outcome.
//! - [`mta`]: a sending MTA that queues on 4xx and retries on a schedule.
//! - [`slammer`]: N concurrent connections × M messages, outcomes and latencies.
//! - [`forge`]: forged headers (From, Received chains, Message-Id) for DATA.
//! - [`message`]: small header edits on RFC 5322 messages.
//! - [`timing`]: every wait the actors make (lab time), in one place.
//! - [`activity`]: work in flight, so the lab can wait for quiet.
//! - [`postfix_tools`]: Postfix's smtp-source and smtp-sink, the benchmarks' anchors.
//!
//! # Example
//! ```no_run
//! use mock_hosts::{Mode, MxSink, Sender, SinkConfig, Step};
//! use std::time::Duration;
//!
//! # async fn demo() -> std::io::Result<()> {
//! let sink = MxSink::start("127.45.3.7:0".parse().unwrap(), SinkConfig::accept("mx.example"), lab_core::clock::wall()).await?;
//! let sender = Sender {
//!     source_ip: Some("127.9.9.9".parse().unwrap()),
//!     target: sink.addr(),
//!     timeout: Duration::from_secs(5),
//!     label: "client -> mx.example".into(),
//! };
//! let record = sender
//!     .run(
//!         &[
//!             Step::Greeting,
//!             Step::line("EHLO client.example"),
//!             Step::line("MAIL FROM:<a@client.example>"),
//!             Step::line("RCPT TO:<b@mx.example>"),
//!             Step::line("DATA"),
//!             Step::message("Subject: hi\r\n\r\nhello\r\n"),
//!             Step::line("QUIT"),
//!         ],
//!         Mode::Lockstep,
//!     )
//!     .await;
//! assert_eq!(record.codes()[5], Some(250));
//! assert_eq!(sink.messages()[0].envelope.rcpt_to, vec!["b@mx.example"]);
//! sink.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod behaviour;
pub mod config;
pub mod forge;
pub mod message;
pub mod mta;
pub mod outbound;
pub mod postfix_tools;
pub mod relay_back;
pub mod sender;
pub mod server;
pub mod session;
pub mod slammer;
pub mod timing;

/// Busy tracking: the one copy lives in `lab-core`, shared by the relay and the mock hosts.
pub use lab_core::activity;

pub use behaviour::{Action, Greylist, Phase, RcptPattern, Rule, Schedule, Script, SinkBehaviour};
pub use config::{SinkConfig, DEFAULT_READ_TIMEOUT, MAX_MESSAGE_SIZE};
pub use outbound::{Delivery, Tally};
pub use sender::{Mode, Sender, SessionRecord, Step};
pub use server::MxSink;
pub use timing::LabTime;
