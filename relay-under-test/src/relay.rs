//! The builtin relay: wires the parts together and implements
//! [`RelayUnderTest`].
//!
//! Talks to the lab through its parts: `smtp::server` to SMTP clients,
//! `deliver` to MX hosts, `routing` to the lab DNS, `queue` to its queue
//! directory (and, for `relaylab relay serve`, `queue::control` to the
//! queue tools).

use crate::activity::Activity;
use crate::deliver::{DeliveryContext, Mailboxes};
use crate::error::RelayError;
use crate::log::RelayLog;
use crate::network::LabNetwork;
use crate::policy::RelayPolicy;
use crate::profile::RelayProfile;
use crate::queue::queue_run::{QueueRunner, RunSummary};
use crate::queue::{MailQueue, QueueHistory, QueueSettings, QueuedMessage};
use crate::queue_id::QueueIdGen;
use crate::routing::{HickoryResolver, Resolver, Router};
use crate::smtp::server::{accept_loop, Shared, TaskList};
use crate::smtp::session::SessionConfig;
use crate::RelayUnderTest;
use async_trait::async_trait;
use lab_core::{Transcript, TranscriptRecorder};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long `stop` lets sessions and deliveries finish before aborting them.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// How long `settle` waits for client connections to end.
const SESSION_END_GRACE: Duration = Duration::from_millis(200);

/// The reference relay, a small Sendmail 8.13 look-alike.
#[derive(Debug)]
pub struct BuiltinRelay {
    addr: SocketAddr,
    log: RelayLog,
    queue: MailQueue,
    activity: Activity,
    transcripts: Arc<Mutex<Vec<TranscriptRecorder>>>,
    mailboxes: Mailboxes,
    shutdown: watch::Sender<bool>,
    tasks: TaskList,
    accept: Mutex<Option<JoinHandle<()>>>,
    runner: QueueRunner,
    zone: crate::dates::Zone,
    connections: Activity,
}

impl BuiltinRelay {
    /// Validate `profile`, bind `net.listen` and start serving. DNS goes to
    /// `net.dns` only.
    pub async fn start(profile: RelayProfile, net: LabNetwork) -> Result<BuiltinRelay, RelayError> {
        profile.validate()?;
        let source = Some(net.listen.ip()).filter(|ip| !ip.is_unspecified());
        let resolver =
            HickoryResolver::new(net.dns, source).map_err(|why| RelayError::Resolver { addr: net.dns, why })?;
        Self::start_with_resolver(profile, net, Arc::new(resolver)).await
    }

    /// Like [`start`](Self::start) with another [`Resolver`] (tests, or a
    /// flavour with its own DNS view).
    pub async fn start_with_resolver(
        profile: RelayProfile,
        net: LabNetwork,
        resolver: Arc<dyn Resolver>,
    ) -> Result<BuiltinRelay, RelayError> {
        profile.validate()?;
        let zone = profile.zone()?;
        let policy = Arc::new(RelayPolicy::from_profile(&profile)?.with_own_address(net.virtual_ip));
        let router = Arc::new(Router::from_profile(&profile).map_err(crate::profile::ProfileError::from)?);
        let mailboxes = Mailboxes::default();
        let log = RelayLog::new(profile.short_hostname(), &profile.log_tag, zone.clone(), net.clock.clone());
        let (queue, recovery) = MailQueue::open(profile.queue_directory.as_deref(), net.clock.clone())
            .map_err(|source| RelayError::Queue { dir: profile.queue_directory.clone().unwrap_or_default(), source })?;
        let listener = match TcpListener::bind(net.listen).await {
            Ok(l) => l,
            Err(source) => {
                queue.close();
                return Err(RelayError::Bind { addr: net.listen, source });
            }
        };
        let addr = listener.local_addr().map_err(|source| RelayError::Bind { addr: net.listen, source })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let activity = Activity::default();
        let transcripts = Arc::new(Mutex::new(Vec::new()));
        let tasks = TaskList::default();
        let connections = Activity::default();
        // The queue runner's pseudo-process: its ids are those of the DSNs.
        let runner_pid = (std::process::id() + 500_000) % 1_000_000;
        for note in &recovery {
            log.log(runner_pid, None, note);
        }
        let delivery = DeliveryContext {
            hostname: profile.hostname.clone(),
            smtp_timeout: profile.smtp_timeout,
            net: net.clone(),
            resolver: resolver.clone(),
            policy: policy.clone(),
            router: router.clone(),
            mailboxes: mailboxes.clone(),
            log: log.clone(),
            queue: queue.clone(),
            transcripts: transcripts.clone(),
            queue_settings: QueueSettings::from_profile(&profile),
            version: profile.version.clone(),
            zone: zone.clone(),
            ids: Arc::new(Mutex::new(QueueIdGen::new(runner_pid))),
            activity: activity.clone(),
            tasks: tasks.clone(),
            shutdown: shutdown_rx.clone(),
            run_cache: None,
        };
        let runner = QueueRunner::start(delivery.clone(), !queue.is_empty());
        let cfg = SessionConfig {
            anti_spam: crate::smtp::session::AntiSpam::from_profile(&profile),
            policy: (*policy).clone(),
            router,
            profile,
            zone: zone.clone(),
            clock: net.clock.clone(),
            log: log.clone(),
        };
        let shared = Arc::new(Shared {
            cfg: Arc::new(cfg),
            addresses: net.addresses.clone(),
            resolver,
            queue: queue.clone(),
            activity: activity.clone(),
            delivery,
            next_pid: AtomicU32::new(std::process::id() % 1_000_000),
            shutdown: shutdown_rx,
            tasks: tasks.clone(),
            connections: connections.clone(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared));
        tracing::info!("builtin relay listening on {addr}, queue in {}", queue.dir().display());
        Ok(BuiltinRelay {
            addr,
            log,
            queue,
            activity,
            transcripts,
            mailboxes,
            shutdown,
            tasks,
            accept: Mutex::new(Some(accept)),
            runner,
            zone,
            connections,
        })
    }
}

impl BuiltinRelay {
    /// The relay's local mailboxes (local users, and alias targets that are
    /// files or programs): what local delivery wrote, for tests.
    pub fn mailboxes(&self) -> &Mailboxes {
        &self.mailboxes
    }

