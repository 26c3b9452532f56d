//! The SMTP listener: talks to SMTP clients over TCP.
//!
//! One accept loop; one task per connection that looks up the client's PTR
//! name (through the lab DNS, before the greeting, as Sendmail does), then
//! feeds lines to a [`Session`] and writes its replies. An accepted message
//! is committed to the queue directory (synced) before the 250, then gets an
//! immediate delivery attempt in its own task. Every wait is bounded, and
//! every task ends when the relay stops.

use crate::activity::Activity;
use crate::deliver::DeliveryContext;
use crate::policy::anti_spam::{dnsbl_query, dnsbl_verdict, DnsblAnswer};
use crate::policy::SenderDomain;
use crate::queue::MailQueue;
use crate::routing::{DnsError, Resolver};
use crate::smtp::session::{ClientInfo, Outcome, Session, SessionConfig};
use lab_core::codec::{self, CodecError};
use lab_core::{AddressMap, Reply};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long to wait for the client's next command or for the rest of DATA.
/// (Sendmail waits an hour; a lab client that is silent this long is gone.)
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// How long the PTR lookup at connect may take.
pub const PTR_TIMEOUT: Duration = Duration::from_secs(5);

/// Tasks to wait for (or abort) when the relay stops.
#[derive(Debug, Clone, Default)]
pub struct TaskList {
    handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TaskList {
    /// Keep `h`, dropping handles of tasks that have finished.
    pub fn push(&self, h: JoinHandle<()>) {
        let mut v = self.handles.lock().unwrap();
        v.retain(|h| !h.is_finished());
        v.push(h);
    }

    /// Take every handle kept so far.
    pub fn take(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.handles.lock().unwrap())
    }

    /// Abort everything still running.
    pub fn abort_all(&self) {
        for h in self.take() {
            h.abort();
        }
    }
}

/// What the listener and its sessions share.
#[derive(Debug)]
pub struct Shared {
    /// Session configuration.
    pub cfg: Arc<SessionConfig>,
    /// Real ↔ lab addresses (clients are named by lab address).
    pub addresses: AddressMap,
    /// DNS, for the client's PTR name.
    pub resolver: Arc<dyn Resolver>,
    /// The queue.
    pub queue: MailQueue,
    /// Work in flight, for `settle`.
    pub activity: Activity,
    /// What delivery attempts need.
    pub delivery: DeliveryContext,
    /// The next pseudo-pid.
    pub next_pid: AtomicU32,
    /// Becomes true when the relay stops.
    pub shutdown: watch::Receiver<bool>,
    /// Session and delivery tasks.
    pub tasks: TaskList,
    /// Open client connections (settling waits briefly for them to end, so
    /// a session's last log line is written before the lab looks).
    pub connections: Activity,
}

