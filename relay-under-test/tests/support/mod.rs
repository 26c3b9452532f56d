//! In-test fakes: a tiny authoritative DNS over UDP and tiny MX sinks, so the
//! relay is tested over real sockets without depending on the lab's mock
//! crates.

#![allow(dead_code)]

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, MX, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use lab_core::clock::FixedClock;
use lab_core::codec;
use lab_core::{AddressMap, SharedClock, SmtpClient, TranscriptRecorder};
use relay_under_test::{BuiltinRelay, LabNetwork, RelayProfile};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// A fresh 127.X.Y.0/24 for one test, so tests in parallel never share addresses.
pub fn subnet() -> [u8; 3] {
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    [127, 100 + (std::process::id() % 100) as u8, n]
}

pub fn ip(net: [u8; 3], host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(net[0], net[1], net[2], host))
}

fn name(s: &str) -> Name {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.'))).unwrap()
}

/// One zone entry: owner name (lower case, no dot) and data, or a failure mode.
#[derive(Debug, Clone)]
pub enum Rec {
    Data(String, RData),
    ServFail(String),
}

pub fn mx(owner: &str, pref: u16, exchange: &str) -> Rec {
    Rec::Data(owner.into(), RData::MX(MX::new(pref, name(exchange))))
}
pub fn a(owner: &str, addr: &str) -> Rec {
    Rec::Data(owner.into(), RData::A(A(addr.parse().unwrap())))
}
pub fn ptr(addr: &str, target: &str) -> Rec {
    let rev = Name::from(addr.parse::<IpAddr>().unwrap()).to_string();
    Rec::Data(rev.trim_end_matches('.').to_lowercase(), RData::PTR(PTR(name(target))))
}

pub struct FakeDns {
    pub addr: SocketAddr,
    pub queries: Arc<Mutex<Vec<(String, RecordType)>>>,
    task: JoinHandle<()>,
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeDns {
    pub async fn start(bind: IpAddr, zone: Vec<Rec>) -> FakeDns {
        let sock = UdpSocket::bind(SocketAddr::new(bind, 0)).await.unwrap();
        let addr = sock.local_addr().unwrap();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let q2 = queries.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else { return };
                let Ok(req) = Message::from_vec(&buf[..n]) else { continue };
                let mut resp = Message::new(req.metadata.id, MessageType::Response, OpCode::Query);
                resp.metadata.recursion_desired = req.metadata.recursion_desired;
                resp.metadata.recursion_available = true;
                resp.metadata.authoritative = true;
                resp.add_queries(req.queries.clone());
                if let Some(q) = req.queries.first() {
                    let qn = q.name().to_string().trim_end_matches('.').to_lowercase();
                    q2.lock().unwrap().push((qn.clone(), q.query_type()));
                    let mut known = false;
                    let mut fail = false;
                    for r in &zone {
                        match r {
                            Rec::ServFail(o) if *o == qn => fail = true,
                            Rec::Data(o, d) if *o == qn => {
                                known = true;
                                if d.record_type() == q.query_type() {
                                    resp.add_answer(Record::from_rdata(q.name().clone(), 60, d.clone()));
                                }
                            }
                            _ => {}
                        }
                    }
                    resp.metadata.response_code = if fail {
                        ResponseCode::ServFail
                    } else if known {
                        ResponseCode::NoError
                    } else {
                        ResponseCode::NXDomain
                    };
                }
                let _ = sock.send_to(&resp.to_vec().unwrap(), from).await;
            }
        });
        FakeDns { addr, queries, task }
    }

    /// The questions so far as `TYPE name` (`MX deer-run.com`).
    pub fn asked(&self) -> Vec<String> {
        self.queries.lock().unwrap().iter().map(|(n, t)| format!("{t} {n}")).collect()
    }
}

/// How a fake MX host answers.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub name: String,
    pub greeting_code: u16,
    /// Reply to RCPT for recipients whose address contains this text.
    pub reject_rcpt: Option<(String, String)>,
    /// Wait this long before the reply to end of DATA.
    pub data_delay: Duration,
}

impl SinkConfig {
    pub fn accept(name: &str) -> SinkConfig {
        SinkConfig { name: name.into(), greeting_code: 220, reject_rcpt: None, data_delay: Duration::ZERO }
    }
}

#[derive(Debug, Clone)]
pub struct Got {
    pub peer: SocketAddr,
    pub helo: String,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub data: String,
}

pub struct FakeMx {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Got>>>,
    task: JoinHandle<()>,
}