    /// The queue directory.
    pub fn queue_dir(&self) -> &std::path::Path {
        self.queue.dir()
    }

    /// The queue (tests and benchmarks).
    pub fn mail_queue(&self) -> &MailQueue {
        &self.queue
    }

    /// Listen for `relaylab relay mailq`/`flush` on `<queue dir>/relaylab.sock`
    /// until the relay stops (see [`crate::queue::control`]).
    pub fn start_control_socket(&self) -> std::io::Result<std::path::PathBuf> {
        let (path, task) = crate::queue::control::start(
            self.queue.clone(),
            self.runner.clone(),
            self.zone.clone(),
            self.shutdown.subscribe(),
        )?;
        self.tasks.push(task);
        Ok(path)
    }
}

#[async_trait]
impl RelayUnderTest for BuiltinRelay {
    fn flavour(&self) -> &str {
        "builtin"
    }

    fn smtp_addr(&self) -> SocketAddr {
        self.addr
    }

    fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    fn outbound_sessions(&self) -> Vec<Transcript> {
        self.transcripts.lock().unwrap().iter().map(|t| t.snapshot()).collect()
    }

    fn queue(&self) -> Vec<QueuedMessage> {
        self.queue.list()
    }

    fn mailq(&self) -> Option<String> {
        Some(crate::queue::control::listing(&self.queue, &self.zone))
    }

    async fn flush_queue(&self, domain: Option<&str>) -> Result<RunSummary, String> {
        self.runner.run_now(domain.map(str::to_string)).await
    }

    fn queue_history(&self) -> Option<QueueHistory> {
        Some(self.queue.history())
    }

    async fn settle(&self, timeout: Duration) -> bool {
        if !self.activity.wait_idle(timeout).await {
            return false;
        }
        // Clients that hung up are noticed a moment later; give their
        // sessions that moment to log their last line. A client still
        // connected is no reason not to settle.
        if self.connections.in_flight() > 0 {
            let _ = self.connections.wait_idle(timeout.min(SESSION_END_GRACE)).await;
            return self.activity.wait_idle(timeout).await;
        }
        true
    }

    async fn stop(&self) {
        self.shutdown.send_replace(true);
        let accept = self.accept.lock().unwrap().take();
        if let Some(h) = accept {
            let _ = h.await;
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        loop {
            let handles = self.tasks.take();
            if handles.is_empty() {
                break;
            }
            for mut h in handles {
                if tokio::time::timeout_at(deadline, &mut h).await.is_err() {
                    h.abort();
                }
            }
        }
        self.queue.close();
    }
}

impl Drop for BuiltinRelay {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(h) = self.accept.lock().unwrap().take() {
            h.abort();
        }
        self.tasks.abort_all();
        self.queue.close();
    }
}
