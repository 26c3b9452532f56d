//! The queue runner: the daemon's `-q1h` (spec §7.3–§7.5).
//!
//! Talks to the queue and, through delivery, to MX hosts. One task sleeps on
//! the lab clock until the next queue run or the next DSN deadline,
//! whichever comes first:
//!
//! - a **queue run** every `queue_interval` takes the messages not tried
//!   within `min_queue_age`, in priority order (Sendmail's default
//!   `QueueSortOrder`), at most `max_queue_run_size` of them, and tries them
//!   one after the other as Sendmail's runner does; within one run a host
//!   found unreachable is not tried again (the host status cache), so a deep
//!   queue for a dead host costs one connection attempt per run;
//! - a **deadline** (a message reaching `queuewarn` or `queuereturn`) sends
//!   the warning or returns the message, at most a second late (deadlines a
//!   second apart share one wake-up); a new message whose deadline comes
//!   before the planned wake-up wakes the runner to plan again;
//! - a **manual run** ([`QueueRunner::run_now`], the course's `sendmail -q`
//!   and `-qR@domain`) tries every message, or those with a recipient in the
//!   domain, at once, whatever their age.
//!
//! The runner holds the lab busy from its wake-up until its work is done and
//! its next sleep is registered, so a lab advancing virtual time never jumps
//! over a queue run (see `lab_core::clock::Wake`). A relay that starts with
//! messages in its queue directory runs the queue at once, as
//! `sendmail -bd -q1h` does.

use crate::activity::{Activity, BusyGuard};
use crate::deliver::{self, DeliveryContext, RunCache};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How late a DSN deadline may be handled, so deadlines close together
/// share one wake-up.
pub const DEADLINE_SLACK: Duration = Duration::from_secs(1);

/// What a manual run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// The messages it tried, in order.
    pub tried: Vec<String>,
    /// Messages left in the queue afterwards.
    pub remaining: usize,
}

enum Control {
    Run { domain: Option<String>, guard: BusyGuard, done: oneshot::Sender<RunSummary> },
}

/// A handle on the queue runner.
#[derive(Debug, Clone)]
pub struct QueueRunner {
    tx: mpsc::UnboundedSender<Control>,
    activity: Activity,
}

impl QueueRunner {
    /// Start the runner as a task of the relay. With `run_at_start` the
    /// first run is now (messages were recovered from the queue directory).
    pub fn start(ctx: DeliveryContext, run_at_start: bool) -> QueueRunner {
        let (tx, rx) = mpsc::unbounded_channel();
        let (kick_tx, kick_rx) = mpsc::unbounded_channel();
        let activity = ctx.activity.clone();
        ctx.queue.set_kicker(kick_tx, activity.clone(), ctx.queue_settings);
        let tasks = ctx.tasks.clone();
        tasks.push(tokio::spawn(runner(ctx, rx, kick_rx, run_at_start)));
        QueueRunner { tx, activity }
    }

    /// Run the queue now, every message or those with a recipient in
    /// `domain` (`-qR@domain`), ignoring `min_queue_age`; returns when the
    /// run is over.
    pub async fn run_now(&self, domain: Option<String>) -> Result<RunSummary, String> {
        let (done, rx) = oneshot::channel();
        let guard = self.activity.busy();
        self.tx.send(Control::Run { domain, guard, done }).map_err(|_| "the relay is stopping".to_string())?;
        rx.await.map_err(|_| "the relay stopped during the queue run".to_string())
    }
}

/// Try `qids` one after the other, sharing one host status cache.
async fn run(ctx: &DeliveryContext, qids: &[String], trigger: &'static str) {
    ctx.queue.count_run();
    let mut rctx = ctx.clone();
    rctx.run_cache = Some(Arc::new(RunCache::default()));
    for qid in qids {
        if *ctx.shutdown.borrow() {
            break;
        }
        deliver::attempt(&rctx, qid, trigger).await;
    }
    ctx.queue.maybe_compact().await;
}

/// Send the warnings and returns that are due.
async fn deadlines(ctx: &DeliveryContext) {
    for qid in ctx.queue.deadline_due(&ctx.queue_settings) {
        if let Some(e) = ctx.queue.get(&qid) {
            deliver::dsn::check_deadlines(ctx, &e).await;
        }
    }
}

async fn runner(
    ctx: DeliveryContext,
    mut rx: mpsc::UnboundedReceiver<Control>,
    mut kicks: mpsc::UnboundedReceiver<BusyGuard>,
    run_at_start: bool,
) {
    let clock = ctx.net.clock.clone();
    let settings = ctx.queue_settings;
    let interval = chrono::Duration::from_std(settings.interval).unwrap_or(chrono::Duration::hours(1));
    let slack = chrono::Duration::from_std(DEADLINE_SLACK).unwrap_or_default();
    let mut shutdown = ctx.shutdown.clone();
    let mut next_run = if run_at_start { clock.now() } else { clock.now() + interval };
    // Held from a wake-up until the next sleep is registered.
    let mut held: Option<BusyGuard> = None;
    loop {
        let deadline = ctx.queue.earliest_deadline(&settings).map(|d| d.max(clock.now()) + slack);
        let wake_at = deadline.map_or(next_run, |d| d.min(next_run));
        ctx.queue.set_next_wake(wake_at);
        let sleep = clock.sleep_until_woken(wake_at);
        drop(held.take());
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            // A new message's deadline comes before the planned wake-up: plan again.
            Some(guard) = kicks.recv() => held = Some(guard),
            ctl = rx.recv() => match ctl {
                None => break,
                Some(Control::Run { domain, guard, done }) => {
                    held = Some(guard);
                    let qids = ctx.queue.due_for_run(clock.now(), settings.min_age, 0, domain.as_deref(), true);
                    run(&ctx, &qids, "flush").await;
                    deadlines(&ctx).await;
                    let _ = done.send(RunSummary { tried: qids, remaining: ctx.queue.len() });
                }
            },
            wake = sleep => {
                held = Some(ctx.activity.busy());
                drop(wake);
                let now = clock.now();
                if now >= next_run {
                    // MinQueueAge counts to the run's own start time, so a
                    // message tried exactly one age ago is not taken early
                    // because this wake-up came a moment late.
                    let started = next_run;
                    while next_run <= now {
                        next_run += interval;
                    }
                    let qids = ctx.queue.due_for_run(started, settings.min_age, settings.max_run, None, false);
                    run(&ctx, &qids, "queue run").await;
                }
                deadlines(&ctx).await;
            }
        }
    }
}

async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
