//! Delivery: talks to MX hosts (and, through `routing`, to DNS).
//!
//! One attempt takes a queued message, groups its recipients by domain,
//! routes each group by MX and hands it to [`smtp_client`], then logs one
//! `to=` line per outcome (spec §6.3) and updates the queue: delivered and
//! bounced recipients leave it, deferred ones stay with their last error.
//! Retries come with the durable queue in a later issue.

pub mod smtp_client;

use crate::dates::log_delay;
use crate::log::{priority, RelayLog, ToLine};
use crate::network::LabNetwork;
use crate::policy::RelayPolicy;
use crate::queue::{MailQueue, QueueEntry, Recipient};
use crate::routing::{mx_hosts, Resolver, RouteError};
use lab_core::TranscriptRecorder;
use smtp_client::{Outcome, Status};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a delivery attempt needs.
#[derive(Debug, Clone)]
pub struct DeliveryContext {
    /// `$j`: our EHLO name and transcript label.
    pub hostname: String,
    /// Per-reply wait for the next hop.
    pub smtp_timeout: Duration,
    /// The lab network (address map, SMTP port, clock, source address).
    pub net: LabNetwork,
    /// DNS.
    pub resolver: Arc<dyn Resolver>,
    /// Which names are this host (MX lists are cut there).
    pub policy: Arc<RelayPolicy>,
    /// The relay log.
    pub log: RelayLog,
    /// The queue.
    pub queue: MailQueue,
    /// Every outbound session's transcript, in order.
    pub transcripts: Arc<Mutex<Vec<TranscriptRecorder>>>,
}

/// Group recipients by domain (lower case), in order of first appearance.
pub fn group_by_domain(rcpts: &[Recipient]) -> Vec<(String, Vec<Recipient>)> {
    let mut groups: Vec<(String, Vec<Recipient>)> = Vec::new();
    for r in rcpts {
        let d = crate::policy::relay_check::domain_of(&r.addr).unwrap_or_default();
        match groups.iter_mut().find(|(g, _)| *g == d) {
            Some((_, v)) => v.push(r.clone()),
            None => groups.push((d, vec![r.clone()])),
        }
    }
    groups
}

/// Make one delivery attempt for queue entry `qid`.
pub async fn attempt(ctx: &DeliveryContext, qid: &str) {
    let Some(entry) = ctx.queue.get(qid) else { return };
    let mut done = Vec::new();
    let mut last_error = None;
    for (domain, rcpts) in group_by_domain(&entry.rcpts) {
        let started = ctx.net.clock.now();
        let outcomes = deliver_domain(ctx, &entry, &domain, &rcpts).await;
        for Outcome { rcpts, status } in outcomes {
            let now = ctx.net.clock.now();
            let line = ToLine {
                to: rcpts.iter().map(|r| r.typed.as_str()).collect::<Vec<_>>().join(","),
                delay: log_delay(now - entry.arrived),
                xdelay: log_delay(now - started),
                mailer: "esmtp".into(),
                pri: priority(entry.size, entry.class, entry.nrcpts as u64, entry.attempts as u64),
                relay: status.relay.clone(),
                dsn: status.dsn.clone(),
                stat: status.stat.clone(),
            };
            ctx.log.log(entry.pid, Some(&entry.qid), &line.render());
            if status.is_final() {
                done.extend(rcpts.iter().map(|r| r.typed.clone()));
            } else {
                last_error = Some(status.stat.clone());
            }
        }
    }
    ctx.queue.finish_attempt(&entry.qid, &done, last_error);
}

async fn deliver_domain(ctx: &DeliveryContext, entry: &QueueEntry, domain: &str, rcpts: &[Recipient]) -> Vec<Outcome> {
    let policy = ctx.policy.clone();
    let is_me = move |name: &str| policy.is_local(name);
    let all = |status: Status| vec![Outcome { rcpts: rcpts.to_vec(), status }];
    match mx_hosts(ctx.resolver.as_ref(), domain, &is_me).await {
        Ok(hosts) => smtp_client::deliver_to_hosts(ctx, entry, &hosts, rcpts).await,
        Err(e @ RouteError::HostUnknown { .. }) => {
            all(Status::failed("5.1.2", e.to_string(), Some(domain.to_string())))
        }
        Err(e @ RouteError::TempFail { .. }) => {
            all(Status::deferred(format!("Deferred: {e}"), Some(domain.to_string())))
        }
        Err(e @ RouteError::PointsBack { .. }) => {
            ctx.log.log(entry.pid, Some(&entry.qid), &format!("SYSERR(root): {e}"));
            all(Status::failed("5.3.5", "Local configuration error".into(), Some(domain.to_string())))
        }
    }
}
