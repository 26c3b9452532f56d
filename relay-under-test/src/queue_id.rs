//! Queue ids in the Sendmail 8.13 layout (spec §6.5).
//!
//! Talks to nothing: ids are made from the lab clock and a pseudo-pid.
//!
//! `k056SDUq003739` reads: `k` year (years since 1900, mod 60), `0` month
//! (0-11), `5` day, `6` hour, `S` minute, `D` second, all UTC and base 60 over
//! `0-9A-Za-x`; then `Uq`, a two-character sequence that steps once per id;
//! then `003739`, the six-digit process id. Sendmail's own ids carry the PID
//! of the process that accepted the message, so the arrival log line's
//! `[pid]` equals the id's last six digits.

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};

/// The base-60 digits.
pub const QUEUE_ID_CHARS: &[u8; 60] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx";

/// Number of distinct sequence values (two base-60 digits).
const SEQ_SPACE: u32 = 60 * 60;

fn digit(v: u32) -> char {
    QUEUE_ID_CHARS[(v % 60) as usize] as char
}

fn value(c: u8) -> Option<u32> {
    QUEUE_ID_CHARS.iter().position(|&d| d == c).map(|p| p as u32)
}

/// Make one id from its parts. `seq` is taken mod 3600, `pid` mod 1 000 000.
pub fn format_queue_id(at: DateTime<Utc>, seq: u32, pid: u32) -> String {
    let seq = seq % SEQ_SPACE;
    let mut s = String::with_capacity(14);
    s.push(digit(((at.year() - 1900).rem_euclid(60)) as u32));
    s.push(digit(at.month0()));
    s.push(digit(at.day()));
    s.push(digit(at.hour()));
    s.push(digit(at.minute()));
    s.push(digit(at.second()));
    s.push(digit(seq / 60));
    s.push(digit(seq % 60));
    s.push_str(&format!("{:06}", pid % 1_000_000));
    s
}

/// Hands out the ids of one process (one inbound session here): the same
/// pid, a sequence that steps by one per id.
#[derive(Debug, Clone)]
pub struct QueueIdGen {
    pid: u32,
    seq: u32,
}

impl QueueIdGen {
    /// A generator for pseudo-process `pid`. The sequence starts at a
    /// pid-derived offset, as Sendmail starts at a random one.
    pub fn new(pid: u32) -> QueueIdGen {
        QueueIdGen { pid: pid % 1_000_000, seq: pid.wrapping_mul(2_654_435_761) % SEQ_SPACE }
    }

    /// The pid this generator stamps into its ids.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The next id, stamped with `now`.
    pub fn next_id(&mut self, now: DateTime<Utc>) -> String {
        let id = format_queue_id(now, self.seq, self.pid);
        self.seq = (self.seq + 1) % SEQ_SPACE;
        id
    }
}

/// An id taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedQueueId {
    /// When the id was made (UTC). The year is read in the window 1980-2039.
    pub at: DateTime<Utc>,
    /// The sequence value, 0..3600.
    pub seq: u32,
    /// The process id.
    pub pid: u32,
}

/// Take an 8.13-style id apart; `None` when it is not one.
pub fn decode_queue_id(id: &str) -> Option<DecodedQueueId> {
    let b = id.as_bytes();
    if b.len() != 14 || !b[8..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: Vec<u32> = b[..8].iter().map(|&c| value(c)).collect::<Option<_>>()?;
    let mut year = 1900 + v[0] as i32;
    while year < 1980 {
        year += 60;
    }
    let at = Utc.with_ymd_and_hms(year, v[1] + 1, v[2], v[3], v[4], v[5]).single()?;
    Some(DecodedQueueId { at, seq: v[6] * 60 + v[7], pid: id[8..].parse().ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_course_ids() {
        // spec §6.5: k056SDUq003739 = 2006, Jan, 5th, 06:28 UTC, PID 3739
        let d = decode_queue_id("k056SDUq003739").unwrap();
        assert_eq!(d.at, Utc.with_ymd_and_hms(2006, 1, 5, 6, 28, 13).unwrap());
        assert_eq!(d.pid, 3739);
        // jBLHvTar021527 = 2005, Dec, 21st, 17:57 UTC, PID 21527
        let d = decode_queue_id("jBLHvTar021527").unwrap();
        assert_eq!(d.at.format("%Y-%m-%d %H:%M").to_string(), "2005-12-21 17:57");
        assert_eq!(d.pid, 21527);
        assert_eq!(decode_queue_id("KAA06575"), None);
        assert_eq!(decode_queue_id("k056SDUq00373x"), None);
    }

    #[test]
    fn encodes_what_decodes() {
        let at = Utc.with_ymd_and_hms(2006, 1, 5, 6, 28, 13).unwrap();
        // "Uq" = 30*60 + 52
        assert_eq!(format_queue_id(at, 30 * 60 + 52, 3739), "k056SDUq003739");
        let now = Utc.with_ymd_and_hms(2026, 7, 31, 23, 59, 59).unwrap();
        let id = format_queue_id(now, 3599, 1_234_567);
        assert_eq!(id.len(), 14);
        assert!(id.ends_with("234567"));
        let d = decode_queue_id(&id).unwrap();
        assert_eq!((d.at, d.seq, d.pid), (now, 3599, 234_567));
    }

    #[test]
    fn consecutive_ids_differ_in_the_sequence_only() {
        // Like k057Enil004247 then k057Enim004247 in one session.
        let at = Utc.with_ymd_and_hms(2006, 1, 5, 7, 14, 21).unwrap();
        let mut g = QueueIdGen::new(4247);
        let a = g.next_id(at);
        let b = g.next_id(at);
        assert_eq!(a[..6], b[..6]);
        assert_eq!(a[8..], *"004247");
        assert_eq!(b[8..], *"004247");
        let (sa, sb) = (decode_queue_id(&a).unwrap().seq, decode_queue_id(&b).unwrap().seq);
        assert_eq!((sa + 1) % 3600, sb);
        // Another session (pid) gives a different id at the same instant.
        assert_ne!(QueueIdGen::new(4248).next_id(at), a);
    }
}
