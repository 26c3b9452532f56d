//! Policy: which clients, senders and recipients the relay takes on.
//!
//! Talks to nothing: pure decisions over the profile and what the session
//! knows about the client (spec §4).
//! - [`access_db`]: the access map (`FEATURE(access_db)`) and its lookups;
//! - [`relay_check`]: the anti-relay decision, relay tricks undone first;
//! - [`rulesets`]: `check_relay`, `check_mail`, the access part of
//!   `check_rcpt`, `delay_checks` and `greet_pause` choices;
//! - [`anti_spam`]: DNSBL refusals, the greylist, header checks.

pub mod access_db;
pub mod relay_check;
pub mod rulesets;

pub use access_db::{AccessAction, AccessDb, AccessTag};
pub use relay_check::{RcptVerdict, RelayPolicy};
pub use rulesets::{Refusal, SenderDomain, Verdict};
pub mod anti_spam;
