//! Real MTAs (Postfix, Sendmail, Exim, OpenSMTPD) in a private lab network
//! namespace, against the lab's own mock DNS and MX sink.
//!
//! These need root and the trees unpacked by `relay-under-test/mta/install.sh`,
//! so they are `#[ignore]`d in a plain `cargo test` (counted as ignored, never
//! passing silently). Run them with:
//!
//! ```text
//! relay-under-test/mta/install.sh
//! cargo test -p relaylab-relay --test real_mta -- --ignored --test-threads 1
//! ```
//!
//! Run that way, a missing prerequisite fails the test with what to do.

use lab_core::{SmtpClient, TranscriptRecorder};
use mock_dns::{MockDns, Record};
use mock_hosts::{MxSink, SinkConfig};
use relay_under_test::flavours::{
    self, netns_lab_network, EventKind, Exim, Flavour, NativeConfig, OpenSmtpd, Postfix, RealRelay, Sendmail,
};
use relay_under_test::netns::{self, LabNamespace};
use relay_under_test::{RelayProfile, RelayUnderTest};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const RELAY: &str = "192.0.2.25";
const DNS: &str = "192.0.2.53";
const MX: &str = "192.0.2.10";
const SPAMMER: &str = "203.0.113.66";
const INSIDER: &str = "10.1.1.5";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A lab: namespace, mock DNS on 192.0.2.53:53, MX sink for sysiphus.com on 192.0.2.10:25.
struct Lab {
    ns: Arc<LabNamespace>,
    dns: MockDns,
    sink: MxSink,
}

fn prerequisites(flavour: &str) {
    assert!(netns::is_root(), "{}", netns::NetnsError::NotRoot);
    assert!(
        flavours::installed(flavour),
        "{flavour} is not unpacked under {}: run relay-under-test/mta/install.sh as root",
        flavours::mta_dir().display()
    );
}

/// An MX sink named `name` on `addr`:25 inside the lab namespace.
async fn start_sink(ns: &LabNamespace, addr: &str, name: &'static str) -> MxSink {
    let addr = SocketAddr::new(ip(addr), 25);
    ns.enter(move || MxSink::start(addr, SinkConfig::accept(name), lab_core::clock::wall()))
        .await
        .unwrap()
        .expect("MX sink in the lab")
}

impl Lab {
    async fn up() -> Lab {
        let ns = LabNamespace::create().expect("lab namespace");
        for a in [RELAY, DNS, MX, SPAMMER, INSIDER] {
            ns.add_address(ip(a)).unwrap();
        }
        let records = vec![
            Record::parse("sysiphus.com", "MX", "10 internal.sysiphus.com").unwrap(),
            Record::parse("internal.sysiphus.com", "A", MX).unwrap(),
            Record::parse("external.sysiphus.com", "A", RELAY).unwrap(),
            Record::parse("25.2.0.192.in-addr.arpa", "PTR", "external.sysiphus.com").unwrap(),
            Record::parse("10.2.0.192.in-addr.arpa", "PTR", "internal.sysiphus.com").unwrap(),
            Record::parse("66.113.0.203.in-addr.arpa", "PTR", "dialup-66.example.net").unwrap(),
            Record::parse("dialup-66.example.net", "A", SPAMMER).unwrap(),
            // senders' domains resolve (Sendmail refuses unresolvable sender domains, 451/553 4.1.8)
            Record::parse("lying.com", "A", SPAMMER).unwrap(),
            // an outside domain with an MX (a sink only where a test starts one)
            Record::parse("elsewhere.example", "MX", "10 mx.elsewhere.example").unwrap(),
            Record::parse("mx.elsewhere.example", "A", "192.0.2.12").unwrap(),
        ];
        let dns = ns
            .enter(move || MockDns::start(SocketAddr::new(ip(DNS), 53), records))
            .await
            .unwrap()
            .expect("mock DNS in the lab");
        let sink = start_sink(&ns, MX, "internal.sysiphus.com").await;
        Lab { ns, dns, sink }
    }

    async fn relay<F: Flavour>(&self, native: NativeConfig) -> RealRelay<F> {
        let mut profile = RelayProfile::new("external.sysiphus.com");
        profile.relay_domains = vec!["sysiphus.com".into(), "10.1.1".into()];
        profile.max_hop_count = 50;
        self.relay_with(profile, native).await
    }

