//! Lab records: what the harness and scenario files describe, and how they
//! become hickory resource records.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::{
    rdata::{self, MX, TXT},
    Name, RData, RecordType,
};

/// TTL given by [`Record::new`] and [`Record::parse`].
pub const DEFAULT_TTL: u32 = 3600;

/// The types the mock serves, in the order error messages list them.
const SUPPORTED: &str = "A, AAAA, MX, PTR, TXT, CNAME";

/// The data of one lab record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Mail exchanger; lower preference is tried first.
    Mx {
        /// Preference (lower wins).
        preference: u16,
        /// Host name of the exchanger, with or without trailing dot.
        exchange: String,
    },
    /// Reverse pointer to a host name.
    Ptr(String),
    /// Text; longer than 255 bytes is split into several strings on the wire.
    Txt(String),
    /// Alias to another name.
    Cname(String),
}

impl RecordData {
    /// The DNS type mnemonic, e.g. `"MX"`.
    pub fn rtype(&self) -> &'static str {
        match self {
            Self::A(_) => "A",
            Self::Aaaa(_) => "AAAA",
            Self::Mx { .. } => "MX",
            Self::Ptr(_) => "PTR",
            Self::Txt(_) => "TXT",
            Self::Cname(_) => "CNAME",
        }
    }
}

/// One record the mock DNS serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name, lowercase, without trailing dot.
    pub name: String,
    /// Time to live in seconds.
    pub ttl: u32,
    /// Type and value.
    pub data: RecordData,
}

/// Why a record description was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A name (owner or host in the value) is not a valid DNS name.
    #[error("{what} `{name}` is not a valid DNS name: {reason}")]
    InvalidName {
        /// Which name: "record name", "MX host", ...
        what: &'static str,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The record type is not one the mock serves.
    #[error("unsupported record type `{rtype}`: expected one of {SUPPORTED}")]
    UnsupportedType {
        /// The type as given.
        rtype: String,
    },
    /// The value does not fit the record type.
    #[error("{rtype} value must be {expected}, found `{found}`")]
    InvalidValue {
        /// The record type.
        rtype: &'static str,
        /// What the value should look like.
        expected: &'static str,
        /// The value as given.
        found: String,
    },
}

impl Record {
    /// A record with [`DEFAULT_TTL`]. The name is normalized (trimmed,
    /// lowercase, no trailing dot) but only checked when served, by
    /// [`MockDns::start`](crate::MockDns::start) or
    /// [`MockDns::upsert`](crate::MockDns::upsert).
    pub fn new(name: &str, data: RecordData) -> Record {
        Record { name: normalize(name), ttl: DEFAULT_TTL, data }
    }

    /// Parse zone-file-like values, as scenario YAML gives them.
    ///
    /// `rtype` is `A`, `AAAA`, `MX`, `PTR`, `TXT` or `CNAME` (any case).
    /// `value` is e.g. `192.0.2.10` (A), `10 internal.sysiphus.com` (MX),
    /// `host.example.` (PTR, CNAME), `v=spf1 -all` (TXT; one pair of
    /// surrounding double quotes is removed). Names may end with a dot.
    pub fn parse(name: &str, rtype: &str, value: &str) -> Result<Record, RecordError> {
        check_name("record name", name)?;
        let value = value.trim();
        let data = match rtype.trim().to_ascii_uppercase().as_str() {
            "A" => RecordData::A(value.parse().map_err(|_| RecordError::InvalidValue {
                rtype: "A",
                expected: "an IPv4 address like `192.0.2.10`",
                found: value.to_string(),
            })?),
            "AAAA" => RecordData::Aaaa(value.parse().map_err(|_| RecordError::InvalidValue {
                rtype: "AAAA",
                expected: "an IPv6 address like `2001:db8::10`",
                found: value.to_string(),
            })?),
            "MX" => parse_mx(value)?,
            "PTR" => RecordData::Ptr(parse_host("PTR", value)?),
            "CNAME" => RecordData::Cname(parse_host("CNAME", value)?),
            "TXT" => RecordData::Txt(unquote(value).to_string()),
            _ => return Err(RecordError::UnsupportedType { rtype: rtype.to_string() }),
        };
        Ok(Record::new(name, data))
    }

