//! An authoritative, in-memory mock DNS server for relaylab.
//!
//! The lab's relays resolve MX, A/AAAA, PTR and DNSBL-style names here and
//! nowhere else: every record lives in one authoritative zone for the root,
//! so a name the lab does not know gets NXDOMAIN (never REFUSED, never a
//! forward), and a known name without the asked type gets NOERROR with an
//! empty answer. Every query is logged (name, type, udp/tcp, response code,
//! answer count) so scenarios can assert what a relay looked up. Records can
//! be edited while serving.
//!
//! Built on hickory-server 0.26: an `InMemoryZoneHandler` for ".", in a
//! `Catalog`, behind our own `RequestHandler` that keeps the log and applies
//! per-query faults (SERVFAIL, NXDOMAIN, no answer, delay, truncation).
//!
//! # Layout
//! - [`record`]: [`Record`], [`RecordData`], parsing of scenario values, [`ptr_name`].
//! - [`fault`]: [`Fault`] rules per name and type, and what they do.
//! - [`dnsbl`]: the records that list an address in a DNS blacklist zone.
//! - `server`: [`MockDns`]: binding, the zone, live edits, shutdown.
//! - `query_log`: [`QueryLogEntry`] and the logging request handler.
//! - `error`: [`DnsError`].
//!
//! # Example
//! ```no_run
//! use mock_dns::{MockDns, Record};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let records = vec![
//!     Record::parse("sysiphus.com", "MX", "10 internal.sysiphus.com")?,
//!     Record::parse("internal.sysiphus.com", "A", "127.45.3.20")?,
//! ];
//! let dns = MockDns::start("127.45.3.1:0".parse()?, records).await?;
//! println!("point the relay at {}", dns.addr());
//! // ... run the scenario ...
//! for q in dns.queries() {
//!     println!("{} {} over {} -> {} ({} answers)", q.name, q.qtype, q.protocol, q.rcode, q.answers);
//! }
//! dns.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod dnsbl;
mod error;
pub mod fault;
mod query_log;
pub mod record;
mod server;

pub use dnsbl::dnsbl_records;
pub use error::DnsError;
pub use fault::{Fault, FaultKind};
pub use query_log::QueryLogEntry;
pub use record::{ptr_name, Record, RecordData, RecordError};
pub use server::MockDns;
