//! The server: one authoritative root zone on UDP and TCP.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use hickory_server::{
    net::runtime::TokioRuntimeProvider,
    proto::rr::{
        rdata::{NS, SOA},
        Name, RData, RecordType, RrKey,
    },
    store::in_memory::InMemoryZoneHandler,
    zone_handler::{AxfrPolicy, Catalog, ZoneType},
    Server,
};
use tokio::{
    net::{TcpListener, UdpSocket},
    sync::{Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard},
};

use crate::{
    error::DnsError,
    fault::{Fault, Faults},
    query_log::{LoggingHandler, QueryLog, QueryLogEntry},
    record::{parse_rtype, to_name, Record},
};

type Zone = InMemoryZoneHandler<TokioRuntimeProvider>;

/// Zone serial; nothing transfers the zone, so it never needs to move.
const SERIAL: u32 = 1;
/// Idle TCP connections are closed after this.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Queued responses per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;
/// How long `shutdown` waits for hickory's tasks before dropping them.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);
/// Ports tried when asked for port 0.
const PORT_ATTEMPTS: u32 = 20;

/// A running mock DNS server. Dropping it aborts the server; prefer
/// [`MockDns::shutdown`].
pub struct MockDns {
    addr: SocketAddr,
    zone: Arc<Zone>,
    log: QueryLog,
    faults: Faults,
    // Serializes edits, so the CNAME check and the insert see the same zone.
    edits: AsyncMutex<()>,
    server: Server<LoggingHandler>,
}

impl MockDns {
    /// Serve `records` on UDP and TCP at `bind`. With port 0, a port free for
    /// both protocols on that IP is chosen; [`MockDns::addr`] tells which.
    ///
    /// All records live in one authoritative zone for the root, so any name
    /// not in `records` gets NXDOMAIN, and nothing is forwarded.
    pub async fn start(bind: SocketAddr, records: Vec<Record>) -> Result<MockDns, DnsError> {
        let mut zone = Zone::empty(Name::root(), ZoneType::Primary, AxfrPolicy::Deny);
        for record in soa_and_ns() {
            zone.upsert_mut(record, SERIAL);
        }
        for record in &records {
            let hickory =
                record.to_hickory().map_err(|source| DnsError::InvalidRecord { name: record.name.clone(), source })?;
            if has_cname_conflict(zone.records_get_mut(), &hickory) {
                return Err(conflict(record));
            }
            // false here means an identical record was already added.
            zone.upsert_mut(hickory, SERIAL);
        }
        let zone = Arc::new(zone);

        let mut catalog = Catalog::new();
        catalog.upsert(Name::root().into(), vec![zone.clone()]);
        let log = QueryLog::default();
        let faults = Faults::default();
        let (udp, tcp) = bind_pair(bind).await?;
        let addr = udp.local_addr().map_err(|source| DnsError::Bind { addr: bind, protocol: "udp", source })?;

        let mut server = Server::new(LoggingHandler { catalog, log: log.clone(), faults: faults.clone() });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        tracing::debug!(%addr, records = records.len(), "mock DNS serving");

        Ok(MockDns { addr, zone, log, faults, edits: AsyncMutex::new(()), server })
    }

    /// Where the server listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every query answered so far, in arrival order. A query is logged
    /// before its response is sent.
    pub fn queries(&self) -> Vec<QueryLogEntry> {
        self.log.snapshot()
    }

    /// Add a record while serving. Like a zone-file line: it joins the
    /// records of the same name and type (an identical record just updates
    /// the TTL); a CNAME replaces the previous CNAME. Use
    /// [`MockDns::replace`] to change an answer instead of adding to it.
    pub async fn upsert(&self, record: Record) -> Result<(), DnsError> {
        let (hickory, _edit) = self.begin_edit(&record).await?;
        self.zone.upsert(hickory, SERIAL).await;
        Ok(())
    }

    /// Replace all records of `record`'s name and type by `record`.
    pub async fn replace(&self, record: Record) -> Result<(), DnsError> {
        let (hickory, _edit) = self.begin_edit(&record).await?;
        let key = RrKey::new(hickory.name.clone().into(), hickory.record_type());
        self.zone.records_mut().await.remove(&key);
        self.zone.upsert(hickory, SERIAL).await;
        Ok(())
    }

    /// Remove all records of a name and type (`"A"`, `"MX"`, ...). Returns
    /// whether there were any. A name left without records answers NXDOMAIN.
    pub async fn remove(&self, name: &str, rtype: &str) -> Result<bool, DnsError> {
        let invalid = |source| DnsError::InvalidRecord { name: name.to_string(), source };
        let rtype = parse_rtype(rtype).map_err(invalid)?;
        let owner = to_name("record name", name).map_err(invalid)?;
        let _edit = self.edits.lock().await;
        let removed = self.zone.records_mut().await.remove(&RrKey::new(owner.into(), rtype));
        Ok(removed.is_some())
    }