    /// The hickory record to put in the zone.
    pub(crate) fn to_hickory(&self) -> Result<hickory_proto::rr::Record, RecordError> {
        let owner = to_name("record name", &self.name)?;
        let rdata = match &self.data {
            RecordData::A(ip) => RData::A(rdata::A(*ip)),
            RecordData::Aaaa(ip) => RData::AAAA(rdata::AAAA(*ip)),
            RecordData::Mx { preference, exchange } => RData::MX(MX::new(*preference, to_name("MX host", exchange)?)),
            RecordData::Ptr(host) => RData::PTR(rdata::PTR(to_name("PTR host", host)?)),
            RecordData::Cname(host) => RData::CNAME(rdata::CNAME(to_name("CNAME target", host)?)),
            // A DNS character-string holds at most 255 bytes; readers of
            // SPF/DKIM-style TXT records join the pieces back together.
            RecordData::Txt(text) => {
                let pieces: Vec<&[u8]> =
                    if text.is_empty() { vec![&[][..]] } else { text.as_bytes().chunks(255).collect() };
                RData::TXT(TXT::from_bytes(pieces))
            }
        };
        Ok(hickory_proto::rr::Record::from_rdata(owner, self.ttl, rdata))
    }
}

/// The reverse-lookup name of an address, without trailing dot:
/// `203.0.113.66` gives `66.113.0.203.in-addr.arpa`, an IPv6 address gives
/// its 32 nibbles reversed under `ip6.arpa`.
pub fn ptr_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            out.push_str("ip6.arpa");
            out
        }
    }
}

/// Parse a type mnemonic the mock knows (used by edits that name a type).
pub(crate) fn parse_rtype(rtype: &str) -> Result<RecordType, RecordError> {
    match rtype.trim().to_ascii_uppercase().as_str() {
        "A" => Ok(RecordType::A),
        "AAAA" => Ok(RecordType::AAAA),
        "MX" => Ok(RecordType::MX),
        "PTR" => Ok(RecordType::PTR),
        "TXT" => Ok(RecordType::TXT),
        "CNAME" => Ok(RecordType::CNAME),
        _ => Err(RecordError::UnsupportedType { rtype: rtype.to_string() }),
    }
}

