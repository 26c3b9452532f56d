//! The one clock a lab reads.
//!
//! Every date the relay writes (greeting, `Received:`, `Date:`, queue ids, log
//! stamps) comes from a [`Clock`], never from the system directly, and every
//! wait that belongs to mail time (a queue run interval, a greylist delay, a
//! retry schedule) sleeps on it. Two clocks exist:
//!
//! - [`WallClock`]: real time; used against real MTAs and by `relaylab relay serve`.
//! - [`VirtualClock`]: lab time the lab moves. Labs use the *flowing* kind:
//!   it runs at wall speed, and the runner makes it jump to the next due
//!   timer once every party is idle (or by an explicit `advance: 4h` step),
//!   so a five-day queue lifetime passes in milliseconds of wall time while
//!   parties that still wait in real time see time pass as usual.
//!
//! A sleeper that starts work when its timer fires (the relay's queue
//! runner) uses [`Clock::sleep_until_woken`] and holds the returned [`Wake`]
//! until it has marked itself busy; the lab does not jump again while any
//! `Wake` is held ([`VirtualClock::waking`]).
//!
//! Network timeouts (how long to wait for an SMTP reply) are *not* mail time:
//! they guard real sockets and stay on tokio's real timers.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// A future returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A future returned by [`Clock::sleep_until_woken`].
pub type WakeSleep = Pin<Box<dyn Future<Output = Wake> + Send + 'static>>;

/// Proof that a virtual timer woke this task, held until the task has said
/// it is busy.
///
/// When a lab advances its virtual clock it must not advance again before
/// the work that timer started has begun: a queue runner woken at 01:00 has
/// to mark itself busy before the lab looks for the next timer, or the lab
/// would see everyone idle and jump over the queue run. A sleeper that does
/// timer-driven work takes the `Wake`, marks itself busy, then drops it; the
/// lab waits while [`VirtualClock::waking`] is above zero. Plain sleeps drop
/// it at once. The wall clock hands out empty ones.
#[derive(Debug)]
#[must_use = "drop the Wake only once the woken work is marked busy"]
pub struct Wake(Option<Arc<AtomicUsize>>);

impl Wake {
    /// A token that counts for nothing (wall clock, real-time expiry).
    pub fn none() -> Wake {
        Wake(None)
    }

