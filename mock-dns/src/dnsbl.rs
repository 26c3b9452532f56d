//! DNS blacklist zones (spec §9.3): a listed client address `a.b.c.d` is
//! published as `d.c.b.a.<zone>` with an `A` record in 127.0.0.0/8 (usually
//! `127.0.0.2`) and a `TXT` record giving the reason, as Spamhaus and
//! SpamCop do.

use crate::record::{Record, RecordData};
use std::net::{IpAddr, Ipv4Addr};

/// The name a DNSBL lookup of `ip` in `zone` asks for: `66.113.0.203.bl.spamcop.net`.
pub fn dnsbl_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim().trim_end_matches('.');
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}")
        }
        IpAddr::V6(v6) => {
            // RFC 5782 2.4: nibbles in reverse, like ip6.arpa.
            let hex: String = v6.octets().iter().map(|b| format!("{b:02x}")).collect();
            let nibbles: Vec<String> = hex.chars().rev().map(|c| c.to_string()).collect();
            format!("{}.{zone}", nibbles.join("."))
        }
    }
}

/// The records that list `ip` in `zone`: `A code` and, when a reason is
/// given, `TXT reason`.
pub fn dnsbl_records(zone: &str, ip: IpAddr, code: Ipv4Addr, reason: Option<&str>) -> Vec<Record> {
    let name = dnsbl_name(ip, zone);
    let mut out = vec![Record::new(&name, RecordData::A(code))];
    if let Some(r) = reason {
        out.push(Record::new(&name, RecordData::Txt(r.to_string())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_reverses_the_octets() {
        let r = dnsbl_records(
            "bl.spamcop.net.",
            "203.0.113.66".parse().unwrap(),
            Ipv4Addr::new(127, 0, 0, 2),
            Some("spam source"),
        );
        assert_eq!(r[0], Record::new("66.113.0.203.bl.spamcop.net", RecordData::A(Ipv4Addr::new(127, 0, 0, 2))));
        assert_eq!(r[1].data, RecordData::Txt("spam source".into()));
        assert_eq!(dnsbl_records("z", "1.2.3.4".parse().unwrap(), Ipv4Addr::new(127, 0, 0, 4), None).len(), 1);
        assert!(dnsbl_name("2001:db8::1".parse().unwrap(), "bl.example").starts_with("1.0.0.0."));
    }
}