/// A fully qualified hickory name from a lab name (trailing dot optional).
pub(crate) fn to_name(what: &'static str, name: &str) -> Result<Name, RecordError> {
    check_name(what, name)?;
    let trimmed = name.trim();
    let mut parsed = Name::from_ascii(trimmed).map_err(|e| RecordError::InvalidName {
        what,
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    parsed.set_fqdn(true);
    Ok(parsed.to_lowercase())
}

fn normalize(name: &str) -> String {
    let name = name.trim();
    if name == "." {
        return ".".to_string();
    }
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Reject what hickory's lenient parser would accept but no zone file would.
fn check_name(what: &'static str, name: &str) -> Result<(), RecordError> {
    let trimmed = name.trim();
    let reason = if trimmed.is_empty() {
        Some("it is empty".to_string())
    } else if trimmed.chars().any(|c| c.is_whitespace()) {
        Some("it contains whitespace".to_string())
    } else if !trimmed.is_ascii() {
        Some("it is not ASCII (give IDNs in punycode, `xn--...`)".to_string())
    } else if trimmed != "." && trimmed.strip_suffix('.').unwrap_or(trimmed).split('.').any(str::is_empty) {
        Some("it has an empty label (`..` or a leading dot)".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RecordError::InvalidName { what, name: name.to_string(), reason }),
        None => Ok(()),
    }
}

fn parse_mx(value: &str) -> Result<RecordData, RecordError> {
    let invalid = || RecordError::InvalidValue {
        rtype: "MX",
        expected: "`<preference> <host>` like `10 mx.example.com`",
        found: value.to_string(),
    };
    let mut parts = value.split_whitespace();
    let (Some(preference), Some(host), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let preference = preference.parse::<u16>().map_err(|_| invalid())?;
    check_name("MX host", host)?;
    Ok(RecordData::Mx { preference, exchange: normalize(host) })
}

fn parse_host(rtype: &'static str, value: &str) -> Result<String, RecordError> {
    if value.split_whitespace().count() != 1 {
        return Err(RecordError::InvalidValue {
            rtype,
            expected: "one host name like `host.example.com`",
            found: value.to_string(),
        });
    }
    check_name(if rtype == "PTR" { "PTR host" } else { "CNAME target" }, value)?;
    Ok(normalize(value))
}

fn unquote(value: &str) -> &str {
    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_type() {
        let a = Record::parse("Relay.Example.COM.", "a", "192.0.2.10").unwrap();
        assert_eq!(a.name, "relay.example.com");
        assert_eq!(a.ttl, DEFAULT_TTL);
        assert_eq!(a.data, RecordData::A(Ipv4Addr::new(192, 0, 2, 10)));

        let aaaa = Record::parse("relay.example.com", "AAAA", "2001:db8::10").unwrap();
        assert_eq!(aaaa.data, RecordData::Aaaa("2001:db8::10".parse().unwrap()));

        let mx = Record::parse("sysiphus.com", "Mx", "10  internal.sysiphus.com.").unwrap();
        assert_eq!(mx.data, RecordData::Mx { preference: 10, exchange: "internal.sysiphus.com".into() });

        let ptr = Record::parse("66.113.0.203.in-addr.arpa", "PTR", "mail.example.net.").unwrap();
        assert_eq!(ptr.data, RecordData::Ptr("mail.example.net".into()));

        let cname = Record::parse("www.example.com", "cname", "example.com").unwrap();
        assert_eq!(cname.data, RecordData::Cname("example.com".into()));

        let txt = Record::parse("example.com", "TXT", "\"v=spf1 ip4:192.0.2.0/24 -all\"").unwrap();
        assert_eq!(txt.data, RecordData::Txt("v=spf1 ip4:192.0.2.0/24 -all".into()));
        let bare = Record::parse("_dmarc.example.com", "TXT", "v=DMARC1; p=reject").unwrap();
        assert_eq!(bare.data, RecordData::Txt("v=DMARC1; p=reject".into()));
        assert!(bare.to_hickory().is_ok(), "underscore labels must be servable");
    }

    #[test]
    fn parse_errors_say_what_was_expected() {
        let err = Record::parse("sysiphus.com", "MX", "internal").unwrap_err();
        assert_eq!(
            err.to_string(),
            "MX value must be `<preference> <host>` like `10 mx.example.com`, found `internal`"
        );
        let err = Record::parse("sysiphus.com", "MX", "ten mx.example.com").unwrap_err();
        assert!(matches!(err, RecordError::InvalidValue { rtype: "MX", .. }), "{err}");
        let err = Record::parse("sysiphus.com", "MX", "70000 mx.example.com").unwrap_err();
        assert!(matches!(err, RecordError::InvalidValue { rtype: "MX", .. }), "{err}");

        let err = Record::parse("h.example.com", "A", "2001:db8::1").unwrap_err();
        assert_eq!(err.to_string(), "A value must be an IPv4 address like `192.0.2.10`, found `2001:db8::1`");
        let err = Record::parse("h.example.com", "AAAA", "192.0.2.1").unwrap_err();
        assert!(err.to_string().starts_with("AAAA value must be an IPv6 address"), "{err}");

        let err = Record::parse("h.example.com", "SRV", "0 5 25 mx").unwrap_err();
        assert_eq!(err.to_string(), "unsupported record type `SRV`: expected one of A, AAAA, MX, PTR, TXT, CNAME");

        let err = Record::parse("bad name.example", "A", "192.0.2.1").unwrap_err();
        assert_eq!(err.to_string(), "record name `bad name.example` is not a valid DNS name: it contains whitespace");
        let err = Record::parse("a..example", "A", "192.0.2.1").unwrap_err();
        assert!(err.to_string().contains("empty label"), "{err}");
        let err = Record::parse("", "A", "192.0.2.1").unwrap_err();
        assert!(err.to_string().contains("it is empty"), "{err}");

        let err = Record::parse("x.example", "PTR", "a b").unwrap_err();
        assert!(err.to_string().starts_with("PTR value must be one host name"), "{err}");
        let err = Record::parse("x.example", "MX", "10 mx..example").unwrap_err();
        assert!(err.to_string().starts_with("MX host `mx..example`"), "{err}");
    }

    #[test]
    fn ptr_names() {
        assert_eq!(ptr_name("203.0.113.66".parse().unwrap()), "66.113.0.203.in-addr.arpa");
        assert_eq!(
            ptr_name("2001:db8::567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn long_txt_is_split_into_255_byte_strings() {
        let text = "k".repeat(600);
        let rec = Record::new("sel._domainkey.example.com", RecordData::Txt(text.clone()));
        let hickory = rec.to_hickory().unwrap();
        let RData::TXT(txt) = &hickory.data else { panic!("not TXT: {hickory:?}") };
        let lens: Vec<usize> = txt.txt_data.iter().map(|s| s.len()).collect();
        assert_eq!(lens, vec![255, 255, 90]);
        let joined: Vec<u8> = txt.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(joined, text.into_bytes());
    }

    #[test]
    fn new_normalizes_but_to_hickory_validates() {
        let rec = Record::new("MX.Example.com.", RecordData::A(Ipv4Addr::LOCALHOST));
        assert_eq!(rec.name, "mx.example.com");
        assert_eq!(rec.to_hickory().unwrap().name.to_string(), "mx.example.com.");
        let bad = Record::new("bad host", RecordData::A(Ipv4Addr::LOCALHOST));
        assert!(matches!(bad.to_hickory(), Err(RecordError::InvalidName { .. })));
    }
}
