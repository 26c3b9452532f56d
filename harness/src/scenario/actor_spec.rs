//! Steps that bring the virtual internet's inhabitants on stage: slammers
//! (`slam:`), MTA-like senders that retry (`mta:`), DNS changes and faults
//! (`dns:`), and forged headers for `send:` (`forge:`). Plus the top-level
//! `dns_faults:` and `dnsbl:` sections.

use super::duration::LabDuration;
use super::model::{opt_list, DnsNode};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// `slam:` N concurrent connections × M messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlamSpec {
    /// The host the connections come from.
    pub from: String,
    /// A lab host to slam instead of the relay.
    #[serde(default)]
    pub to: Option<String>,
    /// Concurrent connections (default 1).
    #[serde(default = "one")]
    pub connections: usize,
    /// Messages per connection (default 1).
    #[serde(default = "one")]
    pub messages: usize,
    /// Messages per SMTP session; 0 (default): all of a connection's messages in one session.
    #[serde(default)]
    pub per_session: usize,
    /// Target rate over all connections: `200/s`, `50` (per second); default: as fast as possible.
    #[serde(default)]
    pub rate: Option<Rate>,
    /// Pipeline MAIL/RCPT/DATA when the server offers PIPELINING (default true).
    #[serde(default = "yes")]
    pub pipelining: bool,
    /// Message size: `2k`, `2048`, `1m` (default 1k).
    #[serde(default)]
    pub size: Option<Size>,
    /// Each connection from its own lab address in the host's /24 (default false).
    #[serde(default)]
    pub distinct_sources: bool,
    /// The EHLO name (default: the host's name).
    #[serde(default)]
    pub helo: Option<String>,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    #[serde(deserialize_with = "opt_list")]
    pub rcpt_to: Vec<String>,
    /// Per-reply timeout (default 10s).
    #[serde(default)]
    pub timeout: Option<LabDuration>,
}

/// `mta:` a sender that queues on 4xx and retries on a schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtaSpec {
    /// The sending host.
    pub from: String,
    /// A lab host to send to instead of the relay.
    #[serde(default)]
    pub to: Option<String>,
    /// The EHLO name (default: the host's name).
    #[serde(default)]
    pub helo: Option<String>,
    /// Envelope sender; `{n}` becomes the attempt number.
    pub mail_from: String,
    /// Envelope recipients.
    #[serde(deserialize_with = "opt_list")]
    pub rcpt_to: Vec<String>,
    /// The message (default: a minimal one).
    #[serde(default)]
    pub data: Option<String>,
    /// Waits before retry 1, 2, ... (the last repeats); `[]`: never retry.
    #[serde(default)]
    pub retry: Vec<LabDuration>,
    /// No attempt starts later than this after the first (default: the sum of `retry`).
    #[serde(default)]
    pub give_up_after: Option<LabDuration>,
    /// Each attempt from the next address of the host's farm in its /24.
    #[serde(default)]
    pub farm: bool,
    /// A new envelope sender on every attempt (`local+<n>@domain`), as list servers with bounce tracking do.
    #[serde(default)]
    pub vary_sender: bool,
    /// Per-reply timeout (default 10s).
    #[serde(default)]
    pub timeout: Option<LabDuration>,
}

impl MtaSpec {
    /// The give-up time.
    pub fn give_up(&self) -> std::time::Duration {
        self.give_up_after.map(|d| d.0).unwrap_or_else(|| self.retry.iter().map(|d| d.0).sum())
    }

    /// How many attempts the schedule allows (ignoring how long each takes), at most `cap`.
    pub fn max_attempts(&self, cap: usize) -> usize {
        let policy = mock_hosts::mta::RetryPolicy {
            intervals: self.retry.iter().map(|d| d.0).collect(),
            give_up_after: self.give_up(),
        };
        let mut t = std::time::Duration::ZERO;
        let mut n = 1;
        while n < cap {
            match policy.wait_before(n) {
                Some(w) if t + w <= policy.give_up_after => {
                    t += w;
                    n += 1;
                }
                _ => break,
            }
        }
        n
    }
}

/// `dns:` change the lab's DNS now.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsStepSpec {
    /// Records to add (joining those of the same name and type).
    #[serde(default)]
    pub add: BTreeMap<String, DnsNode>,
    /// Records replacing all of their name and type.
    #[serde(default)]
    pub replace: BTreeMap<String, DnsNode>,
    /// `"TYPE name"`: remove every record of that name and type.
    #[serde(default, deserialize_with = "opt_list")]
    pub remove: Vec<String>,
    /// Faults to add.
    #[serde(default)]
    pub faults: Vec<DnsFaultSpec>,
    /// Remove every fault first.
    #[serde(default)]
    pub clear_faults: bool,
}

