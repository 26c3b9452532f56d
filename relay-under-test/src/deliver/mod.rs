//! Delivery: talks to MX hosts (and, through `routing`, to DNS).
//!
//! One attempt takes a queued message, resolves each recipient with the
//! [`Router`] (domaintable, virtusertable, aliases, mailertable, SMART_HOST,
//! MAIL_HUB, MX: spec §3.1), groups the results by next hop and envelope
//! sender, and hands each group to [`smtp_client`] or to the local
//! [`Mailboxes`]. One `to=` line is logged per outcome (spec §6.3), showing
//! the recipient before any rewriting and the mailer of its route. The queue
//! is updated: a recipient whose every copy was delivered or bounced leaves
//! it, one with a deferred copy stays with its last error. Retries come with
//! the durable queue in a later issue.

pub mod local;
pub mod smtp_client;

pub use local::Mailboxes;

use crate::dates::log_delay;
use crate::log::{priority, RelayLog, ToLine};
use crate::network::LabNetwork;
use crate::policy::RelayPolicy;
use crate::queue::{MailQueue, QueueEntry, Recipient};
use crate::routing::{mx_hosts, HostSpec, MxHost, Resolver, Route, RouteError, Router};
use lab_core::TranscriptRecorder;
use smtp_client::{Outcome, Status, Transfer};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `(uid/gid)` shown with `ctladdr=` for file and program deliveries: the
/// unprivileged default user of the course's hosts (spec §6.3, §10.1).
pub const DEFAULT_IDS: &str = "(47/0)";

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
    /// The routing decision and address rewriting.
    pub router: Arc<Router>,
    /// Local mailboxes.
    pub mailboxes: Mailboxes,
    /// The relay log.
    pub log: RelayLog,
    /// The queue.
    pub queue: MailQueue,
    /// Every outbound session's transcript, in order.
    pub transcripts: Arc<Mutex<Vec<TranscriptRecorder>>>,
}

/// Recipients that travel together: same route, same envelope sender.
#[derive(Debug, Clone)]
pub struct Group {
    /// Where they go.
    pub route: Route,
    /// The envelope sender as queued (`""` for `<>`), or the list owner.
    pub sender: String,
    /// Each copy: `typed` is what `to=` shows, `addr` the recipient sent on;
    /// with the queued recipients (as typed) it stands for.
    pub members: Vec<(Recipient, Vec<String>)>,
}

/// Resolve the queued recipients and group them (spec §3.1). Recipients the
/// router refuses (the profile cannot change, so only if RCPT let them
/// through) come back apart with their refusal text.
pub fn plan(router: &Router, entry: &QueueEntry) -> (Vec<Group>, Vec<(Recipient, String)>) {
    let mut groups: Vec<Group> = Vec::new();
    let mut refused = Vec::new();
    for r in &entry.rcpts {
        let deliveries = match router.resolve(&r.addr) {
            Ok(d) => d,
            Err(e) => {
                refused.push((r.clone(), e.to_string()));
                continue;
            }
        };
        for d in deliveries {
            let shown = if d.shown == r.addr { r.typed.clone() } else { d.shown.clone() };
            let sender = d.owner.clone().unwrap_or_else(|| entry.sender.clone());
            let member = Recipient { typed: shown, addr: d.addr.clone() };
            let g = match groups.iter_mut().position(|g| g.route == d.route && g.sender == sender) {
                Some(i) => &mut groups[i],
                None => {
                    groups.push(Group { route: d.route.clone(), sender, members: Vec::new() });
                    groups.last_mut().expect("just pushed")
                }
            };
            match g.members.iter_mut().find(|(m, _)| m.addr.eq_ignore_ascii_case(&member.addr)) {
                Some((_, origins)) => origins.push(r.typed.clone()),
                None => g.members.push((member, vec![r.typed.clone()])),
            }
        }
    }
    (groups, refused)
}

