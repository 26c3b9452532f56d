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
//! # Layout
//! - [`session`]: the server-side SMTP state machine; no sockets, unit-tested.
//! - [`server`]: the sink's accept loop and per-connection tasks.
//! - [`config`]: [`SinkConfig`], [`SinkBehaviour`] and the sink's limits.
//! - [`sender`]: scripted senders.
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

pub mod config;
pub mod sender;
pub mod server;
pub mod session;

pub use config::{SinkBehaviour, SinkConfig, DEFAULT_READ_TIMEOUT, MAX_MESSAGE_SIZE};
pub use sender::{Mode, Sender, SessionRecord, Step};
pub use server::MxSink;
