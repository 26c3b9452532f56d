//! Dates as the relay writes them, in the profile's time zone.
//!
//! Talks to nothing: pure formatting of instants read from the lab clock.
//!
//! Three shapes are needed (spec §2.2, §5.2, §5.4, §6.1):
//! - RFC 2822 date for the greeting: `Wed, 4 Jan 2006 21:18:05 -0800`;
//! - the same with a zone comment for `Received:` and `Date:`:
//!   `Wed, 21 Dec 2005 18:24:20 -0800 (PST)`;
//! - the syslog stamp: `Jan  4 21:18:05` (day padded with a space).
//!
//! The zone comment: a profile can only give a UTC offset, and an offset does
//! not determine a zone name, so we never invent one. `timezone: "-0800 PST"`
//! names it (`(PST)`); otherwise `+0000` gives `(UTC)` and any other offset
//! gives `(UTC-08:00)`.

use chrono::{DateTime, FixedOffset, Utc};
use std::fmt;

/// The profile's time zone: a fixed UTC offset and an optional name for the
/// zone comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    offset: FixedOffset,
    name: Option<String>,
}

/// Why a time zone string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time zone {0:?} is not a UTC offset: write it as ±HHMM, optionally followed by a zone name, e.g. \"-0800\" or \"-0800 PST\"")]
pub struct ZoneError(pub String);

impl Zone {
    /// UTC, commented `(UTC)`.
    pub fn utc() -> Zone {
        Zone { offset: FixedOffset::east_opt(0).expect("zero offset"), name: None }
    }

    /// Parse `±HHMM` optionally followed by blanks and a zone name
    /// (`-0800`, `+0100 CET`, `-0800 (PST)`).
    pub fn parse(text: &str) -> Result<Zone, ZoneError> {
        let err = || ZoneError(text.to_string());
        let t = text.trim();
        let (num, rest) = t.split_at(t.find(char::is_whitespace).unwrap_or(t.len()));
        let b = num.as_bytes();
        if b.len() != 5 || !(b[0] == b'+' || b[0] == b'-') || !b[1..].iter().all(u8::is_ascii_digit) {
            return Err(err());
        }
        let hours: i32 = num[1..3].parse().map_err(|_| err())?;
        let minutes: i32 = num[3..5].parse().map_err(|_| err())?;
        if hours > 14 || minutes > 59 {
            return Err(err());
        }
        let secs = (hours * 3600 + minutes * 60) * if b[0] == b'-' { -1 } else { 1 };
        let offset = FixedOffset::east_opt(secs).ok_or_else(err)?;
        let name = rest.trim().trim_start_matches('(').trim_end_matches(')').trim();
        if name.chars().any(|c| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '_' || c == '/')) {
            return Err(err());
        }
        let name = (!name.is_empty()).then(|| name.to_string());
        Ok(Zone { offset, name })
    }

    /// The UTC offset.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// The text inside the zone comment, without parentheses.
    pub fn comment(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let secs = self.offset.local_minus_utc();
        if secs == 0 {
            return "UTC".to_string();
        }
        let sign = if secs < 0 { '-' } else { '+' };
        let a = secs.abs();
        format!("UTC{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
    }

    fn local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        t.with_timezone(&self.offset)
    }

    /// `Wed, 4 Jan 2006 21:18:05 -0800` (greeting banner).
    pub fn rfc2822(&self, t: DateTime<Utc>) -> String {
        self.local(t).format("%a, %-d %b %Y %H:%M:%S %z").to_string()
    }

    /// `Wed, 4 Jan 2006 21:18:05 -0800 (PST)` (`Received:`, `Date:`).
    pub fn rfc2822_commented(&self, t: DateTime<Utc>) -> String {
        format!("{} ({})", self.rfc2822(t), self.comment())
    }

    /// `Jan  4 21:18:05` (syslog stamp).
    pub fn syslog(&self, t: DateTime<Utc>) -> String {
        self.local(t).format("%b %e %H:%M:%S").to_string()
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.offset)?;
        if let Some(n) = &self.name {
            write!(f, " {n}")?;
        }
        Ok(())
    }
}

/// `Message-Id:` time stamp: UTC `YYYYMMDDHHMM` (spec §5.4, `$t`).
pub fn message_id_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M").to_string()
}

/// A duration as Sendmail logs `delay=`/`xdelay=`: `HH:MM:SS`, with a
/// `D+` day prefix past 24 hours.
pub fn log_delay(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, s) = (s / 86_400, s % 86_400);
    let hms = format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60);
    if days > 0 {
        format!("{days}+{hms}")
    } else {
        hms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t() -> DateTime<Utc> {
        // 2006-01-05 05:18:05 UTC = Wed 4 Jan 21:18:05 PST
        Utc.with_ymd_and_hms(2006, 1, 5, 5, 18, 5).unwrap()
    }

    #[test]
    fn formats_in_the_profile_zone() {
        let z = Zone::parse("-0800").unwrap();
        assert_eq!(z.rfc2822(t()), "Wed, 4 Jan 2006 21:18:05 -0800");
        assert_eq!(z.rfc2822_commented(t()), "Wed, 4 Jan 2006 21:18:05 -0800 (UTC-08:00)");
        assert_eq!(z.syslog(t()), "Jan  4 21:18:05");
        let pst = Zone::parse("-0800 PST").unwrap();
        assert_eq!(pst.rfc2822_commented(t()), "Wed, 4 Jan 2006 21:18:05 -0800 (PST)");
        assert_eq!(Zone::parse("-0800 (PST)").unwrap(), pst);
        assert_eq!(Zone::utc().rfc2822_commented(t()), "Thu, 5 Jan 2006 05:18:05 +0000 (UTC)");
        assert_eq!(Zone::parse("+0530").unwrap().comment(), "UTC+05:30");
    }

    #[test]
    fn refuses_what_is_not_an_offset() {
        for bad in ["PST", "-8", "-08:00", "+2500", "-0800 P S T", "", "0800"] {
            assert!(Zone::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn delays_and_message_id_stamp() {
        assert_eq!(log_delay(chrono::Duration::seconds(75)), "00:01:15");
        assert_eq!(log_delay(chrono::Duration::seconds(86_400 + 3661)), "1+01:01:01");
        assert_eq!(log_delay(chrono::Duration::seconds(-3)), "00:00:00");
        // spec §5.4: 22:28 PST on Jan 4 = 200601050628
        assert_eq!(message_id_stamp(Utc.with_ymd_and_hms(2006, 1, 5, 6, 28, 13).unwrap()), "200601050628");
    }
}