/// Make one delivery attempt for queue entry `qid`.
pub async fn attempt(ctx: &DeliveryContext, qid: &str) {
    let Some(entry) = ctx.queue.get(qid) else { return };
    let (groups, refused) = plan(&ctx.router, &entry);
    // Per queued recipient: copies still open after this attempt.
    let mut open: Vec<(String, usize)> = entry.rcpts.iter().map(|r| (r.typed.clone(), 0)).collect();
    let mut last_error = None;
    let pri = priority(entry.size, entry.class, entry.nrcpts as u64, entry.attempts as u64);
    let log_line = |to: String, ctladdr: Option<String>, mailer: &str, started, status: &Status| {
        let now = ctx.net.clock.now();
        let line = ToLine {
            to,
            ctladdr,
            delay: log_delay(now - entry.arrived),
            xdelay: log_delay(now - started),
            mailer: mailer.to_string(),
            pri,
            relay: status.relay.clone(),
            dsn: status.dsn.clone(),
            stat: status.stat.clone(),
        };
        ctx.log.log(entry.pid, Some(&entry.qid), &line.render());
    };
    for (r, why) in refused {
        let status = Status::failed("5.1.1", why, None);
        log_line(r.typed, None, "local", ctx.net.clock.now(), &status);
    }
    // SMTP mailers send the headers rewritten (domaintable, masquerading).
    let smtp_data = Arc::new(ctx.router.outbound_headers(&entry.data));
    for g in groups {
        let started = ctx.net.clock.now();
        let mailer = g.route.mailer();
        let ctladdr = match &g.route {
            Route::File { alias, .. } | Route::Program { alias, .. } => Some(format!("{alias} {DEFAULT_IDS}")),
            _ => None,
        };
        let outcomes = match &g.route {
            Route::Local { user } => deliver_locally(ctx, &entry, &g, user),
            Route::File { path: name, .. } | Route::Program { command: name, .. } => {
                deliver_locally(ctx, &entry, &g, name)
            }
            route => {
                let sender = ctx.router.outbound_sender(&g.sender);
                let rcpts: Vec<Recipient> = g
                    .members
                    .iter()
                    .map(|(m, _)| Recipient { typed: m.typed.clone(), addr: ctx.router.outbound_recipient(&m.addr) })
                    .collect();
                let transfer = Transfer { sender: &sender, data: &smtp_data, size: entry.size };
                deliver_route(ctx, &entry, route, &transfer, &rcpts).await
            }
        };
        for Outcome { rcpts, status } in outcomes {
            let to = rcpts.iter().map(|r| r.typed.as_str()).collect::<Vec<_>>().join(",");
            log_line(to, ctladdr.clone(), mailer.name(), started, &status);
            if !status.is_final() {
                last_error = Some(status.stat.clone());
                for r in &rcpts {
                    let origins = g.members.iter().filter(|(m, _)| m.typed == r.typed).flat_map(|(_, o)| o.iter());
                    for o in origins {
                        if let Some(slot) = open.iter_mut().find(|(t, _)| t == o) {
                            slot.1 += 1;
                        }
                    }
                }
            }
        }
    }
    let done: Vec<String> = open.into_iter().filter(|(_, n)| *n == 0).map(|(t, _)| t).collect();
    ctx.queue.finish_attempt(&entry.qid, &done, last_error);
}

/// The local mailer: every member's copy into `mailbox`.
fn deliver_locally(ctx: &DeliveryContext, entry: &QueueEntry, g: &Group, mailbox: &str) -> Vec<Outcome> {
    let sender = ctx.router.outbound_sender(&g.sender);
    ctx.mailboxes.append(mailbox, &sender, &entry.data);
    let rcpts = g.members.iter().map(|(m, _)| m.clone()).collect();
    vec![Outcome { rcpts, status: Status::sent_locally() }]
}

/// The hosts to try for an SMTP route (spec §3.2, §3.3): MX of the domain,
/// MX of a named host, or the bracketed host or literal as is.
pub async fn hosts_for(ctx: &DeliveryContext, route: &Route) -> Result<Vec<MxHost>, RouteError> {
    let policy = ctx.policy.clone();
    let is_me = move |name: &str| policy.is_local(name);
    match route {
        Route::Mx { domain } | Route::Host { host: HostSpec::Mx(domain), .. } => {
            mx_hosts(ctx.resolver.as_ref(), domain, &is_me).await
        }
        Route::Host { host: HostSpec::Bracketed(h), .. } if is_me(h) => {
            Err(RouteError::PointsBack { domain: h.clone(), hostname: h.clone() })
        }
        Route::Host { host: HostSpec::Bracketed(h), .. } => Ok(vec![MxHost { name: h.clone(), preference: 0 }]),
        Route::Host { host: HostSpec::Literal(ip), .. } => Ok(vec![MxHost { name: format!("[{ip}]"), preference: 0 }]),
        Route::Local { .. } | Route::File { .. } | Route::Program { .. } => Ok(Vec::new()),
    }
}

async fn deliver_route(
    ctx: &DeliveryContext,
    entry: &QueueEntry,
    route: &Route,
    t: &Transfer<'_>,
    rcpts: &[Recipient],
) -> Vec<Outcome> {
    let all = |status: Status| vec![Outcome { rcpts: rcpts.to_vec(), status }];
    match hosts_for(ctx, route).await {
        Ok(hosts) => smtp_client::deliver_to_hosts(ctx, t, &hosts, rcpts).await,
        Err(e @ RouteError::HostUnknown { .. }) => {
            let name = route_name(&e);
            all(Status::failed("5.1.2", e.to_string(), Some(name)))
        }
        Err(e @ RouteError::TempFail { .. }) => {
            let name = route_name(&e);
            all(Status::deferred(format!("Deferred: {e}"), Some(name)))
        }
        Err(e @ RouteError::PointsBack { .. }) => {
            let name = route_name(&e);
            ctx.log.log(entry.pid, Some(&entry.qid), &format!("SYSERR(root): {e}"));
            all(Status::failed("5.3.5", "Local configuration error".into(), Some(name)))
        }
    }
}

fn route_name(e: &RouteError) -> String {
    match e {
        RouteError::HostUnknown { domain, .. }
        | RouteError::TempFail { domain, .. }
        | RouteError::PointsBack { domain, .. } => domain.clone(),
    }
}