impl Drop for FakeMx {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeMx {
    pub async fn start(bind: SocketAddr, cfg: SinkConfig) -> FakeMx {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g2 = got.clone();
        let task = tokio::spawn(async move {
            let mut n = 0u32;
            loop {
                let Ok((s, peer)) = listener.accept().await else { return };
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let cfg = cfg.clone();
                let got = g2.clone();
                n += 1;
                let id = n;
                tokio::spawn(async move {
                    let say = |code: u16, text: String| format!("{code} {text}\r\n");
                    if cfg.greeting_code != 220 {
                        let _ = w.write_all(say(cfg.greeting_code, format!("{} busy", cfg.name)).as_bytes()).await;
                    } else {
                        let _ = w.write_all(say(220, format!("{} ESMTP sink", cfg.name)).as_bytes()).await;
                    }
                    let mut cur =
                        Got { peer, helo: String::new(), mail_from: String::new(), rcpts: vec![], data: String::new() };
                    while let Ok(line) = codec::read_line(&mut r, 4096).await {
                        let up = line.to_ascii_uppercase();
                        let reply = if up.starts_with("EHLO") || up.starts_with("HELO") {
                            cur.helo = line[5..].to_string();
                            if up.starts_with("EHLO") {
                                format!("250-{} hello\r\n250-SIZE\r\n250 PIPELINING\r\n", cfg.name)
                            } else {
                                say(250, format!("{} hello", cfg.name))
                            }
                        } else if up.starts_with("MAIL FROM:") {
                            cur.mail_from = line[10..].to_string();
                            say(250, "2.1.0 Ok".into())
                        } else if up.starts_with("RCPT TO:") {
                            let rcpt = line[8..].to_string();
                            match &cfg.reject_rcpt {
                                Some((pat, reply)) if rcpt.contains(pat.as_str()) => format!("{reply}\r\n"),
                                _ => {
                                    cur.rcpts.push(rcpt);
                                    say(250, "2.1.5 Ok".into())
                                }
                            }
                        } else if up == "DATA" {
                            let _ = w.write_all(b"354 go ahead\r\n").await;
                            let Ok(d) = codec::read_data(&mut r, 0).await else { return };
                            tokio::time::sleep(cfg.data_delay).await;
                            cur.data = String::from_utf8_lossy(&d.data).into_owned();
                            got.lock().unwrap().push(cur.clone());
                            say(250, format!("2.0.0 S{id:04} Message accepted for delivery"))
                        } else if up == "QUIT" {
                            let _ = w.write_all(say(221, "2.0.0 bye".into()).as_bytes()).await;
                            return;
                        } else {
                            say(250, "2.0.0 Ok".into())
                        };
                        if w.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeMx { addr, got, task }
    }

    pub fn messages(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

/// 2006-01-05 06:28:13 UTC = Wed 4 Jan 2006 22:28:13 PST.
pub fn course_clock() -> SharedClock {
    use chrono::TimeZone;
    Arc::new(FixedClock(chrono::Utc.with_ymd_and_hms(2006, 1, 5, 6, 28, 13).unwrap()))
}

/// A lab: DNS, relay, address map. Lab addresses 203.0.113.x are clients
/// (real 127.n.n.x), 192.0.2.x are MX hosts (real 127.n.n.x too).
pub struct Lab {
    pub net: [u8; 3],
    pub dns: FakeDns,
    pub relay: BuiltinRelay,
    pub smtp_port: u16,
}

pub struct LabSpec {
    pub profile: RelayProfile,
    pub zone: Vec<Rec>,
    /// (lab ip last octet, real ip last octet) pairs for 203.0.113.x clients and 192.0.2.x hosts.
    pub clients: Vec<u8>,
    pub hosts: Vec<u8>,
    pub smtp_port: u16,
    pub clock: SharedClock,
}

impl LabSpec {
    pub fn new(profile: RelayProfile, zone: Vec<Rec>, smtp_port: u16) -> LabSpec {
        LabSpec { profile, zone, clients: vec![66, 67, 9], hosts: vec![10, 20, 30], smtp_port, clock: course_clock() }
    }
}

pub fn client_lab_ip(octet: u8) -> IpAddr {
    format!("203.0.113.{octet}").parse().unwrap()
}
pub fn client_real_ip(net: [u8; 3], octet: u8) -> IpAddr {
    ip(net, octet)
}
pub fn host_lab_ip(octet: u8) -> IpAddr {
    format!("192.0.2.{octet}").parse().unwrap()
}
/// Real address of a lab MX host: 127.n.n.(100 + octet).
pub fn host_real_ip(net: [u8; 3], octet: u8) -> IpAddr {
    ip(net, 100 + octet)
}

impl Lab {
    pub async fn start(net: [u8; 3], spec: LabSpec) -> Lab {
        let dns = FakeDns::start(ip(net, 53), honest_ptrs(spec.zone)).await;
        let mut addresses = AddressMap::identity();
        for c in &spec.clients {
            addresses.insert(client_lab_ip(*c), client_real_ip(net, *c));
        }
        for h in &spec.hosts {
            addresses.insert(host_lab_ip(*h), host_real_ip(net, *h));
        }
        let lab = LabNetwork {
            listen: SocketAddr::new(ip(net, 2), 0),
            virtual_ip: "198.51.100.25".parse().unwrap(),
            dns: dns.addr,
            smtp_port: spec.smtp_port,
            addresses,
            clock: spec.clock,
        };
        let relay = BuiltinRelay::start(spec.profile, lab).await.unwrap();
        Lab { net, dns, relay, smtp_port: spec.smtp_port }
    }

    /// Connect to the relay as lab client 203.0.113.`octet`.
    pub async fn client(&self, octet: u8) -> SmtpClient {
        use relay_under_test::RelayUnderTest;
        SmtpClient::connect(
            Some(client_real_ip(self.net, octet)),
            self.relay.smtp_addr(),
            Duration::from_secs(10),
            TranscriptRecorder::new(format!("client{octet} -> relay")),
        )
        .await
        .unwrap()
    }
}

/// The course's external relay in a lab: [`external_profile`] changed by
/// `f`, with 203.0.113.66 named real.dom.com in the DNS.
pub async fn external_lab(f: impl FnOnce(&mut RelayProfile)) -> Lab {
    external_lab_with(f, Vec::new()).await
}

/// [`external_lab`] with `zone` in the DNS too.
pub async fn external_lab_with(f: impl FnOnce(&mut RelayProfile), mut zone: Vec<Rec>) -> Lab {
    let mut p = external_profile();
    f(&mut p);
    zone.push(ptr("203.0.113.66", "real.dom.com"));
    let net = subnet();
    let port = free_port(host_real_ip(net, 10)).await;
    Lab::start(net, LabSpec::new(p, zone, port)).await
}

/// A network for a relay that is only started to see it refuse its profile.
pub fn refusal_network(net: [u8; 3]) -> LabNetwork {
    LabNetwork {
        listen: SocketAddr::new(ip(net, 2), 0),
        virtual_ip: "198.51.100.25".parse().unwrap(),
        dns: SocketAddr::new(ip(net, 53), 53),
        smtp_port: 25,
        addresses: AddressMap::identity(),
        clock: course_clock(),
    }
}

/// Send each line as a command; the replies' texts.
pub async fn talk(c: &mut SmtpClient, lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for l in lines {
        out.push(c.command(l).await.unwrap().text());
    }
    out
}

/// Wait (at most 5 s) until a log line contains `needle`; the log as it then is.
pub async fn wait_for_log(lab: &Lab, needle: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let log = log_of(lab);
        if log.iter().any(|l| l.contains(needle)) || tokio::time::Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The relay's log lines without the syslog prefix, queue ids as `QID`.
pub fn log_of(lab: &Lab) -> Vec<String> {
    use relay_under_test::RelayUnderTest;
    let qid = regex::Regex::new(r"^[0-9A-Za-x]{8}\d{6}: ").unwrap();
    lab.relay.log_lines().iter().map(|l| qid.replace(l.split_once("]: ").unwrap().1, "QID: ").into_owned()).collect()
}

/// A port free on `bind` now, for MX hosts that must all share one port.
pub async fn free_port(bind: IpAddr) -> u16 {
    TcpListener::bind(SocketAddr::new(bind, 0)).await.unwrap().local_addr().unwrap().port()
}

/// The external relay of the course: relays for sysiphus.com and 192.168.2.
pub fn external_profile() -> RelayProfile {
    let mut p = RelayProfile::new("external.sysiphus.com");
    p.relay_domains = vec!["sysiphus.com".into(), "203.0.113.9".into()];
    p.timezone = "-0800 PST".into();
    p.smtp_timeout = Duration::from_secs(5);
    // external.mc's privacy flags (spec §15).
    p.privacy_flags = vec!["noexpn,novrfy,noverb,noetrn,noreceipts".into()];
    // These labs' senders are invented; tests/relay_control.rs checks sender domains.
    p.accept_unresolvable_domains = true;
    p
}

/// Each PTR name without an A record of its own gets one pointing back at
/// its address, so test clients are not "(may be forged)" (spec §5.2)
/// unless a test publishes an A record elsewhere for the name.
fn honest_ptrs(mut zone: Vec<Rec>) -> Vec<Rec> {
    let has_a = |zone: &[Rec], owner: &str| {
        zone.iter().any(|r| matches!(r, Rec::Data(o, RData::A(_)) if o.eq_ignore_ascii_case(owner)))
    };
    let mut extra = Vec::new();
    for r in &zone {
        if let Rec::Data(owner, RData::PTR(target)) = r {
            let target = target.0.to_string().trim_end_matches('.').to_lowercase();
            let rev: Vec<&str> = owner.trim_end_matches(".in-addr.arpa").split('.').collect();
            if rev.len() == 4 && !has_a(&zone, &target) {
                let addr = format!("{}.{}.{}.{}", rev[3], rev[2], rev[1], rev[0]);
                extra.push(a(&target, &addr));
            }
        }
    }
    zone.append(&mut extra);
    zone
}
