//! The virtual internet's address map.
//!
//! Scenarios speak in realistic addresses (documentation ranges such as
//! `203.0.113.66`), so that the same expectations hold on the `loopback`
//! backend and inside a network namespace. On the `loopback` backend every
//! virtual host really lives on its own `127.x.y.z` address; this map
//! translates between the two views. The builtin relay uses it to see a peer's
//! lab address (for policy, logs and `Received:`) and to reach a lab address it
//! found in DNS.

use std::collections::HashMap;
use std::net::IpAddr;

/// Bidirectional map between lab ("virtual") addresses and the loopback
/// addresses the processes actually bind. Unmapped addresses map to themselves.
#[derive(Debug, Clone, Default)]
pub struct AddressMap {
    to_real: HashMap<IpAddr, IpAddr>,
    to_virtual: HashMap<IpAddr, IpAddr>,
}

impl AddressMap {
    /// A map that translates nothing (real MTAs in a namespace see lab addresses directly).
    pub fn identity() -> Self {
        Self::default()
    }

    /// Record that lab address `virtual_ip` is reachable at `real_ip`.
    pub fn insert(&mut self, virtual_ip: IpAddr, real_ip: IpAddr) {
        self.to_real.insert(virtual_ip, real_ip);
        self.to_virtual.insert(real_ip, virtual_ip);
    }

    /// Where to connect to reach lab address `ip`.
    pub fn to_real(&self, ip: IpAddr) -> IpAddr {
        self.to_real.get(&ip).copied().unwrap_or(ip)
    }

    /// Which lab address a peer connecting from `ip` has.
    pub fn to_virtual(&self, ip: IpAddr) -> IpAddr {
        self.to_virtual.get(&ip).copied().unwrap_or(ip)
    }

    /// Whether `ip` (a lab address) is known to the map.
    pub fn knows_virtual(&self, ip: IpAddr) -> bool {
        self.to_real.contains_key(&ip)
    }

    /// All (virtual, real) pairs, for reports.
    pub fn pairs(&self) -> impl Iterator<Item = (IpAddr, IpAddr)> + '_ {
        self.to_real.iter().map(|(v, r)| (*v, *r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways_and_passes_unknown_addresses_through() {
        let mut m = AddressMap::identity();
        let v: IpAddr = "203.0.113.66".parse().unwrap();
        let r: IpAddr = "127.31.7.2".parse().unwrap();
        m.insert(v, r);
        assert_eq!(m.to_real(v), r);
        assert_eq!(m.to_virtual(r), v);
        let other: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(m.to_virtual(other), other);
        assert!(m.knows_virtual(v));
        assert!(!m.knows_virtual(r));
    }
}
