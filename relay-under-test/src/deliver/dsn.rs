//! Sending DSNs: talks to the queue (the notice is queued like any message
//! and delivered by the same agent).
//!
//! - Copies that failed for good in an attempt are returned at once, in one
//!   notice per attempt (`<qid>: <dsn qid>: DSN: User unknown`).
//! - After `queuewarn` a message still queued earns its sender one delay
//!   warning (`DSN: Warning: could not send message for past 4 hours`),
//!   unless the sender is `<>`, `owner-*`, `*-request` or the precedence
//!   class is negative (spec §7.6).
//! - After `queuereturn` it is returned and removed
//!   (`DSN: Cannot send message for 5 days`).
//!
//! Never a DSN for a message whose sender is `<>` (spec §10.4): the log
//! says so and the notice is dropped, so two relays cannot bounce bounces
//! at each other.

use super::DeliveryContext;
use crate::intake::logged_size;
use crate::queue::bounce::{self, DsnInput, DsnRcpt};
use crate::queue::history::DsnRecord;
use crate::queue::{EntryKind, QueueEntry, Recipient};
use std::sync::Arc;

pub use crate::queue::bounce::DsnKind;

/// Queue a notice about `original` for its sender and start its delivery.
pub async fn send(ctx: &DeliveryContext, original: &QueueEntry, kind: DsnKind, rcpts: Vec<DsnRcpt>, timed_out: bool) {
    let now = ctx.net.clock.now();
    let (qid, pid) = {
        let mut ids = ctx.ids.lock().unwrap();
        (ids.next_id(now), ids.pid())
    };
    let settings = &ctx.queue_settings;
    let built = bounce::build(&DsnInput {
        kind,
        original,
        rcpts: &rcpts,
        hostname: &ctx.hostname,
        version: &ctx.version,
        zone: &ctx.zone,
        now,
        qid: &qid,
        queuewarn: settings.warn,
        queuereturn: settings.ret,
        timed_out,
    });
    if original.null_sender() {
        ctx.log.log(original.pid, Some(&original.qid), &format!("{}; no DSN: the sender is <>", built.reason));
        return;
    }
    ctx.log.log(original.pid, Some(&original.qid), &format!("{qid}: DSN: {}", built.reason));
    let entry = QueueEntry {
        qid: qid.clone(),
        pid,
        sender_typed: "<>".into(),
        sender: String::new(),
        rcpts: vec![Recipient { typed: format!("<{}>", original.sender), addr: original.sender.clone() }],
        nrcpts: 1,
        size: logged_size(&built.data),
        data: Arc::new(built.data),
        class: 0,
        arrived: now,
        msgid: built.msgid,
        client: "localhost".into(),
        kind: EntryKind::Dsn,
        ..QueueEntry::default()
    };
    match ctx.queue.commit(entry).await {
        Ok(()) => {
            ctx.queue.record_dsn(DsnRecord {
                qid: qid.clone(),
                original: original.qid.clone(),
                kind: kind.word().into(),
                to: original.sender.clone(),
                at: now,
                reason: built.reason,
                recipients: rcpts.iter().map(|r| r.typed.clone()).collect(),
            });
            ctx.spawn_attempt(qid, "arrival");
        }
        Err(e) => {
            ctx.log.log(pid, Some(&qid), &format!("SYSERR(root): cannot queue the DSN for {}: {e}", original.qid));
        }
    }
}

/// The recipients still queued in `e`, as a notice reports them.
fn pending(e: &QueueEntry, status: Option<&str>) -> Vec<DsnRcpt> {
    e.rcpts
        .iter()
        .map(|r| {
            let note = e.note(&r.typed);
            DsnRcpt {
                typed: r.typed.clone(),
                addr: r.addr.clone(),
                status: status.map(str::to_string).or(note.map(|n| n.dsn.clone())).unwrap_or_else(|| "4.0.0".into()),
                remote: note.and_then(|n| n.remote.clone()),
                stat: note.map(|n| n.stat.clone()).or(e.last_error.clone()).unwrap_or_else(|| "Deferred".into()),
            }
        })
        .collect()
}

/// After an attempt, or when a deadline comes: return `e` to its sender when
/// `queuereturn` has passed, else warn once when `queuewarn` has.
pub async fn check_deadlines(ctx: &DeliveryContext, e: &QueueEntry) {
    let now = ctx.net.clock.now();
    let q = &ctx.queue_settings;
    let age = (now - e.arrived).to_std().unwrap_or_default();
    if age >= q.ret {
        if let Some(gone) = ctx.queue.expire(&e.qid).await {
            let rcpts = pending(&gone, Some("4.4.7"));
            send(ctx, &gone, DsnKind::Failure, rcpts, true).await;
        }
    } else if !q.warn.is_zero() && age >= q.warn && !e.warned {
        if let Some(claimed) = ctx.queue.claim_warning(&e.qid) {
            if claimed.may_warn() {
                let rcpts = pending(&claimed, None);
                send(ctx, &claimed, DsnKind::Warning, rcpts, false).await;
            }
        }
    }
}