impl Shared {
    /// Start the immediate delivery attempt for `qid`; it counts as work in
    /// flight from now until it ends.
    pub fn spawn_delivery(self: &Arc<Self>, qid: String) {
        self.delivery.spawn_attempt(qid, "arrival");
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Accept connections until the relay stops.
///
/// `max_daemon_children` (spec §8.3): while that many sessions are open the
/// daemon stops accepting (clients wait in the listen queue, as Sendmail's
/// daemon does) and logs `rejecting connections on daemon MTA: <n>
/// children, max <m>` once each time it starts refusing.
/// `connection_rate_throttle`: at most that many connections are taken per
/// second; the next one waits for the next second (delayed, not refused).
pub async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let profile = &shared.cfg.profile;
    let (max_children, throttle) = (profile.max_daemon_children as usize, profile.connection_rate_throttle);
    let daemon_pid = std::process::id() % 1_000_000;
    let mut refusing = false;
    let mut window = tokio::time::Instant::now();
    let mut in_window = 0u32;
    loop {
        if max_children > 0 {
            let children = shared.connections.in_flight();
            if children >= max_children {
                if !refusing {
                    refusing = true;
                    shared.cfg.log.log(
                        daemon_pid,
                        None,
                        &format!(
                            "rejecting connections on daemon {}: {children} children, max {max_children}",
                            profile.daemon_name
                        ),
                    );
                }
                tokio::select! {
                    _ = stopped(shared.shutdown.clone()) => break,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
                }
            }
            refusing = false;
        }
        tokio::select! {
            _ = stopped(shared.shutdown.clone()) => break,
            res = listener.accept() => match res {
                Ok((stream, peer)) => {
                    if throttle > 0 {
                        let now = tokio::time::Instant::now();
                        if now.duration_since(window) >= Duration::from_secs(1) {
                            window = now;
                            in_window = 0;
                        }
                        in_window += 1;
                        if in_window > throttle {
                            window += Duration::from_secs(1);
                            in_window = 1;
                            tokio::select! {
                                _ = stopped(shared.shutdown.clone()) => break,
                                _ = tokio::time::sleep_until(window) => {}
                            }
                        }
                    }
                    let open = shared.connections.busy();
                    let s = shared.clone();
                    shared.tasks.push(tokio::spawn(async move { serve(stream, peer, s, open).await }));
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
}

async fn send(w: &mut OwnedWriteHalf, r: &Reply) -> std::io::Result<()> {
    w.write_all(r.to_wire().as_bytes()).await?;
    w.flush().await
}

enum Read<T> {
    Got(T),
    Stopping,
    TimedOut,
}

async fn read_or_stop<T>(shared: &Shared, fut: impl std::future::Future<Output = T>) -> Read<T> {
    tokio::select! {
        _ = stopped(shared.shutdown.clone()) => Read::Stopping,
        r = tokio::time::timeout(COMMAND_TIMEOUT, fut) => match r {
            Ok(v) => Read::Got(v),
            Err(_) => Read::TimedOut,
        },
    }
}

/// Read and drop up to the end of the current line; false if the client went away.
async fn skip_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> bool {
    loop {
        match tokio::time::timeout(COMMAND_TIMEOUT, codec::read_raw_line(r, codec::MAX_LINE)).await {
            Ok(Ok(_)) => return true,
            Ok(Err(CodecError::LineTooLong(_))) => continue,
            _ => return false,
        }
    }
}

/// Whether `domain` has an A or an MX record (Sendmail's `resolve` map):
/// NXDOMAIN or no records → does not exist; SERVFAIL or timeout → try later.
async fn sender_domain(resolver: &dyn Resolver, domain: &str) -> SenderDomain {
    let mut temp = false;
    match tokio::time::timeout(PTR_TIMEOUT, resolver.a(domain)).await {
        Ok(Ok(addrs)) if !addrs.is_empty() => return SenderDomain::Resolves,
        Ok(Err(DnsError::NotFound)) => return SenderDomain::DoesNotExist,
        Ok(Ok(_)) | Ok(Err(DnsError::NoData)) => {}
        _ => temp = true,
    }
    match tokio::time::timeout(PTR_TIMEOUT, resolver.mx(domain)).await {
        Ok(Ok(mx)) if !mx.is_empty() => SenderDomain::Resolves,
        Ok(Ok(_)) | Ok(Err(DnsError::NotFound | DnsError::NoData)) if !temp => SenderDomain::DoesNotExist,
        _ => SenderDomain::TempFail,
    }
}

/// Sendmail's forward check of the PTR name (`getauthinfo`, spec §5.2): the
/// name's A records must include the client's address. NXDOMAIN, no A
/// record or other addresses: `(may be forged)`. A temporary failure
/// (SERVFAIL, timeout) does not mark the client.
async fn ptr_may_be_forged(resolver: &dyn Resolver, name: &str, ip: std::net::IpAddr) -> bool {
    match tokio::time::timeout(PTR_TIMEOUT, resolver.a(name)).await {
        Ok(Ok(addrs)) => !addrs.contains(&ip),
        Ok(Err(DnsError::NotFound | DnsError::NoData)) => true,
        _ => false,
    }
}

/// The reply when a message could not be committed to the queue directory:
/// a temporary failure, so the client keeps it (spec §12 row 49).
fn queue_write_failed(shared: &Shared, pid: u32, qid: &str, e: &std::io::Error) -> Reply {
    shared.cfg.log.log(pid, Some(qid), &format!("SYSERR(root): queueup: cannot write the queue files: {e}"));
    if e.raw_os_error() == Some(28) {
        Reply::new(452, "4.4.5 Insufficient disk space; try again later")
    } else {
        Reply::new(451, "4.3.0 Temporary system failure. Please try again later.")
    }
}

/// One connection, start to end.
async fn serve(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, _open: crate::activity::BusyGuard) {
    let pid = shared.next_pid.fetch_add(1, Ordering::Relaxed) % 1_000_000;
    let ip = shared.addresses.to_virtual(peer.ip());
    let name = match tokio::time::timeout(PTR_TIMEOUT, shared.resolver.ptr(ip)).await {
        Ok(Ok(n)) => Some(n),
        _ => None,
    };
    let forged = match &name {
        // The resolver asks A only: IPv6 clients are not checked.
        Some(n) if ip.is_ipv4() => ptr_may_be_forged(shared.resolver.as_ref(), n, ip).await,
        _ => false,
    };
    let mut session = Session::new(shared.cfg.clone(), ClientInfo { ip, name, forged }, pid);
    // check_relay's DNSBL part (spec §9.3), after the access map.
    if session.dnsbl_wanted() {
        let zones = &shared.cfg.profile.dnsbl;
        let mut answers = Vec::with_capacity(zones.len());
        for z in zones {
            let answer = match dnsbl_query(ip, &z.zone) {
                Some(q) => match tokio::time::timeout(PTR_TIMEOUT, shared.resolver.a(&q)).await {
                    Ok(Ok(addrs)) if !addrs.is_empty() => DnsblAnswer::Listed,
                    Ok(Ok(_)) | Ok(Err(DnsError::NotFound | DnsError::NoData)) => DnsblAnswer::NotListed,
                    _ => DnsblAnswer::TempFail,
                },
                None => DnsblAnswer::NotListed,
            };
            answers.push(answer);
            if answer == DnsblAnswer::Listed || (answer == DnsblAnswer::TempFail && z.t) {
                break;
            }
        }
        session.dnsbl_result(dnsbl_verdict(zones, &answers, ip));
    }
    let host = shared.cfg.profile.hostname.clone();
    stream.set_nodelay(true).ok();
    // greet_pause (spec §9.2): a client that talks before the greeting is a slammer.
    let pause = session.greet_pause();
    if !pause.is_zero() {
        let mut probe = [0u8; 1];
        tokio::select! {
            _ = stopped(shared.shutdown.clone()) => return,
            res = tokio::time::timeout(pause, stream.peek(&mut probe)) => {
                if matches!(res, Ok(Ok(n)) if n > 0) {
                    session.pre_greeting_traffic();
                }
            }
        }
    }
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    if send(&mut w, &session.greeting()).await.is_err() {
        session.lost_input(false);
        return;
    }
    if session.closes_after_greeting() {
        let _ = w.shutdown().await;
        return;
    }
    loop {
        let line = match read_or_stop(&shared, codec::read_line(&mut reader, codec::MAX_LINE)).await {
            Read::Stopping => {
                let _ = send(&mut w, &session.shutting_down()).await;
                break;
            }
            Read::TimedOut => {
                let _ = send(&mut w, &Reply::new(421, format!("4.4.2 {host} Error: timeout exceeded"))).await;
                session.lost_input(false);
                break;
            }
            Read::Got(Err(CodecError::LineTooLong(_))) => {
                // Skip the rest of the overlong line, then complain once.
                if !skip_line(&mut reader).await {
                    session.lost_input(false);
                    break;
                }
                if send(&mut w, &session.line_too_long()).await.is_err() {
                    session.lost_input(false);
                    break;
                }
                continue;
            }
            Read::Got(Err(_)) => {
                session.lost_input(false);
                break;
            }
            Read::Got(Ok(line)) => line,
        };
        // check_mail needs to know whether the sender's domain resolves (spec §3.10).
        if let Some(domain) = session.sender_domain_to_resolve(&line) {
            let status = sender_domain(shared.resolver.as_ref(), &domain).await;
            session.note_sender_domain(domain, status);
        }
        let reply = match session.handle_line(&line) {
            Outcome::Reply(r) => r,
            Outcome::Close(r) => {
                let _ = send(&mut w, &r).await;
                break;
            }
            Outcome::StartData(r) => {
                // From 354 to the final reply this message is work in flight.
                let _busy = shared.activity.busy();
                if send(&mut w, &r).await.is_err() {
                    session.lost_input(true);
                    break;
                }
                match read_or_stop(&shared, codec::read_data(&mut reader, session.max_message_size())).await {
                    Read::Got(Ok(d)) => {
                        let (reply, entry) = session.end_of_data(&d.data, d.oversize);
                        match entry {
                            // On disk and synced before the 250 goes out (spec §7.1).
                            Some(entry) => {
                                let (qid, pid) = (entry.qid.clone(), entry.pid);
                                match shared.queue.commit(entry).await {
                                    Ok(()) => {
                                        shared.spawn_delivery(qid);
                                        reply
                                    }
                                    Err(e) => queue_write_failed(&shared, pid, &qid, &e),
                                }
                            }
                            None => reply,
                        }
                    }
                    Read::Got(Err(_)) | Read::TimedOut => {
                        session.lost_input(true);
                        break;
                    }
                    Read::Stopping => {
                        let _ = send(&mut w, &session.shutting_down()).await;
                        break;
                    }
                }
            }
        };
        if send(&mut w, &reply).await.is_err() {
            session.lost_input(false);
            break;
        }
    }
    let _ = w.shutdown().await;
}
