//! The one clock a lab reads.
//!
//! Every date the relay writes (greeting, `Received:`, `Date:`, queue ids, log
//! stamps) comes from a [`Clock`], never from the system directly, and every
//! wait that belongs to mail time (a queue run interval, a greylist delay, a
//! retry schedule) sleeps on it. Two clocks exist:
//!
//! - [`WallClock`]: real time; used against real MTAs and by `relaylab relay serve`.
//! - [`VirtualClock`]: lab time that only moves when the lab moves it. The
//!   runner advances it to the next due timer once every party is idle, or by
//!   an explicit `advance: 4h` step, so a five-day queue lifetime passes in
//!   milliseconds of wall time.
//!
//! Network timeouts (how long to wait for an SMTP reply) are *not* mail time:
//! they guard real sockets and stay on tokio's real timers.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// A future returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of "now", and of waits measured in mail time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant in UTC.
    fn now(&self) -> DateTime<Utc>;

    /// Wait until `deadline`. The wall clock sleeps; a virtual clock waits
    /// until the lab advances past `deadline`.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let wait = (deadline - self.now()).to_std().unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(wait))
    }

    /// Wait for `d` of this clock's time.
    fn sleep(&self, d: Duration) -> Sleep {
        let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        self.sleep_until(self.now() + d)
    }

    /// True for a clock that only moves when the lab moves it.
    fn is_virtual(&self) -> bool {
        false
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock fixed at one instant (tests and golden output).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The wall clock as a shared handle.
pub fn wall() -> SharedClock {
    Arc::new(WallClock)
}

/// Lab time that moves only when told to.
///
/// Sleepers register a timer; [`VirtualClock::advance_to`] moves "now" and
/// wakes every timer that has come due, in deadline order. The clock never
/// moves by itself, so a lab decides when everyone is idle and it is safe to
/// jump ahead ([`VirtualClock::advance_to_next`]).
#[derive(Debug)]
pub struct VirtualClock {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    now: DateTime<Utc>,
    /// Pending timers by (deadline, registration order).
    timers: BTreeMap<(DateTime<Utc>, u64), oneshot::Sender<()>>,
    seq: u64,
}

impl VirtualClock {
    /// A virtual clock starting at `start`.
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(VirtualClock { state: Mutex::new(State { now: start, timers: BTreeMap::new(), seq: 0 }) })
    }

    /// The earliest deadline anyone is still waiting for.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        let mut s = self.state.lock().unwrap();
        // Sleeps that were dropped (a cancelled wait) are no reason to advance.
        s.timers.retain(|_, tx| !tx.is_closed());
        s.timers.keys().next().map(|(t, _)| *t)
    }

    /// How many timers are pending.
    pub fn pending(&self) -> usize {
        let mut s = self.state.lock().unwrap();
        s.timers.retain(|_, tx| !tx.is_closed());
        s.timers.len()
    }

    /// Move to `t` (never backwards) and wake every timer due by then.
    pub fn advance_to(&self, t: DateTime<Utc>) {
        let due = {
            let mut s = self.state.lock().unwrap();
            if t > s.now {
                s.now = t;
            }
            let now = s.now;
            let later = s.timers.split_off(&(now, u64::MAX));
            std::mem::replace(&mut s.timers, later)
        };
        for (_, tx) in due {
            let _ = tx.send(());
        }
    }

    /// Move forward by `d`.
    pub fn advance(&self, d: Duration) {
        let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let t = self.now() + d;
        self.advance_to(t);
    }

    /// Jump to the earliest pending deadline, no further than `limit`, and
    /// wake what is due. Returns the new time, or `None` when nothing waits
    /// before `limit`.
    pub fn advance_to_next(&self, limit: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = self.next_due().filter(|t| *t <= limit)?;
        self.advance_to(next);
        Some(next)
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        self.state.lock().unwrap().now
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let mut s = self.state.lock().unwrap();
        if deadline <= s.now {
            return Box::pin(std::future::ready(()));
        }
        let (tx, rx) = oneshot::channel();
        s.seq += 1;
        let key = (deadline, s.seq);
        s.timers.insert(key, tx);
        Box::pin(async move {
            // A dropped clock wakes everyone rather than leaving them hanging.
            let _ = rx.await;
        })
    }

    fn is_virtual(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2006, 1, 5, 6, 28, 0).unwrap()
    }

    #[tokio::test]
    async fn virtual_sleep_waits_for_the_lab_to_advance() {
        let clock = VirtualClock::new(t0());
        let c: SharedClock = clock.clone();
        let sleeper = tokio::spawn(async move {
            c.sleep(Duration::from_secs(4 * 3600)).await;
            c.now()
        });
        tokio::task::yield_now().await;
        assert_eq!(clock.pending(), 1);
        clock.advance(Duration::from_secs(3600));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke an hour in, four hours early");
        clock.advance(Duration::from_secs(3 * 3600));
        let woke_at = tokio::time::timeout(Duration::from_secs(1), sleeper).await.unwrap().unwrap();
        assert_eq!(woke_at, t0() + chrono::Duration::hours(4));
    }

    #[tokio::test]
    async fn advance_to_next_jumps_to_the_earliest_deadline_within_the_limit() {
        let clock = VirtualClock::new(t0());
        let a = clock.sleep(Duration::from_secs(30 * 60));
        let b = clock.sleep(Duration::from_secs(5 * 24 * 3600));
        let limit = t0() + chrono::Duration::days(1);
        assert_eq!(clock.advance_to_next(limit), Some(t0() + chrono::Duration::minutes(30)));
        tokio::time::timeout(Duration::from_secs(1), a).await.expect("30-minute sleeper woke");
        assert_eq!(clock.advance_to_next(limit), None, "the 5-day timer lies beyond the limit");
        assert_eq!(clock.now(), t0() + chrono::Duration::minutes(30));
        clock.advance_to_next(t0() + chrono::Duration::days(6));
        tokio::time::timeout(Duration::from_secs(1), b).await.expect("5-day sleeper woke");
        assert_eq!(clock.now(), t0() + chrono::Duration::days(5));
    }

    #[tokio::test]
    async fn cancelled_sleeps_do_not_count_and_time_never_goes_back() {
        let clock = VirtualClock::new(t0());
        drop(clock.sleep(Duration::from_secs(60)));
        assert_eq!(clock.next_due(), None);
        clock.advance(Duration::from_secs(10));
        clock.advance_to(t0());
        assert_eq!(clock.now(), t0() + chrono::Duration::seconds(10));
        // A deadline already passed does not wait at all.
        tokio::time::timeout(Duration::from_millis(100), clock.sleep_until(t0())).await.unwrap();
    }

    #[tokio::test]
    async fn wall_clock_sleeps_for_real() {
        let c = WallClock;
        let started = std::time::Instant::now();
        c.sleep(Duration::from_millis(20)).await;
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(!c.is_virtual());
    }
}
