//! Routing: where a recipient's mail goes next.
//!
//! [`router`] makes the decision in Sendmail's order (spec §3.1) from the
//! profile's tables ([`mailertable`], and the address tables in
//! `crate::addresses`); [`mailer`] holds the shared right-hand sides
//! (`mailer:host`, `[host]`, `error:`). Talks to DNS only in [`mx`], through
//! the [`Resolver`] trait, whose one real implementation asks the lab's DNS
//! server (never the host's resolv.conf or hosts file).

pub mod mailer;
pub mod mailertable;
pub mod mx;
pub mod router;

pub use mailer::{ErrorReply, HostSpec, Mailer};
pub use mailertable::Mailertable;
pub use mx::{mx_hosts, DnsError, HickoryResolver, MxHost, MxRecord, Resolver, RouteError};
pub use router::{Delivery, Refusal, Route, Router};
