//! Errors of the mock DNS server.

use std::{io, net::IpAddr, net::SocketAddr};

use crate::record::RecordError;

/// What can go wrong starting or editing the mock DNS server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// A UDP or TCP socket could not be bound on the requested address.
    #[error(
        "cannot bind mock DNS on {addr} ({protocol}): {source}; \
         choose another address or port, or stop what is using it"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// `"udp"` or `"tcp"`.
        protocol: &'static str,
        /// The error from the operating system.
        source: io::Error,
    },
    /// Port 0 was asked for, but no port was free for both UDP and TCP.
    #[error(
        "no port on {ip} was free for both UDP and TCP after {attempts} attempts; \
         give an explicit port or another 127.x.y.z address"
    )]
    NoFreePort {
        /// The address tried.
        ip: IpAddr,
        /// How many ports were tried.
        attempts: u32,
    },
    /// A record could not be turned into DNS data.
    #[error("record `{name}` cannot be served: {source}; fix it in the scenario")]
    InvalidRecord {
        /// The record's owner name.
        name: String,
        /// What is wrong.
        source: RecordError,
    },
    /// A CNAME would share its name with other records, which DNS forbids.
    #[error(
        "cannot add {rtype} record at `{name}`: a CNAME cannot share its name with \
         other records; remove one of them"
    )]
    CnameConflict {
        /// The record's owner name.
        name: String,
        /// The type of the record that was refused.
        rtype: &'static str,
    },
}
