//! The SMTP server side: talks to SMTP clients (lab senders, spammers,
//! other relays).
//!
//! - command lines are parsed by [`lab_core::command`], shared with the MX sinks;
//! - [`session`]: the dialogue state machine, replies without a socket;
//! - [`server`]: the accept loop and per-connection tasks.

pub mod server;
pub mod session;
