//! The relay's log, in Sendmail's syslog shape (spec §6.1–6.4).
//!
//! Talks to nothing outside the process: lines are kept in memory for the
//! harness (and mirrored to `tracing`). A line reads
//! `Jan  4 22:29:53 int1 sm-mta[3739]: k056SDUq003739: from=...`:
//! syslog stamp in the profile's zone, short host name, tag, pseudo-pid,
//! queue id (or `NOQUEUE`), fields.

use crate::dates::Zone;
use lab_core::SharedClock;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Shared, append-only relay log.
#[derive(Debug, Clone)]
pub struct RelayLog {
    lines: Arc<Mutex<Vec<String>>>,
    short_host: String,
    tag: String,
    zone: Zone,
    clock: SharedClock,
}

impl RelayLog {
    /// A log for host `short_host` with syslog tag `tag`.
    pub fn new(short_host: &str, tag: &str, zone: Zone, clock: SharedClock) -> RelayLog {
        RelayLog { lines: Arc::default(), short_host: short_host.to_string(), tag: tag.to_string(), zone, clock }
    }

    /// Append `<stamp> <host> <tag>[<pid>]: <qid|NOQUEUE>: <text>`.
    pub fn log(&self, pid: u32, qid: Option<&str>, text: &str) {
        let line = format!(
            "{} {} {}[{}]: {}: {}",
            self.zone.syslog(self.clock.now()),
            self.short_host,
            self.tag,
            pid,
            qid.unwrap_or("NOQUEUE"),
            text
        );
        tracing::info!(target: "relay_under_test::maillog", "{line}");
        self.lines.lock().unwrap().push(line);
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// A client or next hop as the log's `relay=` shows it: `name [ip]`, or
/// `[ip]` when the address has no PTR name.
pub fn relay_name(name: Option<&str>, ip: IpAddr) -> String {
    match name {
        Some(n) => format!("{n} [{ip}]"),
        None => format!("[{ip}]"),
    }
}

/// Queue priority (spec §6.3, `[S]`): `size - class*1800 + nrcpts*30000`,
/// plus 90000 per queue run (`queue_runs`; 0 for the first attempt).
pub fn priority(size: u64, class: i64, nrcpts: u64, queue_runs: u64) -> i64 {
    size as i64 - class * 1800 + nrcpts as i64 * 30_000 + queue_runs as i64 * 90_000
}

/// The arrival line's fields (spec §6.2).
#[derive(Debug, Clone)]
pub struct FromLine<'a> {
    /// Envelope sender as the client gave it.
    pub from: &'a str,
    /// Message size (see [`crate::intake::logged_size`]).
    pub size: u64,
    /// Precedence class.
    pub class: i64,
    /// Accepted recipients.
    pub nrcpts: usize,
    /// The `Message-Id:` value.
    pub msgid: &'a str,
    /// `SMTP` or `ESMTP`.
    pub proto: &'a str,
    /// The daemon's name.
    pub daemon: &'a str,
    /// The client, `name [ip]`.
    pub relay: &'a str,
}

impl FromLine<'_> {
    /// The fields, comma-separated.
    pub fn render(&self) -> String {
        format!(
            "from={}, size={}, class={}, nrcpts={}, msgid={}, proto={}, daemon={}, relay={}",
            self.from, self.size, self.class, self.nrcpts, self.msgid, self.proto, self.daemon, self.relay
        )
    }
}

/// A delivery line's fields (spec §6.3).
#[derive(Debug, Clone)]
pub struct ToLine {
    /// Recipients as given, comma-joined when one transaction carried several.
    pub to: String,
    /// The controlling address and its `(uid/gid)`, for file and program
    /// deliveries (spec §6.3).
    pub ctladdr: Option<String>,
    /// Time since arrival, `HH:MM:SS`.
    pub delay: String,
    /// Time of this attempt, `HH:MM:SS`.
    pub xdelay: String,
    /// Delivery agent (`esmtp`).
    pub mailer: String,
    /// Queue priority.
    pub pri: i64,
    /// Next hop `name. [ip]`, or the name alone when no address was reached.
    pub relay: Option<String>,
    /// Enhanced status.
    pub dsn: String,
    /// Outcome text.
    pub stat: String,
}

impl ToLine {
    /// The fields, comma-separated.
    pub fn render(&self) -> String {
        let relay = self.relay.as_ref().map(|r| format!("relay={r}, ")).unwrap_or_default();
        let ctladdr = self.ctladdr.as_ref().map(|c| format!("ctladdr={c}, ")).unwrap_or_default();
        format!(
            "to={}, {ctladdr}delay={}, xdelay={}, mailer={}, pri={}, {}dsn={}, stat={}",
            self.to, self.delay, self.xdelay, self.mailer, self.pri, relay, self.dsn, self.stat
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use lab_core::clock::FixedClock;

    #[test]
    fn pri_matches_the_course_values() {
        assert_eq!(priority(108, 0, 1, 0), 30108);
        assert_eq!(priority(85, 0, 1, 1), 120085);
        assert_eq!(priority(560, 0, 4, 0), 120560);
        assert_eq!(priority(4410, -60, 1, 0), 142_410);
    }

    #[test]
    fn prefix_and_fields() {
        let clock = Arc::new(FixedClock(chrono::Utc.with_ymd_and_hms(2006, 1, 5, 6, 29, 53).unwrap()));
        let log = RelayLog::new("int1", "sm-mta", Zone::parse("-0800").unwrap(), clock);
        let from = FromLine {
            from: "bogus@deer-run.com",
            size: 85,
            class: 0,
            nrcpts: 1,
            msgid: "<200601050628.k056SDUq003739@int1.sysiphus.com>",
            proto: "SMTP",
            daemon: "MTA",
            relay: &relay_name(Some("localhost.localdomain"), "127.0.0.1".parse().unwrap()),
        };
        log.log(3739, Some("k056SDUq003739"), &from.render());
        log.log(3739, None, "lost input channel from [10.0.0.1] to MTA after rcpt");
        assert_eq!(
            log.lines(),
            vec![
                "Jan  4 22:29:53 int1 sm-mta[3739]: k056SDUq003739: from=bogus@deer-run.com, size=85, class=0, nrcpts=1, \
                 msgid=<200601050628.k056SDUq003739@int1.sysiphus.com>, proto=SMTP, daemon=MTA, \
                 relay=localhost.localdomain [127.0.0.1]"
                    .to_string(),
                "Jan  4 22:29:53 int1 sm-mta[3739]: NOQUEUE: lost input channel from [10.0.0.1] to MTA after rcpt"
                    .to_string(),
            ]
        );
        let to = ToLine {
            to: "hal@sysiphus.com".into(),
            ctladdr: None,
            delay: "00:01:15".into(),
            xdelay: "00:00:11".into(),
            mailer: "esmtp".into(),
            pri: 30085,
            relay: Some("exchange.sysiphus.com. [192.168.1.1]".into()),
            dsn: "2.0.0".into(),
            stat: "Sent (k05L67o01165 Message accepted for delivery)".into(),
        };
        assert_eq!(
            to.render(),
            "to=hal@sysiphus.com, delay=00:01:15, xdelay=00:00:11, mailer=esmtp, pri=30085, \
             relay=exchange.sysiphus.com. [192.168.1.1], dsn=2.0.0, stat=Sent (k05L67o01165 Message accepted for delivery)"
        );
    }
}