    /// Add a fault: matching queries get it instead of (or before) their
    /// answer. Faults are tried in the order added; the first that applies wins.
    pub fn add_fault(&self, fault: Fault) {
        self.faults.push(fault);
    }

    /// Remove the faults for `name` (as it was given, e.g. `*.bl.spamcop.net`).
    pub fn remove_faults(&self, name: &str) {
        self.faults.remove(name);
    }

    /// Remove every fault: the server answers from its zone again.
    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    /// The faults in force.
    pub fn faults(&self) -> Vec<Fault> {
        self.faults.list()
    }

    /// Stop serving: sockets close, open TCP connections are dropped.
    /// Waits at most a couple of seconds for hickory's tasks.
    pub async fn shutdown(self) {
        let mut server = self.server;
        match tokio::time::timeout(SHUTDOWN_WAIT, server.shutdown_gracefully()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, addr = %self.addr, "mock DNS stopped with an error")
            }
            Err(_) => {
                tracing::warn!(addr = %self.addr, "mock DNS shutdown timed out; aborting its tasks")
            }
        }
        // Dropping the server aborts whatever is still running.
    }

    /// The common start of [`MockDns::upsert`] and [`MockDns::replace`]:
    /// convert `record` for hickory, take the edit lock, and refuse a record
    /// that would share its name with a CNAME. The caller applies the edit
    /// while holding the returned guard.
    async fn begin_edit(
        &self,
        record: &Record,
    ) -> Result<(hickory_server::proto::rr::Record, AsyncMutexGuard<'_, ()>), DnsError> {
        let hickory =
            record.to_hickory().map_err(|source| DnsError::InvalidRecord { name: record.name.clone(), source })?;
        let edit = self.edits.lock().await;
        if has_cname_conflict(&*self.zone.records().await, &hickory) {
            return Err(conflict(record));
        }
        Ok((hickory, edit))
    }
}

impl std::fmt::Debug for MockDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockDns").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// The root zone's SOA and NS. The SOA minimum (negative-caching TTL) is 0
/// so that a name added later is not hidden by a cached NXDOMAIN.
fn soa_and_ns() -> Vec<hickory_server::proto::rr::Record> {
    let ns = Name::from_ascii("ns.mock-dns.relaylab.").unwrap_or_else(|_| Name::root());
    let mbox = Name::from_ascii("hostmaster.mock-dns.relaylab.").unwrap_or_else(|_| Name::root());
    let soa = SOA::new(ns.clone(), mbox, SERIAL, 3600, 600, 86400, 0);
    vec![
        hickory_server::proto::rr::Record::from_rdata(Name::root(), 0, RData::SOA(soa)),
        hickory_server::proto::rr::Record::from_rdata(Name::root(), 3600, RData::NS(NS(ns))),
    ]
}

/// hickory silently ignores a CNAME next to other data (and other data next
/// to a CNAME); the lab wants that said out loud.
fn has_cname_conflict(
    records: &std::collections::BTreeMap<RrKey, Arc<hickory_server::proto::rr::RecordSet>>,
    record: &hickory_server::proto::rr::Record,
) -> bool {
    let owner = hickory_server::proto::rr::LowerName::from(&record.name);
    let new_is_cname = record.record_type() == RecordType::CNAME;
    records.keys().filter(|key| key.name == owner).any(|key| (key.record_type == RecordType::CNAME) != new_is_cname)
}

fn conflict(record: &Record) -> DnsError {
    DnsError::CnameConflict { name: record.name.clone(), rtype: record.data.rtype() }
}

/// Bind UDP and TCP on the same address; for port 0, retry until a port is
/// free for both.
async fn bind_pair(bind: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsError> {
    if bind.port() != 0 {
        let udp = bind_udp(bind).await?;
        let tcp = bind_tcp(bind).await?;
        return Ok((udp, tcp));
    }
    for _ in 0..PORT_ATTEMPTS {
        let udp = bind_udp(bind).await?;
        let port = udp.local_addr().map_err(|source| DnsError::Bind { addr: bind, protocol: "udp", source })?.port();
        // The UDP port may be taken on TCP; then try another.
        if let Ok(tcp) = TcpListener::bind(SocketAddr::new(bind.ip(), port)).await {
            return Ok((udp, tcp));
        }
    }
    Err(DnsError::NoFreePort { ip: bind.ip(), attempts: PORT_ATTEMPTS })
}

async fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, DnsError> {
    UdpSocket::bind(addr).await.map_err(|source| DnsError::Bind { addr, protocol: "udp", source })
}

async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, DnsError> {
    TcpListener::bind(addr).await.map_err(|source| DnsError::Bind { addr, protocol: "tcp", source })
}

// The harness shares one MockDns between tasks.
const _: () = {
    const fn check<T: Send + Sync>() {}
    check::<MockDns>();
};
