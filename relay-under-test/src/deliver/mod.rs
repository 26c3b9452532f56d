//! Delivery: talks to MX hosts (and, through `routing`, to DNS).
//!
//! One attempt takes a queued message, resolves each recipient with the
//! [`Router`] (domaintable, virtusertable, aliases, mailertable, SMART_HOST,
//! MAIL_HUB, MX: spec §3.1), groups the results by next hop and envelope
//! sender, and hands each group to [`smtp_client`] or to the local
//! [`Mailboxes`]. One `to=` line is logged per outcome (spec §6.3), showing
//! the recipient before any rewriting and the mailer of its route. The queue
//! is updated: a recipient whose every copy was delivered or failed for good
//! leaves it, one with a deferred copy stays with the remote's reply for the
//! next queue run. Copies that failed for good are returned to the sender in
//! one DSN ([`dsn`]); after each attempt the message's DSN deadlines
//! (`queuewarn`, `queuereturn`) are checked.

pub mod dsn;
pub mod local;
pub mod smtp_client;

pub use local::Mailboxes;

use crate::activity::Activity;
use crate::dates::log_delay;
use crate::log::{priority, RelayLog, ToLine};
use crate::network::LabNetwork;
use crate::policy::RelayPolicy;
use crate::queue::bounce::DsnRcpt;
use crate::queue::{AttemptOutcome, MailQueue, QueueEntry, QueueSettings, RcptNote, Recipient};
use crate::queue_id::QueueIdGen;
use crate::routing::{mx_hosts, DnsError, HostSpec, MxHost, Resolver, Route, RouteError, Router};
use crate::smtp::server::TaskList;
use lab_core::TranscriptRecorder;
use smtp_client::{Kind, Outcome, Status, Transfer};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

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
    /// Queue run settings and DSN deadlines.
    pub queue_settings: QueueSettings,
    /// `$v/$Z`, for the DSNs' `Received:`.
    pub version: String,
    /// The relay's zone, for the DSNs' dates.
    pub zone: crate::dates::Zone,
    /// Queue ids for DSNs (the queue runner's pseudo-process).
    pub ids: Arc<Mutex<QueueIdGen>>,
    /// Work in flight, for `settle`.
    pub activity: Activity,
    /// Delivery tasks (aborted when the relay stops).
    pub tasks: TaskList,
    /// Becomes true when the relay stops.
    pub shutdown: watch::Receiver<bool>,
    /// What this queue run already learned about hosts and routes, if the
    /// attempt is part of one (Sendmail's host status cache).
    pub run_cache: Option<Arc<RunCache>>,
}

/// What one queue run remembers, so ten thousand messages for a dead host
/// cost one connection attempt, not ten thousand (Sendmail keeps host status
/// per queue run the same way): the hosts of each route, the addresses of
/// each host, and the hosts that could not be reached.
#[derive(Debug, Default)]
pub struct RunCache {
    routes: Mutex<HashMap<Route, Result<Vec<MxHost>, RouteError>>>,
    addrs: Mutex<HashMap<String, Result<Vec<IpAddr>, DnsError>>>,
    down: Mutex<HashMap<(String, IpAddr), Status>>,
}

impl RunCache {
    /// A host address found unreachable in this run, with the status it gave.
    pub fn down(&self, host: &str, ip: IpAddr) -> Option<Status> {
        self.down.lock().unwrap().get(&(host.to_ascii_lowercase(), ip)).cloned()
    }

    /// Remember that `host` at `ip` could not be reached.
    pub fn set_down(&self, host: &str, ip: IpAddr, s: &Status) {
        self.down.lock().unwrap().insert((host.to_ascii_lowercase(), ip), s.clone());
    }

    /// The addresses of `host`, looked up once per run.
    pub async fn addrs(&self, resolver: &dyn Resolver, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let key = host.to_ascii_lowercase();
        if let Some(r) = self.addrs.lock().unwrap().get(&key) {
            return r.clone();
        }
        let r = resolver.a(host).await;
        self.addrs.lock().unwrap().insert(key, r.clone());
        r
    }
}

