//! The builtin relay: wires the parts together and implements
//! [`RelayUnderTest`].
//!
//! Talks to the lab through its parts: `smtp::server` to SMTP clients,
//! `deliver` to MX hosts, `routing` to the lab DNS.

use crate::activity::Activity;
use crate::deliver::{DeliveryContext, Mailboxes};
use crate::error::RelayError;
use crate::log::RelayLog;
use crate::network::LabNetwork;
use crate::policy::RelayPolicy;
use crate::profile::RelayProfile;
use crate::queue::{MailQueue, QueuedMessage};
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
        let listener =
            TcpListener::bind(net.listen).await.map_err(|source| RelayError::Bind { addr: net.listen, source })?;
        let addr = listener.local_addr().map_err(|source| RelayError::Bind { addr: net.listen, source })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let queue = MailQueue::default();
        let activity = Activity::default();
        let transcripts = Arc::new(Mutex::new(Vec::new()));
        let tasks = TaskList::default();
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
        };
        let cfg = SessionConfig {
            policy: (*policy).clone(),
            router,
            profile,
            zone,
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
        });
        let accept = tokio::spawn(accept_loop(listener, shared));
        tracing::info!("builtin relay listening on {addr}");
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
        })
    }
}

impl BuiltinRelay {
    /// The relay's local mailboxes (local users, and alias targets that are
    /// files or programs): what local delivery wrote, for tests.
    pub fn mailboxes(&self) -> &Mailboxes {
        &self.mailboxes
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

    async fn settle(&self, timeout: Duration) -> bool {
        self.activity.wait_idle(timeout).await
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
    }
}

impl Drop for BuiltinRelay {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(h) = self.accept.lock().unwrap().take() {
            h.abort();
        }
        self.tasks.abort_all();
    }
}