    /// The relay at 192.0.2.25 with `profile`.
    async fn relay_with<F: Flavour>(&self, profile: RelayProfile, native: NativeConfig) -> RealRelay<F> {
        match RealRelay::<F>::start(self.ns.clone(), profile, netns_lab_network(ip(RELAY), ip(DNS)), native).await {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    async fn client(&self, from: &str, to: SocketAddr) -> SmtpClient {
        let from = ip(from);
        let c = self
            .ns
            .enter(move || {
                SmtpClient::connect(Some(from), to, Duration::from_secs(20), TranscriptRecorder::new("client"))
            })
            .await
            .unwrap()
            .expect("connect to the relay");
        c
    }

    /// A counter of the namespace's `/proc/net/snmp` (`("Tcp", "ActiveOpens")`).
    async fn snmp(&self, proto: &str, name: &str) -> u64 {
        let out = self.ns.command("cat").arg("/proc/net/snmp").output().await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let prefix = format!("{proto}:");
        let mut rows = text.lines().filter(|l| l.starts_with(&prefix));
        let (names, values) = (rows.next().unwrap(), rows.next().unwrap());
        let i = names.split_whitespace().position(|n| n == name).unwrap();
        values.split_whitespace().nth(i).unwrap().parse().unwrap()
    }

    async fn down(self) {
        self.sink.shutdown().await;
        self.dns.shutdown().await;
        self.ns.delete();
    }
}

/// Send one message; the replies to MAIL, each RCPT, and the end of DATA (if sent).
async fn send(mut c: SmtpClient, helo: &str, from: &str, rcpts: &[&str], body: &str) -> Vec<lab_core::Reply> {
    let mut out = Vec::new();
    let greeting = c.read_reply().await.unwrap();
    assert_eq!(greeting.code, 220, "{greeting}");
    let h = c.command(&format!("EHLO {helo}")).await.unwrap();
    assert_eq!(h.code, 250, "{h}");
    out.push(c.command(&format!("MAIL FROM:<{from}>")).await.unwrap());
    let mut any = false;
    for r in rcpts {
        let reply = c.command(&format!("RCPT TO:<{r}>")).await.unwrap();
        any |= reply.code == 250;
        out.push(reply);
    }
    if any {
        let d = c.command("DATA").await.unwrap();
        assert_eq!(d.code, 354, "{d}");
        out.push(c.send_message(body.replace('\n', "\r\n").as_bytes()).await.unwrap());
    }
    c.quit().await;
    out
}

fn dump<F: Flavour>(relay: &RealRelay<F>) -> String {
    format!("log:\n  {}", relay.log_lines().join("\n  "))
}

/// A message for a relay domain is accepted and delivered to the MX sink with
/// a Received header; an outside client relaying to an outside domain gets 5xx.
async fn relays_for_its_domain_and_refuses_outsiders<F: Flavour>(native: NativeConfig) {
    prerequisites(F::default().name());
    let lab = Lab::up().await;
    let relay: RealRelay<F> = lab.relay(native).await;

    // an outsider relaying to an outside domain
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(c, "spoof.example.com", "Im@lying.com", &["victim@elsewhere.example"], "Subject: x\n\nx\n").await;
    assert!(r[1].is_permanent(), "relaying must be refused with 5xx: {:?}\n{}", r, dump(&relay));

    // an outsider sending to the relay domain
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(
        c,
        "spoof.example.com",
        "Im@lying.com",
        &["john@sysiphus.com"],
        "From: Santa@Northpole.com\nSubject: Ho Ho Ho\n\nYou've been a naughty boy this year!\n",
    )
    .await;
    assert!(r.iter().all(|x| x.code == 250), "{r:?}\n{}", dump(&relay));
    assert!(relay.settle(Duration::from_secs(30)).await, "did not settle\n{}", dump(&relay));
    let got = lab.sink.messages();
    assert_eq!(got.len(), 1, "delivered: {got:#?}\n{}", dump(&relay));
    assert_eq!(got[0].envelope.mail_from, "Im@lying.com");
    assert_eq!(got[0].envelope.rcpt_to, vec!["john@sysiphus.com"]);
    let text = got[0].text();
    assert!(text.starts_with("Received: "), "{text}");
    assert!(text.contains(SPAMMER), "the Received header names the client: {text}");
    assert!(text.contains("external.sysiphus.com"), "{text}");
    assert!(relay.queue().is_empty(), "{:?}", relay.queue());

    let ev = relay.events();
    let kinds: Vec<EventKind> = ev.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::Rejected), "{ev:#?}\n{}", dump(&relay));
    assert!(kinds.contains(&EventKind::Received), "{ev:#?}\n{}", dump(&relay));
    let d = ev.iter().find(|e| e.kind == EventKind::Delivered).unwrap_or_else(|| panic!("{ev:#?}\n{}", dump(&relay)));
    assert_eq!(d.to.as_deref(), Some("john@sysiphus.com"));

    relay.stop().await;
    eprintln!("{}", dump(&relay));
    lab.down().await;
}

/// A relay asked to deliver to an unknown domain: the lab DNS answers
/// NXDOMAIN, the recipient bounces, the bounce goes to the sender's MX (a lab
/// host), and nothing tries to reach anything outside: the namespace has no
/// route out at all, and the kernel's count of packets refused for want of a
/// route (`Ip: OutNoRoutes`) stays at zero.
async fn unknown_domain_gets_nxdomain_and_no_outside_connection<F: Flavour>() {
    prerequisites(F::default().name());
    let lab = Lab::up().await;
    let relay: RealRelay<F> = lab.relay(NativeConfig::Rendered).await;

    let routes = lab.ns.command("ip").args(["route", "show", "table", "all"]).output().await.unwrap();
    let routes = String::from_utf8_lossy(&routes.stdout).to_string();
    assert!(
        routes.lines().all(|l| l.starts_with("local ")
            || l.starts_with("broadcast ")
            || l.contains(" dev lo ") && !l.starts_with("default")),
        "the lab namespace must have no route out:\n{routes}"
    );

    let opens = lab.snmp("Tcp", "ActiveOpens").await;
    let no_routes = lab.snmp("Ip", "OutNoRoutes").await;
    let c = lab.client(INSIDER, relay.smtp_addr()).await;
    let r = send(c, "inside.sysiphus.com", "alice@sysiphus.com", &["bob@nowhere.invalid"], "Subject: hi\n\nhi\n").await;
    assert!(r.iter().all(|x| x.code == 250), "an inside client may relay: {r:?}\n{}", dump(&relay));
    let mut settled = false;
    for _ in 0..3 {
        if relay.settle(Duration::from_secs(20)).await && relay.queue().is_empty() {
            settled = true;
            break;
        }
        let _ = relay.queue_run().await;
    }
    let opens = lab.snmp("Tcp", "ActiveOpens").await - opens;
    let no_routes = lab.snmp("Ip", "OutNoRoutes").await - no_routes;

    let nx: Vec<_> = lab.dns.queries().into_iter().filter(|q| q.name == "nowhere.invalid").collect();
    assert!(!nx.is_empty(), "the relay asked the lab DNS about nowhere.invalid: {:?}", lab.dns.queries());
    assert!(nx.iter().all(|q| q.rcode == "NXDOMAIN"), "{nx:?}");
    let ev = relay.events();
    assert!(
        ev.iter().any(|e| e.kind == EventKind::Bounced && e.to.as_deref() == Some("bob@nowhere.invalid")),
        "bounced (settled: {settled}): {ev:#?}\n{}",
        dump(&relay)
    );
    // the bounce went to the sender's MX, in the lab
    let got = lab.sink.messages();
    assert!(got.iter().all(|m| m.envelope.mail_from.is_empty()), "only the DSN reaches the sink: {got:#?}");
    assert!(got.len() <= 1);
    assert_eq!(no_routes, 0, "something tried to reach an address outside the lab\n{}", dump(&relay));
    // the client's, the DSN's to the lab MX, and (Sendmail) an IDENT probe to the client
    assert!((1..=3).contains(&opens), "{opens} TCP connections opened in the lab\n{}", dump(&relay));
    eprintln!("TCP connections opened in the lab: {opens}; DNS: {:?}", lab.dns.queries());
    relay.stop().await;
    lab.down().await;
}

