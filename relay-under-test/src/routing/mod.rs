//! Routing: where a recipient's mail goes next.
//!
//! Talks to DNS, and only through the [`Resolver`] trait, whose one real
//! implementation asks the lab's DNS server (never the host's resolv.conf or
//! hosts file). Later issues add mailertable and SMART_HOST here.

pub mod mx;

pub use mx::{mx_hosts, DnsError, HickoryResolver, MxHost, MxRecord, Resolver, RouteError};