/// One DNS fault.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsFaultSpec {
    /// The name (`sysiphus.com`), `*.zone` for every name under it, or `*`.
    pub name: String,
    /// Only this record type (default: every type).
    #[serde(default, rename = "type")]
    pub rtype: Option<String>,
    /// `servfail`, `nxdomain`, `refused`, `timeout`, `truncate`, or `answer` (with a delay).
    #[serde(default)]
    pub fault: Option<String>,
    /// Wait before answering (or failing).
    #[serde(default)]
    pub delay: Option<LabDuration>,
    /// Only the first `n` matching queries.
    #[serde(default)]
    pub times: Option<u32>,
}

impl DnsFaultSpec {
    /// The mock DNS fault.
    pub fn to_fault(&self) -> Result<mock_dns::Fault, String> {
        let kind = match &self.fault {
            Some(f) => mock_dns::FaultKind::parse(f)?,
            None if self.delay.is_some() => mock_dns::FaultKind::Answer,
            None => return Err(format!("dns fault for {}: give `fault:` or `delay:`", self.name)),
        };
        let mut f = mock_dns::Fault::new(&self.name, kind);
        if let Some(t) = &self.rtype {
            f = f.for_type(t);
        }
        if let Some(d) = self.delay {
            f = f.delayed(d.0);
        }
        if let Some(n) = self.times {
            f = f.times(n);
        }
        Ok(f)
    }
}

/// A DNS blacklist zone (spec §9.3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsblSpec {
    /// The zone: `bl.spamcop.net`.
    pub zone: String,
    /// Listed addresses (or host names under `hosts:`) and the TXT reason for each.
    #[serde(default)]
    pub listed: BTreeMap<String, Option<String>>,
    /// The A record's address (default 127.0.0.2).
    #[serde(default)]
    pub code: Option<std::net::Ipv4Addr>,
}

/// One `dnsbl:` zone or a list of them.
pub fn dnsbl_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DnsblSpec>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(DnsblSpec),
        Many(Vec<DnsblSpec>),
    }
    let v = serde_yaml::Value::deserialize(d)?;
    let one = serde_yaml::from_value::<DnsblSpec>(v.clone());
    match serde_yaml::from_value::<Raw>(v) {
        Ok(Raw::One(s)) => Ok(vec![s]),
        Ok(Raw::Many(v)) => Ok(v),
        Err(_) => Err(D::Error::custom(match one {
            Err(e) => format!("dnsbl: {e}; expected {{ zone: bl.spamcop.net, listed: {{ 203.0.113.66: \"spam source\" }} }} or a list of them"),
            Ok(_) => "dnsbl: expected a zone or a list of zones".into(),
        })),
    }
}

/// `forge:` headers written into DATA.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgeSpec {
    /// `Received:` lines (top first), or a number of plausible forged hops.
    #[serde(default)]
    pub received: Option<ReceivedForge>,
    /// `From:`.
    #[serde(default)]
    pub from: Option<String>,
    /// `To:`.
    #[serde(default)]
    pub to: Option<String>,
    /// `Subject:`.
    #[serde(default)]
    pub subject: Option<String>,
    /// `Date:`.
    #[serde(default)]
    pub date: Option<String>,
    /// `Message-Id:`.
    #[serde(default)]
    pub message_id: Option<String>,
    /// More header fields, in order.
    #[serde(default)]
    pub headers: Vec<BTreeMap<String, String>>,
}

/// Forged `Received:` lines: as written, or how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceivedForge {
    /// These values.
    Lines(Vec<String>),
    /// This many plausible hops.
    Hops(usize),
}

impl<'de> Deserialize<'de> for ReceivedForge {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(usize),
            One(String),
            Many(Vec<String>),
        }
        match Raw::deserialize(d) {
            Ok(Raw::N(n)) => Ok(ReceivedForge::Hops(n)),
            Ok(Raw::One(s)) => Ok(ReceivedForge::Lines(vec![s])),
            Ok(Raw::Many(v)) => Ok(ReceivedForge::Lines(v)),
            Err(_) => {
                Err(D::Error::custom("forge.received: expected a number of hops or Received: values (top first)"))
            }
        }
    }
}

impl ForgeSpec {
    /// The forgery, with generated hops dated from `now`.
    pub fn forgery(&self, now: chrono::DateTime<chrono::Utc>) -> mock_hosts::forge::Forgery {
        mock_hosts::forge::Forgery {
            received: match &self.received {
                None => Vec::new(),
                Some(ReceivedForge::Lines(v)) => v.clone(),
                Some(ReceivedForge::Hops(n)) => mock_hosts::forge::received_chain(*n, now),
            },
            from: self.from.clone(),
            to: self.to.clone(),
            subject: self.subject.clone(),
            date: self.date.clone(),
            message_id: self.message_id.clone(),
            headers: self.headers.iter().flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone()))).collect(),
        }
    }
}

