//! A sending MTA that queues a message on a temporary failure and retries it
//! on a schedule, as greylisting expects real MTAs to (spec §9.5).
//!
//! RFC 5321 4.5.4.1 asks for retries no sooner than 30 minutes apart and
//! giving up after 4–5 days; a lab can declare that schedule as it is
//! (`retry: [30m, 1h, 2h]`, `give_up_after: 4d`) or a short one. The
//! intervals are waits after the end of the previous attempt; when they run
//! out the last one repeats, until the next attempt would start later than
//! `give_up_after` after the first.
//!
//! Between attempts the sender sleeps on the lab clock, and only then: with
//! [`RetryingSender::run_tracked`] it counts itself busy on an [`Activity`]
//! from its start to its end except while asleep, and holds the clock's
//! [`Wake`](lab_core::clock::Wake) until it is busy again, so a lab on the
//! virtual clock can jump straight to its next retry (and to anything else
//! due before it) without ever jumping in the middle of an attempt.
//!
//! Two habits of real senders that greylists must cope with:
//! - a **server farm**: each attempt may leave from another address of the
//!   same /24 (`sources`);
//! - a **list server with bounce tracking**: each attempt may use a new
//!   envelope sender (`{n}` in the sender, or `vary_sender`), so the
//!   (client, sender, recipient) triplet never repeats.
//!
//! A 5xx ends it (bounced), a 2xx ends it (delivered); 4xx, refused
//! connections, timeouts and broken connections are retried.

use crate::outbound::{self, Delivery, Submission};
use crate::timing::LabTime;
use lab_core::{Activity, BusyGuard, Reply, Transcript};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// When to try again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before retry 1, 2, ...; the last repeats. Empty: never retry
    /// (fire and forget, as spamware does).
    pub intervals: Vec<Duration>,
    /// No attempt starts later than this after the first.
    pub give_up_after: Duration,
}

impl RetryPolicy {
    /// The wait before retry `k` (1-based), if there are retries at all.
    pub fn wait_before(&self, k: usize) -> Option<Duration> {
        let last = self.intervals.len().checked_sub(1)?;
        Some(self.intervals[k.saturating_sub(1).min(last)])
    }
}

/// A message and how to keep trying it.
#[derive(Debug, Clone)]
pub struct RetryingSender {
    /// The server (the relay, or an MX directly).
    pub target: SocketAddr,
    /// Attempt `k` leaves from `sources[(k-1) % len]`; empty: the OS chooses.
    pub sources: Vec<IpAddr>,
    /// The EHLO name.
    pub helo: String,
    /// Envelope sender; `{n}` is replaced by the attempt number.
    pub mail_from: String,
    /// A new sender on every attempt: `local+<n>@domain` (when `{n}` is not used).
    pub vary_sender: bool,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// The message, CRLF line ends.
    pub data: Vec<u8>,
    /// The schedule.
    pub policy: RetryPolicy,
    /// Per connect and per reply.
    pub timeout: Duration,
    /// Transcript labels (`list-server -> relay`).
    pub label: String,
    /// Lab time: every wait goes through it.
    pub time: LabTime,
}

/// One attempt.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// 1-based.
    pub number: usize,
    /// When it started, after the first attempt's start.
    pub at: Duration,
    /// Where it left from.
    pub source: Option<IpAddr>,
    /// The envelope sender it used.
    pub mail_from: String,
    /// How it ended.
    pub outcome: Delivery,
    /// The deciding reply.
    pub reply: Option<Reply>,
    /// The transport error, if one decided it.
    pub error: Option<String>,
    /// What was said.
    pub transcript: Transcript,
}

/// How the message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Accepted on some attempt.
    Delivered,
    /// Refused for good (5xx).
    Bounced,
    /// Still failing when the schedule ran out.
    GaveUp,
}

impl Fate {
    /// `delivered`, `bounced`, `gave_up`.
    pub fn word(self) -> &'static str {
        match self {
            Fate::Delivered => "delivered",
            Fate::Bounced => "bounced",
            Fate::GaveUp => "gave_up",
        }
    }
}

/// Every attempt and the end.
#[derive(Debug, Clone)]
pub struct RetryRecord {
    /// In order.
    pub attempts: Vec<AttemptRecord>,
    /// How it ended.
    pub fate: Fate,
}

