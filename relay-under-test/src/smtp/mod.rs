//! The SMTP server side: talks to SMTP clients (lab senders, spammers,
//! other relays).
//!
//! - [`command`]: one command line → [`command::Command`];
//! - [`session`]: the dialogue state machine, replies without a socket;
//! - [`server`]: the accept loop and per-connection tasks.

pub mod command;
pub mod server;
pub mod session;