impl DeliveryContext {
    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Start a delivery attempt for `qid` in its own task; it counts as work
    /// in flight from now until it ends. `trigger` names it in the history.
    pub fn spawn_attempt(&self, qid: String, trigger: &'static str) {
        if self.stopping() {
            return; // stays queued
        }
        let guard = self.activity.busy();
        let ctx = self.clone();
        self.tasks.push(tokio::spawn(async move {
            let _guard = guard;
            attempt(&ctx, &qid, trigger).await;
        }));
    }
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

/// Make one delivery attempt for queue entry `qid` (skipped when another
/// attempt has it), put back what is left, return failed copies to the
/// sender and check the message's DSN deadlines.
pub async fn attempt(ctx: &DeliveryContext, qid: &str, trigger: &'static str) {
    let Some(entry) = ctx.queue.begin_attempt(qid) else { return };
    let (groups, refused) = plan(&ctx.router, &entry);
    // Per queued recipient: copies still open after this attempt.
    let mut open: Vec<(String, usize)> = entry.rcpts.iter().map(|r| (r.typed.clone(), 0)).collect();
    let mut notes: Vec<RcptNote> = Vec::new();
    let mut failed: Vec<DsnRcpt> = Vec::new();
    let mut counts = (0usize, 0usize, 0usize);
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
        log_line(r.typed.clone(), None, "local", ctx.net.clock.now(), &status);
        counts.2 += 1;
        failed.push(dsn_rcpt(&r, &status));
    }
    // SMTP mailers send the headers rewritten (domaintable, masquerading).
    let smtp_data = Arc::new(ctx.router.outbound_headers(&entry.data));
    for (g, hosts) in by_host_signature(ctx, groups).await {
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
                let hosts = match hosts {
                    Some(h) => h,
                    None => hosts_cached(ctx, route).await,
                };
                deliver_route(ctx, &entry, hosts, &transfer, &rcpts).await
            }
        };
        for Outcome { rcpts, status } in outcomes {
            let to = rcpts.iter().map(|r| r.typed.as_str()).collect::<Vec<_>>().join(",");
            log_line(to, ctladdr.clone(), mailer.name(), started, &status);
            match status.kind {
                Kind::Sent => counts.0 += rcpts.len(),
                Kind::Failed => {
                    counts.2 += rcpts.len();
                    for r in &rcpts {
                        // The address as routed, not as rewritten for the next hop.
                        let addr = g.members.iter().find(|(m, _)| m.typed == r.typed).map(|(m, _)| m.addr.clone());
                        failed.push(dsn_rcpt(
                            &Recipient { typed: r.typed.clone(), addr: addr.unwrap_or(r.addr.clone()) },
                            &status,
                        ));
                    }
                }
                Kind::Deferred => {
                    counts.1 += rcpts.len();
                    last_error = Some(status.stat.clone());
                    for r in &rcpts {
                        let origins = g.members.iter().filter(|(m, _)| m.typed == r.typed).flat_map(|(_, o)| o.iter());
                        for o in origins {
                            if let Some(slot) = open.iter_mut().find(|(t, _)| t == o) {
                                slot.1 += 1;
                            }
                            if !notes.iter().any(|n| &n.typed == o) {
                                notes.push(RcptNote {
                                    typed: o.clone(),
                                    dsn: status.dsn.clone(),
                                    remote: status.relay.as_ref().map(|r| relay_host(r)),
                                    stat: status.stat.clone(),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    let done: Vec<String> = open.into_iter().filter(|(_, n)| *n == 0).map(|(t, _)| t).collect();
    let fail_stat = failed.first().map(|f| f.stat.clone());
    let out = AttemptOutcome { done, notes, last_error, counts, fail_stat, trigger };
    let left = ctx.queue.finish_attempt(&entry.qid, out).await;
    if !failed.is_empty() {
        dsn::send(ctx, &entry, dsn::DsnKind::Failure, failed, false).await;
    }
    if let Some(e) = left {
        dsn::check_deadlines(ctx, &e).await;
    }
}

/// `int1.sysiphus.com.` out of `int1.sysiphus.com. [10.1.1.11]`.
fn relay_host(relay: &str) -> String {
    relay.split(" [").next().unwrap_or(relay).to_string()
}

fn dsn_rcpt(r: &Recipient, s: &Status) -> DsnRcpt {
    DsnRcpt {
        typed: r.typed.clone(),
        addr: r.addr.clone(),
        status: s.dsn.clone(),
        remote: s.relay.as_ref().map(|x| relay_host(x)),
        stat: s.stat.clone(),
    }
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

/// [`hosts_for`], once per route and queue run.
async fn hosts_cached(ctx: &DeliveryContext, route: &Route) -> Result<Vec<MxHost>, RouteError> {
    let Some(cache) = &ctx.run_cache else { return hosts_for(ctx, route).await };
    if let Some(r) = cache.routes.lock().unwrap().get(route) {
        return r.clone();
    }
    let r = hosts_for(ctx, route).await;
    cache.routes.lock().unwrap().insert(route.clone(), r.clone());
    r
}

/// Sendmail's host signature: SMTP groups whose next hops are the same
/// hosts (the same MX list in order, or the same `[host]`), with the same
/// mailer and sender, go in one transaction - `john@sysiphus.com` and
/// `bob@eng.sysiphus.com` with the same MX are one delivery, as real
/// Sendmail (and Exim) send them. Each SMTP group comes back with its hosts.
async fn by_host_signature(
    ctx: &DeliveryContext,
    groups: Vec<Group>,
) -> Vec<(Group, Option<Result<Vec<MxHost>, RouteError>>)> {
    let mut out: Vec<(Group, Option<Result<Vec<MxHost>, RouteError>>)> = Vec::new();
    for g in groups {
        if matches!(g.route, Route::Local { .. } | Route::File { .. } | Route::Program { .. }) {
            out.push((g, None));
            continue;
        }
        let hosts = hosts_cached(ctx, &g.route).await;
        let same = |(o, h): &&mut (Group, Option<Result<Vec<MxHost>, RouteError>>)| {
            o.route.mailer() == g.route.mailer()
                && o.sender == g.sender
                && matches!((h, &hosts), (Some(Ok(a)), Ok(b)) if !a.is_empty() && signature(a) == signature(b))
        };
        match out.iter_mut().find(|x| same(x)) {
            Some((o, _)) => {
                for (m, origins) in g.members {
                    match o.members.iter_mut().find(|(x, _)| x.addr.eq_ignore_ascii_case(&m.addr)) {
                        Some((_, known)) => known.extend(origins),
                        None => o.members.push((m, origins)),
                    }
                }
            }
            None => out.push((g, Some(hosts))),
        }
    }
    out
}

/// The hosts in preference order, names without case or trailing dot.
fn signature(hosts: &[MxHost]) -> Vec<(u16, String)> {
    hosts.iter().map(|h| (h.preference, h.name.trim_end_matches('.').to_ascii_lowercase())).collect()
}

async fn deliver_route(
    ctx: &DeliveryContext,
    entry: &QueueEntry,
    hosts: Result<Vec<MxHost>, RouteError>,
    t: &Transfer<'_>,
    rcpts: &[Recipient],
) -> Vec<Outcome> {
    let all = |status: Status| vec![Outcome { rcpts: rcpts.to_vec(), status }];
    match hosts {
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
