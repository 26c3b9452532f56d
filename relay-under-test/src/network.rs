//! What the lab gives a relay: where to listen, who it is, where DNS and the
//! MX hosts are, and the clock.
//!
//! Talks to nothing itself; the relay's parts read it.

use lab_core::{AddressMap, SharedClock};
use std::net::{IpAddr, SocketAddr};

/// The relay's place in the virtual internet.
#[derive(Debug, Clone)]
pub struct LabNetwork {
    /// The real (loopback) address to listen on, e.g. `127.45.3.2:2525`.
    /// Outbound connections are made from this address's IP too.
    pub listen: SocketAddr,
    /// The relay's lab address (what DNS and the scenario call it).
    pub virtual_ip: IpAddr,
    /// The lab's DNS server; the only name server the relay asks.
    pub dns: SocketAddr,
    /// The port every MX host of the lab listens on.
    pub smtp_port: u16,
    /// Real ↔ lab address translation: a client's real peer address becomes
    /// its lab address with `to_virtual`; a lab address found in DNS becomes
    /// the address to connect to with `to_real`.
    pub addresses: AddressMap,
    /// The lab's clock; every date the relay writes comes from it.
    pub clock: SharedClock,
}

impl LabNetwork {
    /// Where to connect to reach the lab host at `lab_ip` on the SMTP port.
    pub fn smtp_target(&self, lab_ip: IpAddr) -> SocketAddr {
        SocketAddr::new(self.addresses.to_real(lab_ip), self.smtp_port)
    }

    /// The source address for outbound connections: the listen IP, when it
    /// is a concrete address of the same family as `to`.
    pub fn outbound_source(&self, to: SocketAddr) -> Option<IpAddr> {
        let ip = self.listen.ip();
        (!ip.is_unspecified() && ip.is_ipv4() == to.is_ipv4()).then_some(ip)
    }
}
