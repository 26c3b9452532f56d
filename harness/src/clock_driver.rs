//! Moving a lab's clock: how days of mail time pass in milliseconds.
//!
//! A lab on the virtual clock (`clock: virtual`, the default) lets time run
//! at wall speed and jumps over the idle stretches: when the relay has no
//! delivery running and no host has mail to pass on ([`Lab::settle`]), and
//! no timer that just fired is still starting its work
//! ([`VirtualClock::waking`]), the clock jumps to the next timer anyone is
//! waiting for (a queue run, a DSN deadline, a host's outage ending), no
//! further than the target. Then the lab settles again, and so on. The
//! `advance` and `wait` steps and a scenario's `run_until` go through here.
//! On the wall clock they simply sleep.

use crate::lab::Lab;
use crate::scenario::ClockKind;
use chrono::{DateTime, Utc};
use lab_core::{SharedClock, VirtualClock};
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