    fn counted(count: &Arc<AtomicUsize>) -> Wake {
        count.fetch_add(1, Ordering::SeqCst);
        Wake(Some(count.clone()))
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

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

    /// Like [`sleep_until`](Clock::sleep_until), handing back the [`Wake`]
    /// token of a virtual timer: keep it until the work the timer starts is
    /// marked busy.
    fn sleep_until_woken(&self, deadline: DateTime<Utc>) -> WakeSleep {
        let sleep = self.sleep_until(deadline);
        Box::pin(async move {
            sleep.await;
            Wake::none()
        })
    }

    /// True for a clock that only moves when the lab moves it.
    fn is_virtual(&self) -> bool {
        false
    }

    /// The virtual clock behind this handle, if it is one (the lab needs it
    /// to advance time).
    fn as_virtual(&self) -> Option<&VirtualClock> {
        None
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

/// The wall clock, held at its start until [`release`](StartLatchedClock::release).
///
/// A real MTA takes a second or more to come up. Lab time 0 must be when it
/// can take mail, or a host's "down for the first 2 seconds" would be over
/// before the relay ever tried it: until released, `now` stays at the start
/// and sleepers wait; then time flows at wall speed from that start.
#[derive(Debug)]
pub struct StartLatchedClock {
    start: DateTime<Utc>,
    released: tokio::sync::watch::Sender<Option<std::time::Instant>>,
}

impl StartLatchedClock {
    /// Held at the wall clock's now.
    pub fn new() -> Arc<Self> {
        Arc::new(StartLatchedClock { start: Utc::now(), released: tokio::sync::watch::Sender::new(None) })
    }

    /// Let time flow from here on (once; later calls do nothing).
    pub fn release(&self) {
        self.released.send_if_modified(|r| r.is_none() && r.replace(std::time::Instant::now()).is_none());
    }
}

impl Clock for StartLatchedClock {
    fn now(&self) -> DateTime<Utc> {
        match *self.released.borrow() {
            Some(at) => self.start + chrono::Duration::from_std(at.elapsed()).unwrap_or(chrono::Duration::MAX),
            None => self.start,
        }
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let mut rx = self.released.subscribe();
        let start = self.start;
        Box::pin(async move {
            // Wait for the release (a dropped clock releases nobody: sleep on).
            let released = rx.wait_for(Option::is_some).await.map(|r| *r).ok().flatten();
            let Some(at) = released else { return std::future::pending().await };
            let due = (deadline - start).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(due.saturating_sub(at.elapsed())).await;
        })
    }
}

/// Lab time that moves when the lab moves it.
///
/// Sleepers register a timer; [`VirtualClock::advance_to`] moves "now" and
/// wakes every timer that has come due, in deadline order. The lab decides
/// when everyone is idle and it is safe to jump ahead
/// ([`VirtualClock::advance_to_next`]).
///
/// Two kinds exist:
/// - [`VirtualClock::new`]: frozen between jumps; time moves only by
///   `advance`. Exact, for unit tests.
/// - [`VirtualClock::flowing`]: also runs at wall speed between jumps, so
///   parties that still wait in real time (a mock host's one-second reply
///   delay, a retrying sender's schedule, a socket timeout) see time pass as
///   they would on the wall clock, while the lab skips the idle hours and
///   days in between. This is the clock labs run on.
#[derive(Debug)]
pub struct VirtualClock {
    state: Mutex<State>,
    /// Timers fired by `advance` whose sleepers still hold their [`Wake`].
    waking: Arc<AtomicUsize>,
    /// Bumped on every jump, so real-time sleepers recompute what is left.
    jumps: watch::Sender<u64>,
    flowing: bool,
    me: Weak<VirtualClock>,
}

#[derive(Debug)]
struct State {
    /// "Now" at `base_real` (the last jump).
    base: DateTime<Utc>,
    /// When the last jump happened, in real time (flowing clocks only).
    base_real: Instant,
    /// Pending timers by (deadline, registration order).
    timers: BTreeMap<(DateTime<Utc>, u64), oneshot::Sender<Wake>>,
    seq: u64,
}

impl State {
    fn now(&self, flowing: bool) -> DateTime<Utc> {
        if flowing {
            let real = chrono::Duration::from_std(self.base_real.elapsed()).unwrap_or(chrono::Duration::zero());
            self.base + real
        } else {
            self.base
        }
    }
}

impl VirtualClock {
    /// A frozen virtual clock starting at `start`: time moves only when advanced.
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Self::make(start, false)
    }

    /// A virtual clock starting at `start` that also runs at wall speed
    /// between jumps.
    pub fn flowing(start: DateTime<Utc>) -> Arc<Self> {
        Self::make(start, true)
    }

    fn make(start: DateTime<Utc>, flowing: bool) -> Arc<Self> {
        Arc::new_cyclic(|me| VirtualClock {
            state: Mutex::new(State { base: start, base_real: Instant::now(), timers: BTreeMap::new(), seq: 0 }),
            waking: Arc::new(AtomicUsize::new(0)),
            jumps: watch::channel(0).0,
            flowing,
            me: me.clone(),
        })
    }

    /// True when time also runs at wall speed between jumps.
    pub fn is_flowing(&self) -> bool {
        self.flowing
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

    /// Sleepers woken by a jump that have not yet dropped their [`Wake`]:
    /// work that is about to start. The lab must not advance while this is
    /// above zero.
    pub fn waking(&self) -> usize {
        self.waking.load(Ordering::SeqCst)
    }

    /// Move to `t` (never backwards) and wake every timer due by then.
    pub fn advance_to(&self, t: DateTime<Utc>) {
        let due = {
            let mut s = self.state.lock().unwrap();
            if t > s.now(self.flowing) {
                s.base = t;
                s.base_real = Instant::now();
            }
            let now = s.now(self.flowing);
            let later = s.timers.split_off(&(now, u64::MAX));
            std::mem::replace(&mut s.timers, later)
        };
        for (_, tx) in due {
            // A receiver dropped meanwhile gets the token dropped with the send.
            let _ = tx.send(Wake::counted(&self.waking));
        }
        self.jumps.send_modify(|n| *n += 1);
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

    fn remove_timer(&self, key: &(DateTime<Utc>, u64)) {
        self.state.lock().unwrap().timers.remove(key);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        self.state.lock().unwrap().now(self.flowing)
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let woken = self.sleep_until_woken(deadline);
        Box::pin(async move {
            drop(woken.await);
        })
    }

    fn sleep_until_woken(&self, deadline: DateTime<Utc>) -> WakeSleep {
        let (tx, mut rx) = oneshot::channel::<Wake>();
        let key = {
            let mut s = self.state.lock().unwrap();
            if deadline <= s.now(self.flowing) {
                return Box::pin(std::future::ready(Wake::none()));
            }
            s.seq += 1;
            let key = (deadline, s.seq);
            s.timers.insert(key, tx);
            key
        };
        let clock = match (self.flowing, self.me.upgrade()) {
            (true, Some(c)) => c,
            // A frozen clock wakes sleepers only by jumps; a dropped clock
            // wakes everyone rather than leaving them hanging.
            _ => return Box::pin(async move { rx.await.unwrap_or_else(|_| Wake::none()) }),
        };
        let mut jumps = clock.jumps.subscribe();
        Box::pin(async move {
            loop {
                let left = (deadline - clock.now()).to_std().unwrap_or(Duration::ZERO);
                if left.is_zero() {
                    // Due by the flow of time (or fired by a jump just now).
                    clock.remove_timer(&key);
                    return rx.try_recv().unwrap_or_else(|_| Wake::none());
                }
                tokio::select! {
                    biased;
                    woken = &mut rx => return woken.unwrap_or_else(|_| Wake::none()),
                    _ = jumps.changed() => {}
                    _ = tokio::time::sleep(left) => {}
                }
            }
        })
    }

    fn is_virtual(&self) -> bool {
        true
    }

    fn as_virtual(&self) -> Option<&VirtualClock> {
        Some(self)
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
    async fn a_woken_sleeper_holds_the_lab_until_it_drops_its_wake() {
        let clock = VirtualClock::new(t0());
        let c: SharedClock = clock.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let sleeper = tokio::spawn(async move {
            let wake = c.sleep_until_woken(t0() + chrono::Duration::hours(1)).await;
            // ... the woken work marks itself busy here, then lets go.
            let _ = rx.await;
            drop(wake);
        });
        tokio::task::yield_now().await;
        assert_eq!(clock.waking(), 0);
        clock.advance(Duration::from_secs(3600));
        // Fired but not yet dropped: the lab must wait.
        assert_eq!(clock.waking(), 1);
        tx.send(()).unwrap();
        sleeper.await.unwrap();
        assert_eq!(clock.waking(), 0);
        // A timer whose sleeper went away does not count as waking.
        let gone = clock.sleep_until_woken(t0() + chrono::Duration::hours(2));
        drop(gone);
        clock.advance(Duration::from_secs(7200));
        assert_eq!(clock.waking(), 0);
    }

    #[tokio::test]
    async fn a_flowing_clock_runs_at_wall_speed_and_jumps() {
        let clock = VirtualClock::flowing(t0());
        let c: SharedClock = clock.clone();
        // A short sleep wakes by the flow of time, nobody advancing.
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(2), c.sleep(Duration::from_millis(30))).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(25));
        assert!(c.now() >= t0() + chrono::Duration::milliseconds(30));
        // A long one wakes by a jump, early in wall time.
        let c2 = c.clone();
        let day = tokio::spawn(async move {
            c2.sleep(Duration::from_secs(86_400)).await;
            c2.now()
        });
        tokio::task::yield_now().await;
        assert_eq!(clock.pending(), 1);
        let next = clock.advance_to_next(t0() + chrono::Duration::days(2)).unwrap();
        let woke = tokio::time::timeout(Duration::from_secs(1), day).await.unwrap().unwrap();
        assert!(woke >= next && next >= t0() + chrono::Duration::days(1));
        // A jump that stops short of a deadline shortens the real wait.
        let c3 = c.clone();
        let hour = tokio::spawn(async move { c3.sleep(Duration::from_secs(3600)).await });
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(3600 - 1));
        tokio::time::timeout(Duration::from_secs(3), hour).await.expect("woke about a second later").unwrap();
        assert!(clock.as_virtual().is_some() && clock.is_flowing());
    }

    #[tokio::test]
    async fn wall_clock_sleeps_for_real() {
        let c = WallClock;
        let started = std::time::Instant::now();
        c.sleep(Duration::from_millis(20)).await;
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(!c.is_virtual());
        assert!(c.as_virtual().is_none());
        let w = tokio::time::timeout(Duration::from_secs(1), c.sleep_until_woken(Utc::now())).await.unwrap();
        drop(w);
    }

    #[tokio::test]
    async fn a_latched_clock_holds_its_start_until_released() {
        let c = StartLatchedClock::new();
        let start = c.now();
        let due = start + chrono::Duration::milliseconds(50);
        let sleeper = tokio::spawn({
            let c = Arc::clone(&c);
            async move {
                c.sleep_until(due).await;
                std::time::Instant::now()
            }
        });
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(c.now(), start, "held");
        assert!(!sleeper.is_finished(), "a sleeper waits for the release");
        let released = std::time::Instant::now();
        c.release();
        let woke = sleeper.await.unwrap();
        let waited = woke - released;
        assert!(waited >= Duration::from_millis(45) && waited < Duration::from_millis(500), "{waited:?}");
        assert!(c.now() > start);
        c.release();
        assert!(c.now() - start >= chrono::Duration::milliseconds(45), "a second release does not restart");
    }
}
