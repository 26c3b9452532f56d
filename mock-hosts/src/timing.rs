//! Every wait an actor of the virtual internet makes, in one place.
//!
//! Mail time (a greylist delay, a retry schedule, an outage window, a slow
//! reply, a target send rate) is read from the lab's [`Clock`](lab_core::Clock)
//! and waited for here and nowhere else, on that clock: the wall clock sleeps
//! for real; a virtual clock wakes the sleeper when the lab advances past the
//! deadline. So every actor follows the lab onto virtual time unchanged.
//!
//! Network timeouts (how long to wait for an SMTP reply or a connect) are not
//! mail time: they guard real sockets and stay on tokio's timers where they are.

use chrono::{DateTime, Utc};
use lab_core::SharedClock;
use std::time::Duration;

/// The lab's time as an actor sees it: the clock, and the instant the lab
/// started, which schedules (`down: [0s, 2s]`) count from.
#[derive(Debug, Clone)]
pub struct LabTime {
    clock: SharedClock,
    epoch: DateTime<Utc>,
}

impl LabTime {
    /// Lab time on `clock`, counting from `epoch`.
    pub fn new(clock: SharedClock, epoch: DateTime<Utc>) -> Self {
        LabTime { clock, epoch }
    }

    /// Lab time on `clock`, counting from now.
    pub fn starting_now(clock: SharedClock) -> Self {
        let epoch = clock.now();
        LabTime { clock, epoch }
    }

    /// Lab time on the wall clock, counting from now (tests, benchmarks).
    pub fn wall() -> Self {
        Self::starting_now(lab_core::clock::wall())
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// When the lab started.
    pub fn epoch(&self) -> DateTime<Utc> {
        self.epoch
    }

    /// Now, on the lab clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// How long the lab has been running (zero before its start).
    pub fn elapsed(&self) -> Duration {
        self.since(self.epoch)
    }

    /// Lab time passed since `then` (zero if `then` is in the future).
    pub fn since(&self, then: DateTime<Utc>) -> Duration {
        (self.clock.now() - then).to_std().unwrap_or(Duration::ZERO)
    }

    /// Wait `d` of lab time: a real sleep on the wall clock; on a virtual
    /// clock a timer the lab may jump to (it still runs out at wall speed
    /// when nobody jumps).
    pub async fn sleep(&self, d: Duration) {
        if !d.is_zero() {
            self.clock.sleep(d).await;
        }
    }

    /// Wait until the lab has been running for `offset`.
    pub async fn sleep_until_offset(&self, offset: Duration) {
        self.sleep(offset.saturating_sub(self.elapsed())).await;
    }

    /// Wait until `then` on the lab clock.
    pub async fn sleep_until(&self, then: DateTime<Utc>) {
        if then > self.clock.now() {
            self.clock.sleep_until(then).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_follow_a_virtual_clock() {
        let start = DateTime::parse_from_rfc3339("2006-01-05T06:28:00Z").unwrap().to_utc();
        let clock = lab_core::VirtualClock::new(start);
        let t = LabTime::new(clock.clone(), start);
        let waiter = tokio::spawn({
            let t = t.clone();
            async move {
                t.sleep_until_offset(Duration::from_secs(2 * 3600)).await;
                t.elapsed()
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "two hours of lab time have not passed");
        clock.advance(Duration::from_secs(2 * 3600));
        let waited =
            tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("woken by the lab clock").unwrap();
        assert_eq!(waited, Duration::from_secs(2 * 3600));
    }

    #[tokio::test]
    async fn offsets_count_from_the_epoch() {
        let t = LabTime::wall();
        assert!(t.elapsed() < Duration::from_secs(1));
        t.sleep_until_offset(Duration::from_millis(30)).await;
        assert!(t.elapsed() >= Duration::from_millis(30));
        // An offset already passed does not wait.
        let before = std::time::Instant::now();
        t.sleep_until_offset(Duration::from_millis(1)).await;
        assert!(before.elapsed() < Duration::from_millis(20));
    }
}