/// A rate: `200/s`, `12/m`, or a number per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate(pub f64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        let bad = || D::Error::custom("rate: expected messages per second such as 200/s, 30/m or 50");
        let per_sec = match &v {
            serde_yaml::Value::Number(n) => n.as_f64().ok_or_else(bad)?,
            serde_yaml::Value::String(s) => {
                let s = s.trim();
                let (n, unit) = s.split_once('/').unwrap_or((s, "s"));
                let n: f64 = n.trim().parse().map_err(|_| bad())?;
                match unit.trim() {
                    "s" | "sec" => n,
                    "m" | "min" => n / 60.0,
                    "h" => n / 3600.0,
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        };
        if per_sec.is_finite() && per_sec > 0.0 {
            Ok(Rate(per_sec))
        } else {
            Err(bad())
        }
    }
}

/// A size in octets: `2048`, `2k`, `1m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        let bad = || D::Error::custom("size: expected octets such as 2048, 2k or 1m");
        match &v {
            serde_yaml::Value::Number(n) => n.as_u64().map(|n| Size(n as usize)).ok_or_else(bad),
            serde_yaml::Value::String(s) => {
                let s = s.trim().to_ascii_lowercase();
                let (num, mult) = match s.chars().last() {
                    Some('k') => (&s[..s.len() - 1], 1024),
                    Some('m') => (&s[..s.len() - 1], 1024 * 1024),
                    _ => (s.as_str(), 1),
                };
                num.trim().parse::<usize>().map(|n| Size(n * mult)).map_err(|_| bad())
            }
            _ => Err(bad()),
        }
    }
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_sizes() {
        assert_eq!(serde_yaml::from_str::<Rate>("200/s").unwrap(), Rate(200.0));
        assert_eq!(serde_yaml::from_str::<Rate>("30/m").unwrap(), Rate(0.5));
        assert_eq!(serde_yaml::from_str::<Rate>("50").unwrap(), Rate(50.0));
        assert!(serde_yaml::from_str::<Rate>("fast").is_err());
        assert_eq!(serde_yaml::from_str::<Size>("2k").unwrap(), Size(2048));
        assert_eq!(serde_yaml::from_str::<Size>("100").unwrap(), Size(100));
        assert!(serde_yaml::from_str::<Size>("big").is_err());
    }

    #[test]
    fn mta_attempts_follow_the_schedule() {
        let m: MtaSpec =
            serde_yaml::from_str("{ from: a, mail_from: x@y, rcpt_to: z@w, retry: [1s, 2s], give_up_after: 10s }")
                .unwrap();
        // 0, 1, 3, 5, 7, 9: six attempts.
        assert_eq!(m.max_attempts(64), 6);
        let spam: MtaSpec = serde_yaml::from_str("{ from: a, mail_from: x@y, rcpt_to: z@w }").unwrap();
        assert_eq!(spam.max_attempts(64), 1);
    }

    #[test]
    fn dnsbl_one_or_many_and_faults() {
        #[derive(Deserialize)]
        struct T {
            #[serde(deserialize_with = "dnsbl_list")]
            dnsbl: Vec<DnsblSpec>,
        }
        let t: T =
            serde_yaml::from_str("dnsbl: { zone: bl.spamcop.net, listed: { 203.0.113.66: spam source } }").unwrap();
        assert_eq!(t.dnsbl[0].listed["203.0.113.66"].as_deref(), Some("spam source"));
        let t: T = serde_yaml::from_str("dnsbl: [{ zone: a.example }, { zone: b.example }]").unwrap();
        assert_eq!(t.dnsbl.len(), 2);
        assert!(serde_yaml::from_str::<T>("dnsbl: { zone: a, lsted: {} }").is_err());
        let f: DnsFaultSpec =
            serde_yaml::from_str("{ name: sysiphus.com, type: MX, fault: servfail, times: 1 }").unwrap();
        assert_eq!(f.to_fault().unwrap().kind, mock_dns::FaultKind::ServFail);
        let f: DnsFaultSpec = serde_yaml::from_str("{ name: x, delay: 1s }").unwrap();
        assert_eq!(f.to_fault().unwrap().kind, mock_dns::FaultKind::Answer);
        let f: DnsFaultSpec = serde_yaml::from_str("{ name: x }").unwrap();
        assert!(f.to_fault().is_err());
    }
}
