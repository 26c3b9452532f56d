//! Faults: what the mock DNS does to a query instead of answering it from
//! the zone, decided per name and type before the catalog is asked (in the
//! spirit of hickory's test-support `with_mutation` and Exim's fakens).
//!
//! - `servfail`, `nxdomain`, `refused`: that response code, no records.
//! - `timeout`: no response at all; the client's own timeout decides.
//! - `truncate`: over UDP an empty response with the TC bit set, which makes
//!   a resolver retry over TCP; TCP queries are answered normally.
//! - `delay`: wait before doing any of the above (or answering normally).
//!
//! A fault can apply to the first `times` matching queries only.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What happens to a matching query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultKind {
    /// Answer SERVFAIL (a broken or lame server).
    ServFail,
    /// Answer NXDOMAIN although the name exists.
    NxDomain,
    /// Answer REFUSED.
    Refused,
    /// Never answer.
    Timeout,
    /// Over UDP: an empty truncated answer (TC bit), so the client retries over TCP.
    Truncate,
    /// Answer normally (with `delay`, a slow server).
    Answer,
}

impl FaultKind {
    /// Parse `servfail`, `nxdomain`, `refused`, `timeout`, `truncate`, `answer`.
    pub fn parse(s: &str) -> Result<FaultKind, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "servfail" => FaultKind::ServFail,
            "nxdomain" => FaultKind::NxDomain,
            "refused" => FaultKind::Refused,
            "timeout" | "no_answer" | "drop" => FaultKind::Timeout,
            "truncate" | "truncated" | "tc" => FaultKind::Truncate,
            "answer" | "none" => FaultKind::Answer,
            other => {
                return Err(format!(
                    "unknown DNS fault {other:?}: expected servfail, nxdomain, refused, timeout, truncate or answer (with a delay)"
                ))
            }
        })
    }

    /// The word used in the query log.
    pub fn word(self) -> &'static str {
        match self {
            FaultKind::ServFail => "servfail",
            FaultKind::NxDomain => "nxdomain",
            FaultKind::Refused => "refused",
            FaultKind::Timeout => "timeout",
            FaultKind::Truncate => "truncate",
            FaultKind::Answer => "delay",
        }
    }
}

/// One fault rule.
#[derive(Debug, Clone)]
pub struct Fault {
    /// `name` exactly (case-insensitive, trailing dot ignored), or `*.suffix`
    /// for every name under `suffix`, or `*` for every name.
    pub name: String,
    /// Record type (`A`, `MX`, ...), or `None` for every type.
    pub rtype: Option<String>,
    /// What happens.
    pub kind: FaultKind,
    /// Wait this long first.
    pub delay: Duration,
    /// Apply to the first `n` matching queries only.
    pub times: Option<u32>,
    used: Arc<AtomicU32>,
}

impl Fault {
    /// A fault for `name` (and every type).
    pub fn new(name: &str, kind: FaultKind) -> Fault {
        Fault { name: normalize(name), rtype: None, kind, delay: Duration::ZERO, times: None, used: Arc::default() }
    }

    /// Only for this record type.
    pub fn for_type(mut self, rtype: &str) -> Fault {
        self.rtype = Some(rtype.trim().to_ascii_uppercase());
        self
    }

    /// After a delay.
    pub fn delayed(mut self, delay: Duration) -> Fault {
        self.delay = delay;
        self
    }

    /// For the first `n` matching queries only.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }

    fn matches(&self, name: &str, qtype: &str) -> bool {
        let type_ok = self.rtype.as_deref().is_none_or(|t| t.eq_ignore_ascii_case(qtype));
        let name_ok = if self.name == "*" {
            true
        } else if let Some(suffix) = self.name.strip_prefix("*.") {
            name.len() > suffix.len() + 1
                && name.ends_with(suffix)
                && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
        } else {
            self.name == name
        };
        type_ok && name_ok
    }

    fn take(&self) -> bool {
        match self.times {
            None => true,
            Some(n) => self.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| (u < n).then_some(u + 1)).is_ok(),
        }
    }
}

fn normalize(name: &str) -> String {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if n.is_empty() {
        ".".into()
    } else {
        n
    }
}

/// The faults in force, shared by the server and whoever edits them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults(Arc<RwLock<Vec<Fault>>>);

impl Faults {
    pub(crate) fn push(&self, f: Fault) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).push(f);
    }

    pub(crate) fn clear(&self) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub(crate) fn remove(&self, name: &str) {
        let name = normalize(name);
        self.0.write().unwrap_or_else(|p| p.into_inner()).retain(|f| f.name != name);
    }

    pub(crate) fn list(&self) -> Vec<Fault> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The first fault for this query that still applies (counting one use).
    pub(crate) fn for_query(&self, name: &str, qtype: &str) -> Option<Fault> {
        let faults = self.0.read().unwrap_or_else(|p| p.into_inner());
        if faults.is_empty() {
            return None;
        }
        faults.iter().find(|f| f.matches(name, qtype) && f.take()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_types_and_counts() {
        let faults = Faults::default();
        faults.push(Fault::new("Sysiphus.com.", FaultKind::ServFail).for_type("mx").times(1));
        faults.push(Fault::new("*.bl.spamcop.net", FaultKind::Timeout));
        assert_eq!(faults.for_query("sysiphus.com", "A").map(|f| f.kind), None);
        assert_eq!(faults.for_query("sysiphus.com", "MX").map(|f| f.kind), Some(FaultKind::ServFail));
        assert_eq!(faults.for_query("sysiphus.com", "MX").map(|f| f.kind), None, "times: 1 is used up");
        assert_eq!(faults.for_query("66.113.0.203.bl.spamcop.net", "A").map(|f| f.kind), Some(FaultKind::Timeout));
        assert_eq!(faults.for_query("bl.spamcop.net", "A").map(|f| f.kind), None);
        assert_eq!(faults.for_query("xbl.spamcop.net", "A").map(|f| f.kind), None);
        faults.remove("*.bl.spamcop.net");
        assert!(faults.list().len() == 1);
        assert_eq!(FaultKind::parse("TC"), Ok(FaultKind::Truncate));
        assert!(FaultKind::parse("slow").unwrap_err().contains("expected servfail"));
    }
}
