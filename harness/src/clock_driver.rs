//! Moving a lab's clock: how days of mail time pass in milliseconds.
//!
//! A lab on the virtual clock (`clock: virtual`, the default) lets time run
//! at wall speed and jumps over the idle stretches: when the relay has no
//! delivery running and no host has mail to pass on ([`Lab::settle`]), and
//! no timer that just fired is still starting its work
//! ([`VirtualClock::waking`]), the clock jumps to the next timer anyone is
//! waiting for (a queue run, a DSN deadline, a host's outage ending), no
//! further than the target. Then the lab settles again, and so on. The
//! `advance` and `wait` steps and a scenario's `run_until` go through here,
//! and so does an actor that keeps its own schedule on the lab clock (an
//! `mta` step's retries: [`drive`]). On the wall clock they simply sleep.

use crate::lab::Lab;
use crate::scenario::ClockKind;
use chrono::{DateTime, Utc};
use lab_core::{Activity, SharedClock, VirtualClock};
use std::future::Future;
use std::time::{Duration, Instant};

/// Wait until nothing the lab can see is running, nor about to run.
async fn quiet(lab: &Lab, clock: &VirtualClock, deadline: Instant) -> Result<(), String> {
    loop {
        let mut spins = 0u32;
        while clock.waking() > 0 {
            if Instant::now() >= deadline {
                return Err("a timer's work did not start before the budget ran out".into());
            }
            spins += 1;
            if spins < 64 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if !lab.settle(deadline.saturating_duration_since(Instant::now())).await {
            return Err("the relay (or a host that sends on) was still busy when the budget ran out".into());
        }
        if clock.waking() == 0 {
            return Ok(());
        }
    }
}

/// Let lab time run to `target`, settling before each jump. Returns how
/// many timers it jumped to.
pub async fn advance_to(lab: &Lab, target: DateTime<Utc>, deadline: Instant) -> Result<usize, String> {
    let Some(clock) = lab.time.clock().as_virtual() else {
        let left = (target - lab.time.now()).to_std().unwrap_or_default();
        let budget = deadline.saturating_duration_since(Instant::now());
        if left > budget {
            return Err(format!("waiting {left:?} on the wall clock would outlast the budget; use `clock: virtual`"));
        }
        tokio::time::sleep(left).await;
        return Ok(0);
    };
    let mut jumps = 0;
    loop {
        quiet(lab, clock, deadline).await?;
        if clock.advance_to_next(target).is_none() {
            break;
        }
        jumps += 1;
        // Let what woke (a queue runner, a host coming back up) get going.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }
    clock.advance_to(target);
    quiet(lab, clock, deadline).await?;
    Ok(jumps)
}

/// Let `d` of lab time pass from now.
pub async fn advance(lab: &Lab, d: Duration, deadline: Instant) -> Result<usize, String> {
    let target = lab.time.now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    advance_to(lab, target, deadline).await
}

/// Run `work` to its end while lab time jumps over its idle stretches.
///
/// `work` is an actor that waits only on the lab clock and counts itself
/// busy on `activity` whenever it is not asleep there (taking the count
/// before it lets go of a timer's `Wake`: a retrying sender between
/// attempts). On the virtual clock, whenever the actor is asleep and the
/// lab is quiet (as for `advance`), the clock jumps to the next timer: the
/// actor's own wake-up, or anything due before it (a queue run, a host
/// coming back up), never past `limit`. On the wall clock `work` just runs.
///
/// The second value says why the jumping stopped early, if it did (`work`
/// then ran on at wall speed, within the caller's budget).
pub async fn drive<F: Future>(
    lab: &Lab,
    activity: &Activity,
    work: F,
    limit: DateTime<Utc>,
    deadline: Instant,
) -> (F::Output, Option<String>) {
    let Some(clock) = lab.time.clock().as_virtual() else {
        return (work.await, None);
    };
    let driver = async {
        loop {
            if !activity.wait_idle(deadline.saturating_duration_since(Instant::now())).await {
                return "the actor was still busy when the budget ran out".to_string();
            }
            if let Err(e) = quiet(lab, clock, deadline).await {
                return e;
            }
            // It may have woken (by the flow of time) while the lab settled.
            if activity.in_flight() > 0 {
                continue;
            }
            if clock.advance_to_next(limit).is_some() {
                // Let what woke (the actor, a queue runner) get going.
                for _ in 0..4 {
                    tokio::task::yield_now().await;
                }
            } else {
                // Asleep on nothing we may jump to: let time flow.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    tokio::pin!(work);
    // One task polls both, the actor first: between two looks of the driver
    // the actor either is asleep on a registered timer or counts as busy.
    let why = tokio::select! {
        biased;
        out = &mut work => return (out, None),
        why = driver => why,
    };
    (work.await, Some(why))
}

/// The clock a lab of this kind runs on: a flowing virtual clock starting
/// now (whole seconds), or the wall clock.
pub fn clock_for(kind: ClockKind) -> SharedClock {
    match kind {
        ClockKind::Wall => lab_core::clock::wall(),
        ClockKind::Virtual => {
            let now = Utc::now();
            let start = now - chrono::Duration::nanoseconds(now.timestamp_subsec_nanos() as i64);
            VirtualClock::flowing(start)
        }
    }
}
