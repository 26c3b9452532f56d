//! Errors of starting a relay.

use crate::profile::ProfileError;
use std::net::SocketAddr;

/// Why a relay could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The profile is invalid; fix the scenario's relay section.
    #[error("relay profile: {0}")]
    Profile(#[from] ProfileError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}; is another lab or relay using it, or is the address not local?")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The resolver for the lab's DNS server could not be built.
    #[error("cannot build a resolver for the lab DNS server {addr}: {why}")]
    Resolver {
        /// The DNS server address.
        addr: SocketAddr,
        /// What went wrong.
        why: String,
    },
    /// The queue directory could not be created or read.
    #[error("cannot open the queue directory {}: {source}", .dir.display())]
    Queue {
        /// The directory (empty: a temporary one).
        dir: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