/// The MX is down: the message is deferred and listed in the queue with the
/// reason; the MX comes up, a queue run delivers it, the queue is empty.
async fn deferred_then_delivered_by_a_queue_run<F: Flavour>() {
    prerequisites(F::default().name());
    let mut lab = Lab::up().await;
    let sink = std::mem::replace(&mut lab.sink, {
        // a placeholder sink on another lab address; the real MX (192.0.2.10) is down for now
        lab.ns.add_address(ip("192.0.2.11")).unwrap();
        start_sink(&lab.ns, "192.0.2.11", "spare").await
    });
    sink.shutdown().await;
    let relay: RealRelay<F> = lab.relay(NativeConfig::Rendered).await;

    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(c, "spoof.example.com", "Im@lying.com", &["john@sysiphus.com"], "Subject: later\n\nlater\n").await;
    assert!(r.iter().all(|x| x.code == 250), "{r:?}\n{}", dump(&relay));
    assert!(relay.settle(Duration::from_secs(30)).await, "did not settle\n{}", dump(&relay));
    let q = relay.queue();
    assert_eq!(q.len(), 1, "one deferred message: {q:?}\n{}", dump(&relay));
    assert!(q[0].last_error.is_some(), "{q:?}");
    assert!(q[0].recipients.iter().any(|r| r.contains("john@sysiphus.com")), "{q:?}");
    assert!(relay.events().iter().any(|e| e.kind == EventKind::Deferred), "{}", dump(&relay));

    lab.sink = start_sink(&lab.ns, MX, "internal.sysiphus.com").await;
    let mut delivered = false;
    for _ in 0..5 {
        relay.queue_run().await.unwrap_or_else(|e| panic!("queue run: {e}\n{}", dump(&relay)));
        relay.settle(Duration::from_secs(15)).await;
        if !lab.sink.messages().is_empty() && relay.queue().is_empty() {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(delivered, "delivered after a queue run: queue {:?}\n{}", relay.queue(), dump(&relay));
    assert!(relay.events().iter().any(|e| e.kind == EventKind::Delivered), "{}", dump(&relay));
    relay.stop().await;
    lab.down().await;
}

/// A course-style `sendmail.mc` (includes `../m4/cf.m4`, `OSTYPE(linux)`),
/// given whole, is compiled with m4 and run.
const COURSE_MC: &str = "divert(-1)
# external relay, as in the course's exercise
divert(0)dnl
include(`../m4/cf.m4')
VERSIONID(`course external relay')
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `external.sysiphus.com')dnl
define(`confMAX_HOP', `50')dnl
define(`confSMTP_LOGIN_MSG', `$j Sendmail $v/$Z; $b (course relay)')dnl
define(`confPRIVACY_FLAGS', `goaway')dnl
FEATURE(`no_default_msa')dnl
MAILER(`smtp')dnl
";

/// Postfix takes a `main.cf` snippet from the scenario.
async fn postfix_snippet() {
    prerequisites("postfix");
    let lab = Lab::up().await;
    let relay: RealRelay<Postfix> =
        lab.relay(NativeConfig::Snippet("smtpd_banner = $myhostname ESMTP relaylab-snippet".into())).await;
    let mut c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let g = c.read_reply().await.unwrap();
    assert!(g.text().contains("relaylab-snippet"), "{g}");
    c.quit().await;
    relay.stop().await;
    lab.down().await;
}

/// Sendmail runs [`COURSE_MC`] given whole, with relay-domains from the profile.
async fn sendmail_course_mc() {
    prerequisites("sendmail");
    let lab = Lab::up().await;
    let relay: RealRelay<Sendmail> = lab.relay(NativeConfig::Whole(COURSE_MC.into())).await;
    let cf = String::from_utf8(relay.root().read_file("/etc/mail/sendmail.cf").unwrap()).unwrap();
    assert!(cf.contains("O MaxHopCount=50"), "compiled from the .mc");
    assert!(cf.contains("Addr=192.0.2.25"), "placed on the lab address");
    let mut c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let g = c.read_reply().await.unwrap();
    assert!(g.text().contains("(course relay)"), "{g}");
    c.quit().await;
    // relay-domains comes from the profile: the relay refuses outsiders, takes sysiphus.com
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(
        c,
        "spoof.example.com",
        "Im@lying.com",
        &["victim@elsewhere.example", "john@sysiphus.com"],
        "Subject: x\n\nx\n",
    )
    .await;
    assert!(r[1].text().contains("Relaying denied"), "{r:?}\n{}", dump(&relay));
    assert_eq!(r[2].code, 250, "{r:?}");
    assert!(relay.settle(Duration::from_secs(30)).await);
    assert_eq!(lab.sink.messages().len(), 1, "{}", dump(&relay));
    relay.stop().await;
    lab.down().await;
}

/// The profile's access map (the relay-policy fields) reaches real Sendmail:
/// `From:lying.com REJECT` refuses the sender.
async fn sendmail_access_map() {
    prerequisites("sendmail");
    let lab = Lab::up().await;
    let profile: RelayProfile = serde_yaml::from_str(
        "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com, 10.1.1]\naccess: [\"From:lying.com REJECT\"]\n",
    )
    .unwrap();
    let relay: RealRelay<Sendmail> = lab.relay_with(profile, NativeConfig::Rendered).await;
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(c, "spoof.example.com", "Im@lying.com", &["john@sysiphus.com"], "Subject: x\n\nx\n").await;
    assert!(r[0].is_permanent(), "MAIL refused by the access map: {r:?}\n{}", dump(&relay));
    assert!(relay.events().iter().any(|e| e.kind == EventKind::Rejected), "{}", dump(&relay));
    relay.stop().await;
    lab.down().await;
}

/// The common policy subset, rendered from the profile into each MTA's own
/// configuration: a client in the access map is refused at MAIL (after its
/// greeting), a sender in it at MAIL, an outsider may not relay while a client
/// of a trusted network may, a mailertable entry routes to the named host, a
/// virtusertable entry rewrites the recipient, and a message over
/// `max_message_size` gets 552.
const POLICY_PROFILE: &str = "hostname: external.sysiphus.com
relay_domains: [sysiphus.com, 10.1.1]
accept_unresolvable_domains: true
access: |
  Connect:198.51.100.99   REJECT
  From:spam.example       REJECT
  From:grumpy.example     ERROR:5.7.1:550 We do not talk to grumpy.example
mailertable: |
  routed.example   smtp:[internal.sysiphus.com]
virtuser_domains: [virtual.example]
virtusertable: |
  info@virtual.example   john@sysiphus.com
max_message_size: 4000
";

async fn policy_is_rendered<F: Flavour>() {
    prerequisites(F::default().name());
    let lab = Lab::up().await;
    lab.ns.add_address(ip("198.51.100.99")).unwrap();
    let profile: RelayProfile = serde_yaml::from_str(POLICY_PROFILE).unwrap();
    let relay: RealRelay<F> = lab.relay_with(profile, NativeConfig::Rendered).await;

    // a client in the access map: greeted, then refused at MAIL
    let mut c = lab.client("198.51.100.99", relay.smtp_addr()).await;
    let g = c.read_reply().await.unwrap();
    assert_eq!(g.code, 220, "a refused client still gets its greeting: {g}\n{}", dump(&relay));
    let h = c.command("EHLO blocked.example").await.unwrap();
    assert_eq!(h.code, 250, "{h}");
    let m = c.command("MAIL FROM:<a@lying.com>").await.unwrap();
    assert!(m.is_permanent(), "client refused at MAIL: {m}\n{}", dump(&relay));
    c.quit().await;

    // senders in the access map: REJECT and ERROR: at MAIL
    for (sender, text) in [("x@spam.example", ""), ("x@grumpy.example", "We do not talk to grumpy.example")] {
        let c = lab.client(SPAMMER, relay.smtp_addr()).await;
        let r = send(c, "spoof.example.com", sender, &["john@sysiphus.com"], "Subject: x\n\nx\n").await;
        assert_eq!(r[0].code, 550, "sender {sender} refused at MAIL: {r:?}\n{}", dump(&relay));
        assert!(r[0].text().contains(text), "{r:?}");
    }

    // an outsider may not relay; a client of the trusted network may, and the
    // mailertable sends routed.example to [internal.sysiphus.com]
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(c, "spoof.example.com", "Im@lying.com", &["bob@routed.example"], "Subject: x\n\nx\n").await;
    assert!(r[1].is_permanent(), "outsider relaying refused: {r:?}\n{}", dump(&relay));
    let c = lab.client(INSIDER, relay.smtp_addr()).await;
    let r = send(c, "inside.sysiphus.com", "alice@sysiphus.com", &["bob@routed.example"], "Subject: routed\n\nx\n").await;
    assert!(r.iter().all(|x| x.code == 250), "inside client relays: {r:?}\n{}", dump(&relay));

    // the virtusertable rewrites info@virtual.example to john@sysiphus.com
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(c, "spoof.example.com", "Im@lying.com", &["info@virtual.example"], "Subject: virtual\n\nx\n").await;
    assert!(r.iter().all(|x| x.code == 250), "virtual domain accepted: {r:?}\n{}", dump(&relay));

    // over max_message_size: 552
    let big = format!("Subject: big\n\n{}\n", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n".repeat(100));
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(c, "spoof.example.com", "Im@lying.com", &["john@sysiphus.com"], &big).await;
    assert_eq!(r.last().unwrap().code, 552, "size limit: {r:?}\n{}", dump(&relay));

    assert!(relay.settle(Duration::from_secs(30)).await, "did not settle\n{}", dump(&relay));
    let got = lab.sink.messages();
    let rcpts: Vec<Vec<String>> = got.iter().map(|m| m.envelope.rcpt_to.clone()).collect();
    assert!(rcpts.contains(&vec!["bob@routed.example".to_string()]), "routed to internal: {rcpts:?}\n{}", dump(&relay));
    assert!(rcpts.contains(&vec!["john@sysiphus.com".to_string()]), "virtual rewritten: {rcpts:?}\n{}", dump(&relay));
    assert_eq!(got.len(), 2, "{rcpts:?}\n{}", dump(&relay));
    relay.stop().await;
    lab.down().await;
}

/// OpenSMTPD renders `max_message_size` and `promiscuous_relay`.
async fn opensmtpd_size_and_promiscuous() {
    prerequisites("opensmtpd");
    let lab = Lab::up().await;
    let profile: RelayProfile = serde_yaml::from_str(
        "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com]\nmax_message_size: 4000\npromiscuous_relay: true\n",
    )
    .unwrap();
    let relay: RealRelay<OpenSmtpd> = lab.relay_with(profile, NativeConfig::Rendered).await;
    let big = format!("Subject: big\n\n{}\n", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n".repeat(100));
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(c, "spoof.example.com", "Im@lying.com", &["john@sysiphus.com"], &big).await;
    // OpenSMTPD refuses at the end of DATA, as the others, but with its own code:
    // "554 5.3.4 Message too big for system: Transaction failed, message too big"
    assert!(r.last().unwrap().is_permanent(), "size limit: {r:?}\n{}", dump(&relay));
    let mut c = lab.client(SPAMMER, relay.smtp_addr()).await;
    c.read_reply().await.unwrap();
    c.command("EHLO spoof.example.com").await.unwrap();
    c.command("MAIL FROM:<Im@lying.com>").await.unwrap();
    let rc = c.command("RCPT TO:<victim@elsewhere.example>").await.unwrap();
    assert_eq!(rc.code, 250, "promiscuous: {rc}\n{}", dump(&relay));
    c.quit().await;
    relay.stop().await;
    lab.down().await;
}

/// `privacy_flags` rendered: VRFY answers nothing (252 or 5xx), EXPN, ETRN
/// and VERB are refused (ETRN on Exim with 458), DSN, VRFY, EXPN and ETRN are
/// left out of the EHLO list, and MAIL before HELO is refused (`needmailhelo`).
/// Reply codes are the MTA's own (Postfix `502 5.5.1 VRFY command is disabled`
/// where Sendmail says `252`).
async fn privacy_flags_are_rendered<F: Flavour>() {
    prerequisites(F::default().name());
    let lab = Lab::up().await;
    let profile: RelayProfile = serde_yaml::from_str(
        "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com]\n\
         privacy_flags: noexpn,novrfy,noverb,noetrn,noreceipts,needmailhelo\n",
    )
    .unwrap();
    let relay: RealRelay<F> = lab.relay_with(profile, NativeConfig::Rendered).await;
    let mut c = lab.client(SPAMMER, relay.smtp_addr()).await;
    assert_eq!(c.read_reply().await.unwrap().code, 220);
    let m = c.command("MAIL FROM:<Im@lying.com>").await.unwrap();
    assert_eq!(m.code, 503, "needmailhelo: MAIL before HELO refused: {m}\n{}", dump(&relay));
    let h = c.command("EHLO spoof.example.com").await.unwrap();
    assert_eq!(h.code, 250, "{h}");
    let hidden = ["DSN", "ETRN", "VRFY", "EXPN", "VERB"];
    for kw in hidden {
        assert!(!h.lines.iter().any(|l| l.split_whitespace().next() == Some(kw)), "{kw} advertised: {h}");
    }
    // VRFY gives nothing away: Sendmail's novrfy says 252 (cannot VRFY),
    // Exim without acl_smtp_vrfy "252 Administrative prohibition", Postfix
    // with disable_vrfy_command "502 5.5.1 VRFY command is disabled"
    for cmd in ["VRFY root", "VRFY john@sysiphus.com"] {
        let r = c.command(cmd).await.unwrap();
        assert!(r.code == 252 || r.is_permanent(), "{cmd}: {r}\n{}", dump(&relay));
        if F::default().name() == "postfix" {
            assert_eq!(r.code, 502, "{cmd}: {r}");
        }
    }
    // Exim refuses ETRN with "458 Administrative prohibition" (an ETRN ACL
    // cannot make it 5xx); Sendmail and Postfix with 5xx
    for cmd in ["EXPN staff", "ETRN sysiphus.com", "VERB"] {
        let r = c.command(cmd).await.unwrap();
        let refused = r.is_permanent() || (F::default().name() == "exim" && cmd.starts_with("ETRN") && r.code == 458);
        assert!(refused, "{cmd} refused: {r}\n{}", dump(&relay));
    }
    let m = c.command("MAIL FROM:<Im@lying.com>").await.unwrap();
    assert_eq!(m.code, 250, "MAIL after EHLO: {m}");
    c.quit().await;
    relay.stop().await;
    lab.down().await;
}

/// `delay_checks friend`: a refused sender gets `250` at MAIL and the refusal
/// at RCPT, except for the `Spam:` FRIEND recipient; a FRIEND entry for an
/// outside address opens no relaying (the relay decision comes first).
async fn delay_checks_friend_is_rendered<F: Flavour>() {
    prerequisites(F::default().name());
    let lab = Lab::up().await;
    let profile: RelayProfile = serde_yaml::from_str(
        "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com, 10.1.1]\ndelay_checks: friend\naccess: |\n  \
         Spam:abuse@sysiphus.com FRIEND\n  Spam:victim@elsewhere.example FRIEND\n  From:lying.com REJECT\n",
    )
    .unwrap();
    let relay: RealRelay<F> = lab.relay_with(profile, NativeConfig::Rendered).await;
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(
        c,
        "spoof.example.com",
        "Im@lying.com",
        &["john@sysiphus.com", "abuse@sysiphus.com", "victim@elsewhere.example", "root@elsewhere.example"],
        "Subject: friend\n\nx\n",
    )
    .await;
    let d = dump(&relay);
    assert_eq!(r[0].code, 250, "MAIL accepted, the sender check waits for RCPT: {r:?}\n{d}");
    assert!(r[1].is_permanent(), "john gets the sender check: {r:?}\n{d}");
    assert_eq!(r[2].code, 250, "abuse@ is a FRIEND: {r:?}\n{d}");
    assert!(r[3].is_permanent(), "a FRIEND outside address is still relaying: {r:?}\n{d}");
    assert!(r[3].text().contains("elay"), "refused as relaying: {r:?}\n{d}");
    assert!(r[4].is_permanent(), "{r:?}\n{d}");
    assert_eq!(r[5].code, 250, "{r:?}\n{d}");
    assert!(relay.settle(Duration::from_secs(30)).await, "did not settle\n{}", dump(&relay));
    let got: Vec<Vec<String>> = lab.sink.messages().iter().map(|m| m.envelope.rcpt_to.clone()).collect();
    assert_eq!(got, vec![vec!["abuse@sysiphus.com".to_string()]], "{}", dump(&relay));
    // the client of a relay network passes: no delayed check refuses it
    let c = lab.client(INSIDER, relay.smtp_addr()).await;
    let r = send(c, "inside.sysiphus.com", "alice@sysiphus.com", &["john@sysiphus.com"], "Subject: in\n\nx\n").await;
    assert!(r.iter().all(|x| x.code == 250), "{r:?}\n{}", dump(&relay));
    relay.stop().await;
    lab.down().await;
}

/// `delay_checks hater`: only the `Spam:` HATER recipient gets the client and
/// sender checks; the others take the mail of a refused client and sender.
async fn delay_checks_hater_is_rendered<F: Flavour>() {
    prerequisites(F::default().name());
    let lab = Lab::up().await;
    let profile: RelayProfile = serde_yaml::from_str(&format!(
        "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com]\ndelay_checks: hater\naccess: |\n  \
         Spam:hal@sysiphus.com HATER\n  Spam:victim@elsewhere.example HATER\n  Connect:{SPAMMER} REJECT\n"
    ))
    .unwrap();
    let relay: RealRelay<F> = lab.relay_with(profile, NativeConfig::Rendered).await;
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(
        c,
        "spoof.example.com",
        "Im@lying.com",
        &["hal@sysiphus.com", "john@sysiphus.com", "victim@elsewhere.example"],
        "Subject: hater\n\nx\n",
    )
    .await;
    let d = dump(&relay);
    assert_eq!(r[0].code, 250, "MAIL accepted from a refused client: {r:?}\n{d}");
    assert!(r[1].is_permanent(), "hal is a HATER: {r:?}\n{d}");
    assert_eq!(r[2].code, 250, "john takes it: {r:?}\n{d}");
    assert!(r[3].is_permanent() && r[3].text().contains("elay"), "relaying refused: {r:?}\n{d}");
    assert!(relay.settle(Duration::from_secs(30)).await, "did not settle\n{}", dump(&relay));
    let got: Vec<Vec<String>> = lab.sink.messages().iter().map(|m| m.envelope.rcpt_to.clone()).collect();
    assert_eq!(got, vec![vec!["john@sysiphus.com".to_string()]], "{}", dump(&relay));
    relay.stop().await;
    lab.down().await;
}

/// Relay tricks through our relay domain (`%` hack, bang path, quoted local
/// part) from an outsider are refused at RCPT, as Sendmail refuses them
/// (Exim, unless told, took them and passed the local part on unchanged to
/// sysiphus.com's MX), and elsewhere.example's MX (a lab sink of its own)
/// gets nothing.
async fn relay_tricks_are_refused<F: Flavour>() {
    prerequisites(F::default().name());
    let lab = Lab::up().await;
    lab.ns.add_address(ip("192.0.2.12")).unwrap();
    let elsewhere = start_sink(&lab.ns, "192.0.2.12", "mx.elsewhere.example").await;
    let relay: RealRelay<F> = lab.relay(NativeConfig::Rendered).await;
    let tricks = [
        "victim%elsewhere.example@sysiphus.com",
        "elsewhere.example!victim@sysiphus.com",
        "\"victim@elsewhere.example\"@sysiphus.com",
    ];
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(c, "spoof.example.com", "Im@lying.com", &tricks, "Subject: trick\n\nx\n").await;
    assert!(r[1..=tricks.len()].iter().all(|x| x.is_permanent()), "tricks refused at RCPT: {r:?}\n{}", dump(&relay));
    relay.settle(Duration::from_secs(30)).await;
    let inside: Vec<Vec<String>> = lab.sink.messages().iter().map(|m| m.envelope.rcpt_to.clone()).collect();
    eprintln!("sysiphus.com's MX got: {inside:?}");
    assert!(elsewhere.messages().is_empty(), "relayed to elsewhere.example: {:?}\n{}", elsewhere.messages(), dump(&relay));
    for rcpt in inside.iter().flatten() {
        assert!(rcpt.ends_with("@sysiphus.com"), "{rcpt}");
    }
    relay.stop().await;
    elsewhere.shutdown().await;
    lab.down().await;
}

/// OpenSMTPD renders the access map as builtin filters (client and sender
/// refused at MAIL, the longest key deciding), `Connect:` RELAY and `To:`
/// RELAY as relaying, and the mailertable's per-domain entries as relay
/// actions that open no relaying: an outsider's mail for the routed domain
/// is refused, and elsewhere.example's MX gets nothing.
async fn opensmtpd_access_and_mailertable() {
    prerequisites("opensmtpd");
    let lab = Lab::up().await;
    for a in ["198.51.100.99", "198.51.100.9", "198.51.100.77", "192.0.2.12"] {
        lab.ns.add_address(ip(a)).unwrap();
    }
    let elsewhere = start_sink(&lab.ns, "192.0.2.12", "mx.elsewhere.example").await;
    let profile: RelayProfile = serde_yaml::from_str(
        "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com, 10.1.1]\nblacklist_recipients: true\n\
         mailertable: |\n  routed.example smtp:[internal.sysiphus.com]\naccess: |\n  Connect:198.51.100 REJECT\n  \
         Connect:198.51.100.9 OK\n  198.51.100.77 RELAY\n  From:spam.example REJECT\n  \
         From:grumpy.example ERROR:5.7.1:550 We do not talk to grumpy.example\n  From:friend@grumpy.example OK\n  \
         To:old@sysiphus.com REJECT\n",
    )
    .unwrap();
    let relay: RealRelay<OpenSmtpd> = lab.relay_with(profile, NativeConfig::Rendered).await;
    let d = || dump(&relay);

    // a REJECT client: greeted, refused at MAIL
    let mut c = lab.client("198.51.100.99", relay.smtp_addr()).await;
    assert_eq!(c.read_reply().await.unwrap().code, 220);
    assert_eq!(c.command("EHLO blocked.example").await.unwrap().code, 250);
    let m = c.command("MAIL FROM:<a@lying.com>").await.unwrap();
    assert!(m.is_permanent(), "client refused at MAIL: {m}\n{}", d());
    c.quit().await;
    // the OK address inside the refused network passes
    let c = lab.client("198.51.100.9", relay.smtp_addr()).await;
    let r = send(c, "ok.example", "a@lying.com", &["john@sysiphus.com"], "Subject: ok client\n\nx\n").await;
    assert!(r.iter().all(|x| x.code == 250), "OK inside REJECT: {r:?}\n{}", d());

    // senders: REJECT, ERROR: with its text, and a longer OK key
    for (sender, code, text) in
        [("x@spam.example", 550, ""), ("x@grumpy.example", 550, "We do not talk to grumpy.example"), ("friend@grumpy.example", 250, "")]
    {
        let c = lab.client(SPAMMER, relay.smtp_addr()).await;
        let r = send(c, "spoof.example.com", sender, &["john@sysiphus.com"], "Subject: from\n\nx\n").await;
        assert_eq!(r[0].code, code, "sender {sender} at MAIL: {r:?}\n{}", d());
        assert!(r[0].text().contains(text), "{r:?}");
    }

    // To: REJECT under blacklist_recipients
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(c, "spoof.example.com", "Im@lying.com", &["old@sysiphus.com", "john@sysiphus.com"], "Subject: to\n\nx\n").await;
    assert!(r[1].is_permanent() && r[2].code == 250, "To: REJECT: {r:?}\n{}", d());

    // an outsider may relay neither to elsewhere nor to the routed domain
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(c, "spoof.example.com", "Im@lying.com", &["victim@elsewhere.example", "bob@routed.example"], "x\n").await;
    assert!(r[1].is_permanent() && r[2].is_permanent(), "outsider relaying refused: {r:?}\n{}", d());
    // the Connect: RELAY client relays; a relay-network client's routed mail goes to the mailertable's host
    let c = lab.client("198.51.100.77", relay.smtp_addr()).await;
    let r = send(c, "ws.example", "a@lying.com", &["victim@elsewhere.example"], "Subject: relay client\n\nx\n").await;
    assert!(r.iter().all(|x| x.code == 250), "Connect: RELAY relays: {r:?}\n{}", d());
    let c = lab.client(INSIDER, relay.smtp_addr()).await;
    let r = send(c, "inside.sysiphus.com", "alice@sysiphus.com", &["bob@routed.example"], "Subject: routed\n\nx\n").await;
    assert!(r.iter().all(|x| x.code == 250), "inside client relays: {r:?}\n{}", d());

    assert!(relay.settle(Duration::from_secs(30)).await, "did not settle\n{}", d());
    let inside: Vec<Vec<String>> = lab.sink.messages().iter().map(|m| m.envelope.rcpt_to.clone()).collect();
    assert!(inside.contains(&vec!["bob@routed.example".to_string()]), "routed to internal: {inside:?}\n{}", d());
    let outside: Vec<Vec<String>> = elsewhere.messages().iter().map(|m| m.envelope.rcpt_to.clone()).collect();
    assert_eq!(outside, vec![vec!["victim@elsewhere.example".to_string()]], "only the RELAY client's message\n{}", d());
    relay.stop().await;
    elsewhere.shutdown().await;
    lab.down().await;
}

/// OpenSMTPD with `delay_checks: friend`: the sender refused at RCPT, except
/// for the FRIEND recipient; a FRIEND outside address opens no relaying.
async fn opensmtpd_delay_checks_friend() {
    prerequisites("opensmtpd");
    let lab = Lab::up().await;
    let profile: RelayProfile = serde_yaml::from_str(
        "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com, 10.1.1]\ndelay_checks: friend\naccess: |\n  \
         Spam:abuse@sysiphus.com FRIEND\n  Spam:victim@elsewhere.example FRIEND\n  From:lying.com REJECT\n",
    )
    .unwrap();
    let relay: RealRelay<OpenSmtpd> = lab.relay_with(profile, NativeConfig::Rendered).await;
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(
        c,
        "spoof.example.com",
        "Im@lying.com",
        &["john@sysiphus.com", "abuse@sysiphus.com", "victim@elsewhere.example"],
        "Subject: friend\n\nx\n",
    )
    .await;
    let d = dump(&relay);
    assert_eq!(r[0].code, 250, "MAIL accepted: {r:?}\n{d}");
    assert!(r[1].is_permanent(), "john gets the sender check: {r:?}\n{d}");
    assert_eq!(r[2].code, 250, "abuse@ is a FRIEND: {r:?}\n{d}");
    assert!(r[3].is_permanent(), "a FRIEND outside address is still relaying: {r:?}\n{d}");
    assert!(relay.settle(Duration::from_secs(30)).await, "did not settle\n{}", dump(&relay));
    let got: Vec<Vec<String>> = lab.sink.messages().iter().map(|m| m.envelope.rcpt_to.clone()).collect();
    assert_eq!(got, vec![vec!["abuse@sysiphus.com".to_string()]], "{}", dump(&relay));
    relay.stop().await;
    lab.down().await;
}

/// OpenSMTPD's relay-trick rule: an outsider's `%`/`!` local part is refused
/// even for a FRIEND recipient and under a `To:` OK (both `bypass` the access
/// filters), a hidden host of ours is accepted, and a relay-network client
/// may still use the tricks.
async fn opensmtpd_relay_tricks_rule() {
    prerequisites("opensmtpd");
    let lab = Lab::up().await;
    lab.ns.add_address(ip("192.0.2.12")).unwrap();
    let elsewhere = start_sink(&lab.ns, "192.0.2.12", "mx.elsewhere.example").await;
    let profile: RelayProfile = serde_yaml::from_str(
        "hostname: external.sysiphus.com\nrelay_domains: [sysiphus.com, 10.1.1]\nblacklist_recipients: true\n\
         delay_checks: friend\naccess: |\n  Spam:victim%elsewhere.example@sysiphus.com FRIEND\n  To:sysiphus.com OK\n  \
         From:lying.com REJECT\n",
    )
    .unwrap();
    let relay: RealRelay<OpenSmtpd> = lab.relay_with(profile, NativeConfig::Rendered).await;
    let d = || dump(&relay);
    let rcpts =
        ["victim%elsewhere.example@sysiphus.com", "elsewhere.example!victim@external.sysiphus.com", "john%eng.sysiphus.com@sysiphus.com"];
    let c = lab.client(SPAMMER, relay.smtp_addr()).await;
    let r = send(c, "spoof.example.com", "a@example.net", &rcpts, "Subject: outsider\n\nx\n").await;
    assert!(r[1].is_permanent() && r[2].is_permanent(), "tricks refused: {r:?}\n{}", d());
    assert_eq!(r[3].code, 250, "a hidden host of ours: {r:?}\n{}", d());
    let c = lab.client(INSIDER, relay.smtp_addr()).await;
    let r = send(c, "inside.sysiphus.com", "alice@sysiphus.com", &rcpts[..1], "Subject: insider\n\nx\n").await;
    assert!(r.iter().all(|x| x.code == 250), "a relay client may: {r:?}\n{}", d());
    assert!(relay.settle(Duration::from_secs(30)).await, "did not settle\n{}", d());
    let mut got: Vec<String> = lab.sink.messages().iter().flat_map(|m| m.envelope.rcpt_to.clone()).collect();
    got.sort();
    assert_eq!(got, vec![rcpts[2].to_string(), rcpts[0].to_string()], "{}", d());
    assert!(elsewhere.messages().is_empty(), "relayed to elsewhere.example\n{}", d());
    relay.stop().await;
    elsewhere.shutdown().await;
    lab.down().await;
}

/// Declares the tests that need root and the MTAs, each awaiting its scenario
/// on a two-thread runtime: `#[ignore]`d in a plain `cargo test` (see the
/// module docs).
macro_rules! real_mta_tests {
    ($($name:ident => $scenario:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[ignore = "needs root and the MTAs from relay-under-test/mta/install.sh; run with --ignored"]
        async fn $name() {
            $scenario.await;
        }
    )*};
}

real_mta_tests! {
    postfix_relays_for_its_domain_and_refuses_outsiders =>
        relays_for_its_domain_and_refuses_outsiders::<Postfix>(NativeConfig::Rendered);
    sendmail_relays_for_its_domain_and_refuses_outsiders =>
        relays_for_its_domain_and_refuses_outsiders::<Sendmail>(NativeConfig::Rendered);
    exim_relays_for_its_domain_and_refuses_outsiders =>
        relays_for_its_domain_and_refuses_outsiders::<Exim>(NativeConfig::Rendered);
    opensmtpd_relays_for_its_domain_and_refuses_outsiders =>
        relays_for_its_domain_and_refuses_outsiders::<OpenSmtpd>(NativeConfig::Rendered);

    postfix_unknown_domain_gets_nxdomain_and_no_outside_connection =>
        unknown_domain_gets_nxdomain_and_no_outside_connection::<Postfix>();
    sendmail_unknown_domain_gets_nxdomain_and_no_outside_connection =>
        unknown_domain_gets_nxdomain_and_no_outside_connection::<Sendmail>();
    exim_unknown_domain_gets_nxdomain_and_no_outside_connection =>
        unknown_domain_gets_nxdomain_and_no_outside_connection::<Exim>();
    opensmtpd_unknown_domain_gets_nxdomain_and_no_outside_connection =>
        unknown_domain_gets_nxdomain_and_no_outside_connection::<OpenSmtpd>();

    postfix_deferred_then_delivered_by_a_queue_run => deferred_then_delivered_by_a_queue_run::<Postfix>();
    sendmail_deferred_then_delivered_by_a_queue_run => deferred_then_delivered_by_a_queue_run::<Sendmail>();
    exim_deferred_then_delivered_by_a_queue_run => deferred_then_delivered_by_a_queue_run::<Exim>();
    opensmtpd_deferred_then_delivered_by_a_queue_run => deferred_then_delivered_by_a_queue_run::<OpenSmtpd>();

    postfix_takes_a_native_snippet => postfix_snippet();
    sendmail_builds_from_a_course_style_mc => sendmail_course_mc();
    sendmail_renders_the_profiles_access_map => sendmail_access_map();

    postfix_renders_the_policy_subset => policy_is_rendered::<Postfix>();
    sendmail_renders_the_policy_subset => policy_is_rendered::<Sendmail>();
    exim_renders_the_policy_subset => policy_is_rendered::<Exim>();
    opensmtpd_renders_size_and_promiscuous_relay => opensmtpd_size_and_promiscuous();
    opensmtpd_renders_access_and_mailertable => opensmtpd_access_and_mailertable();
    opensmtpd_renders_delay_checks_friend => opensmtpd_delay_checks_friend();

    postfix_refuses_relay_tricks => relay_tricks_are_refused::<Postfix>();
    exim_refuses_relay_tricks => relay_tricks_are_refused::<Exim>();
    opensmtpd_refuses_relay_tricks => relay_tricks_are_refused::<OpenSmtpd>();
    opensmtpd_renders_the_relay_tricks_rule => opensmtpd_relay_tricks_rule();
    postfix_renders_privacy_flags => privacy_flags_are_rendered::<Postfix>();
    exim_renders_privacy_flags => privacy_flags_are_rendered::<Exim>();
    postfix_renders_delay_checks_friend => delay_checks_friend_is_rendered::<Postfix>();
    exim_renders_delay_checks_friend => delay_checks_friend_is_rendered::<Exim>();
    postfix_renders_delay_checks_hater => delay_checks_hater_is_rendered::<Postfix>();
    exim_renders_delay_checks_hater => delay_checks_hater_is_rendered::<Exim>();
}

/// Without root, creating a namespace says what to do (runs everywhere).
#[test]
fn without_root_the_error_says_what_to_do() {
    if netns::is_root() {
        return;
    }
    let e = LabNamespace::create().unwrap_err();
    assert_eq!(e.to_string(), "the netns backend needs root: run as root or use the loopback backend");
}