impl RetryingSender {
    /// The envelope sender of attempt `n`.
    pub fn sender_for(&self, n: usize) -> String {
        if self.mail_from.contains("{n}") {
            return self.mail_from.replace("{n}", &n.to_string());
        }
        match (self.vary_sender, self.mail_from.rsplit_once('@')) {
            (true, Some((local, domain))) => format!("{local}+{n}@{domain}"),
            _ => self.mail_from.clone(),
        }
    }

    /// Try until delivered, bounced or out of schedule. Every wait is bounded
    /// by the schedule; every attempt by the timeout.
    pub async fn run(&self) -> RetryRecord {
        self.run_tracked(&Activity::default()).await
    }

    /// [`run`](Self::run), busy on `activity` from this call (not from the
    /// first poll) until the end, except while asleep between attempts: the
    /// retry timer is registered before the sender goes idle, and on waking
    /// it is busy again before it lets go of the clock's `Wake`. Whoever
    /// moves a virtual clock may jump whenever `activity` is idle and the
    /// clock has nobody waking.
    pub fn run_tracked(&self, activity: &Activity) -> impl Future<Output = RetryRecord> + '_ {
        let busy = activity.busy();
        let activity = activity.clone();
        async move { self.attempts(activity, busy).await }
    }

    async fn attempts(&self, activity: Activity, mut busy: BusyGuard) -> RetryRecord {
        let first = self.time.now();
        let mut attempts = Vec::new();
        let mut n = 1;
        loop {
            let source = (!self.sources.is_empty()).then(|| self.sources[(n - 1) % self.sources.len()]);
            let mail_from = self.sender_for(n);
            let submission = Submission {
                source,
                target: self.target,
                timeout: self.timeout,
                helo: self.helo.clone(),
                mail_from: mail_from.clone(),
                rcpt_to: self.rcpt_to.clone(),
                data: self.data.clone(),
                label: format!("{} (attempt {n})", self.label),
            };
            let at = self.time.since(first);
            let done = outbound::submit(&submission).await;
            let outcome = done.outcome;
            attempts.push(AttemptRecord {
                number: n,
                at,
                source,
                mail_from,
                outcome,
                reply: done.reply,
                error: done.error,
                transcript: done.transcript,
            });
            match outcome {
                Delivery::Accepted => return RetryRecord { attempts, fate: Fate::Delivered },
                Delivery::Rejected => return RetryRecord { attempts, fate: Fate::Bounced },
                _ => {}
            }
            let Some(wait) = self.policy.wait_before(n) else {
                return RetryRecord { attempts, fate: Fate::GaveUp };
            };
            if self.time.since(first) + wait > self.policy.give_up_after {
                return RetryRecord { attempts, fate: Fate::GaveUp };
            }
            // The timer is in place before the sender goes idle, and it is
            // busy again before it lets go of the wake.
            let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            let deadline = self.time.now().checked_add_signed(wait).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
            let sleep = self.time.clock().sleep_until_woken(deadline);
            drop(busy);
            let wake = sleep.await;
            busy = activity.busy();
            drop(wake);
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(mail_from: &str, vary: bool) -> RetryingSender {
        RetryingSender {
            target: "127.0.0.1:1".parse().unwrap(),
            sources: Vec::new(),
            helo: "h".into(),
            mail_from: mail_from.into(),
            vary_sender: vary,
            rcpt_to: vec!["x@y".into()],
            data: Vec::new(),
            policy: RetryPolicy::default(),
            timeout: Duration::from_secs(1),
            label: "t".into(),
            time: LabTime::wall(),
        }
    }

    #[test]
    fn schedule_repeats_its_last_interval() {
        let p = RetryPolicy {
            intervals: vec![Duration::from_secs(1), Duration::from_secs(4)],
            give_up_after: Duration::MAX,
        };
        assert_eq!(p.wait_before(1), Some(Duration::from_secs(1)));
        assert_eq!(p.wait_before(2), Some(Duration::from_secs(4)));
        assert_eq!(p.wait_before(7), Some(Duration::from_secs(4)));
        assert_eq!(RetryPolicy::default().wait_before(1), None);
    }

    #[test]
    fn senders_can_change_on_every_attempt() {
        assert_eq!(sender("list@lists.example", false).sender_for(3), "list@lists.example");
        assert_eq!(sender("list@lists.example", true).sender_for(3), "list+3@lists.example");
        assert_eq!(sender("bounce-{n}@lists.example", false).sender_for(2), "bounce-2@lists.example");
    }
}
