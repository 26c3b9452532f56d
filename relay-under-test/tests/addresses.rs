//! Address knobs over real sockets: virtusertable, aliases and local
//! delivery, masquerading, and the headers that go with them (spec §3.5,
//! §3.8, §5.5, §5.6, §10).
//!
//! Lab clients: 203.0.113.66 (outside, PTR real.dom.com) and 203.0.113.9
//! (inside). Lab hosts 192.0.2.10/20 are MX sinks.

mod routing_support;
mod support;

use pretty_assertions::assert_eq;
use relay_under_test::{RelayProfile, RelayUnderTest};
use routing_support::*;
use support::*;

/// 19 octets as logged, so one recipient makes `pri=30019`.
const MSG: &str = "Subject: addr1\n\nhi\n";

fn sysiphus_mx() -> Vec<Rec> {
    vec![mx("sysiphus.com", 10, "internal.sysiphus.com"), a("internal.sysiphus.com", "192.0.2.10")]
}

#[tokio::test]
async fn virtusertable_specific_catch_all_and_nested_change_only_the_envelope() {
    let mut p = external_profile();
    p.virtusertable = vec![
        "@fictional.com          bob@sysiphus.com".into(),
        "abuse@virtu.com         postmaster@sysiphus.com".into(),
        "@virtu.com              alice@sysiphus.com".into(),
        "support@virtu.com       support@responder.com".into(),
        "@responder.com          resp@sysiphus.com".into(),
    ];
    p.virtuser_domains = vec!["fictional.com".into(), "virtu.com".into(), "responder.com".into()];
    let (lab, sinks) = lab(p, sysiphus_mx(), &[(10, "internal.sysiphus.com")]).await;
    let rcpts = ["<x@fictional.com>", "<abuse@virtu.com>", "<y@virtu.com>", "<support@virtu.com>"];
    let msg = "To: x@fictional.com\nSubject: v\n\nhi\n";
    let (replies, done) = send(&lab, 66, "<alice@example.net>", &rcpts, msg).await;
    assert!(replies.iter().all(|r| r.code == 250), "{replies:?}");
    let qid = qid(&done);
    let got = &sinks[0].messages()[0];
    assert_eq!(
        got.rcpts,
        ["<bob@sysiphus.com>", "<postmaster@sysiphus.com>", "<alice@sysiphus.com>", "<resp@sysiphus.com>"]
    );
    assert!(got.data.contains("\r\nTo: x@fictional.com\r\n"), "headers keep the virtual address: {}", got.data);
    // One transaction, logged with the addresses as received (spec §6.3).
    assert_eq!(
        to_lines(&lab, &qid),
        [format!(
            "to=<x@fictional.com>,<abuse@virtu.com>,<y@virtu.com>,<support@virtu.com>, delay=00:00:00, \
             xdelay=00:00:00, mailer=esmtp, pri={}, relay=internal.sysiphus.com. [192.0.2.10], dsn=2.0.0, \
             stat=Sent (S0001 Message accepted for delivery)",
            msg.len() + 4 * 30_000
        )]
    );
    lab.relay.stop().await;
}

#[tokio::test]
async fn virtusertable_percent_detail_error_entries_and_the_domain_file() {
    let mut p = external_profile();
    p.virtusertable = vec![
        "@foo.org %1@sysiphus.com".into(),
        "@plus.org %1%3@sysiphus.com".into(),
        "joe@bar.com error:nouser 550 No such user here".into(),
        "@virtual.com marketing@sysiphus.com".into(),
    ];
    // virtual.com is missing from the domain file: its entry is never used.
    p.virtuser_domains = vec!["foo.org".into(), "plus.org".into(), "bar.com".into()];
    let (lab, sinks) = lab(p, sysiphus_mx(), &[(10, "internal.sysiphus.com")]).await;
    let rcpts = ["<someone@foo.org>", "<hal+work@plus.org>", "<joe@bar.com>", "<u@virtual.com>"];
    let (replies, done) = send(&lab, 66, "<alice@example.net>", &rcpts, MSG).await;
    assert_eq!(
        firsts(&replies),
        [
            "250 2.1.5 <someone@foo.org>... Recipient ok",
            "250 2.1.5 <hal+work@plus.org>... Recipient ok",
            "550 5.1.1 <joe@bar.com>... No such user here",
            "550 5.7.1 <u@virtual.com>... Relaying denied",
        ]
    );
    qid(&done);
    assert_eq!(sinks[0].messages()[0].rcpts, ["<someone@sysiphus.com>", "<hal+work@sysiphus.com>"]);
    lab.relay.stop().await;
}

fn list_profile() -> RelayProfile {
    let mut p = external_profile();
    p.local_users = vec!["hal".into()];
    p.aliases = "staff: hal, laura@deer-run.com, staff-archive\n\
                 staff-archive: /var/archives/staff\n\
                 customers: :include: /lists/customers\n\
                 owner-customers: boss@sysiphus.com\n\
                 ping: pong\n\
                 pong: ping"
        .lines()
        .map(str::to_string)
        .collect();
    p.include_files.insert("/lists/customers".into(), "bob@deer-run.com\ncarol@deer-run.com # since 2005\n".into());
    p
}

fn deer_run_mx() -> Vec<Rec> {
    vec![mx("deer-run.com", 10, "bullwinkle.deer-run.com"), a("bullwinkle.deer-run.com", "192.0.2.20")]
}

#[tokio::test]
async fn aliases_expand_to_mailboxes_files_and_remote_addresses() {
    let (lab, sinks) = lab(list_profile(), deer_run_mx(), &[(20, "bullwinkle.deer-run.com")]).await;
    let (replies, done) = send(&lab, 66, "<alice@example.net>", &["<staff@external.sysiphus.com>"], MSG).await;
    assert_eq!(firsts(&replies), ["250 2.1.5 <staff@external.sysiphus.com>... Recipient ok"]);
    let qid = qid(&done);
    // to= names each target as the alias wrote it (spec §6.3, §10.1).
    assert_eq!(
        to_lines(&lab, &qid),
        [
            "to=hal, delay=00:00:00, xdelay=00:00:00, mailer=local, pri=30019, dsn=2.0.0, stat=Sent",
            "to=laura@deer-run.com, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30019, \
             relay=bullwinkle.deer-run.com. [192.0.2.20], dsn=2.0.0, stat=Sent (S0001 Message accepted for delivery)",
            "to=/var/archives/staff, ctladdr=staff-archive (47/0), delay=00:00:00, xdelay=00:00:00, \
             mailer=*file*, pri=30019, dsn=2.0.0, stat=Sent",
        ]
    );
    let mail = &lab.relay.mailboxes().messages("hal")[0];
    let text = String::from_utf8_lossy(mail);
    assert!(text.starts_with("Return-Path: <alice@example.net>\r\nReceived: from client.example"), "{text}");
    assert!(text.contains(&format!("id {qid}\r\n\tfor <staff@external.sysiphus.com>;")), "{text}");
    assert_eq!(lab.relay.mailboxes().messages("/var/archives/staff").len(), 1);
    let remote = &sinks[0].messages()[0];
    assert_eq!(
        (remote.mail_from.as_str(), remote.rcpts.as_slice()),
        ("<alice@example.net> SIZE=19", &["<laura@deer-run.com>".to_string()][..])
    );
    assert!(lab.relay.queue().is_empty());
    lab.relay.stop().await;
}

#[tokio::test]
async fn include_files_owner_aliases_loops_and_unknown_users() {
    let (lab, sinks) = lab(list_profile(), deer_run_mx(), &[(20, "bullwinkle.deer-run.com")]).await;
    let rcpts = ["<customers@external.sysiphus.com>", "<ping@external.sysiphus.com>", "<nobody@external.sysiphus.com>"];
    let (replies, done) = send(&lab, 66, "<alice@example.net>", &rcpts, MSG).await;
    assert_eq!(
        firsts(&replies),
        [
            "250 2.1.5 <customers@external.sysiphus.com>... Recipient ok",
            "554 5.4.6 <ping@external.sysiphus.com>... aliasing/forwarding loop for ping broken",
            "550 5.1.1 <nobody@external.sysiphus.com>... User unknown",
        ]
    );
    let qid = qid(&done);
    // The list's copies go out with owner-customers as envelope sender.
    let got = &sinks[0].messages()[0];
    assert_eq!(got.mail_from, "<boss@sysiphus.com> SIZE=19");
    assert_eq!(got.rcpts, ["<bob@deer-run.com>", "<carol@deer-run.com>"]);
    assert_eq!(
        to_lines(&lab, &qid),
        ["to=bob@deer-run.com,carol@deer-run.com, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30019, \
          relay=bullwinkle.deer-run.com. [192.0.2.20], dsn=2.0.0, stat=Sent (S0001 Message accepted for delivery)"]
    );
    let log = lab.relay.log_lines();
    assert!(log
        .iter()
        .any(|l| l.ends_with(": <ping@external.sysiphus.com>... aliasing/forwarding loop for ping broken")));
    assert!(log.iter().any(|l| l.ends_with(": <nobody@external.sysiphus.com>... User unknown")));
    lab.relay.stop().await;
}

#[tokio::test]
async fn each_alias_level_counts_as_a_hop() {
    let mut p = list_profile();
    p.max_hop_count = 3;
    p.aliases = vec!["a: b".into(), "b: c".into(), "c: hal".into()];
    let (lab, _sinks) = lab(p, vec![ptr("203.0.113.66", "real.dom.com")], &[]).await;
    // Three alias levels and no Received: 3 hops, the maximum.
    let (_, done) = send(&lab, 66, "<alice@example.net>", &["<a@external.sysiphus.com>"], MSG).await;
    qid(&done);
    assert_eq!(lab.relay.mailboxes().messages("hal").len(), 1);
    // One Received more: 4 > 3.
    let msg = format!("Received: from x by y; Wed, 4 Jan 2006 22:00:00 -0800\n{MSG}");
    let (_, done) = send(&lab, 66, "<alice@example.net>", &["<a@external.sysiphus.com>"], &msg).await;
    assert_eq!(
        done.unwrap().first_line(),
        "554 5.4.6 Too many hops 4 (3 max): from <alice@example.net> via real.dom.com, to <a@external.sysiphus.com>"
    );
    assert_eq!(lab.relay.mailboxes().messages("hal").len(), 1);
    lab.relay.stop().await;
}

fn internal_profile(envelope: bool) -> RelayProfile {
    let mut p = RelayProfile::new("internal.sysiphus.com");
    p.relay_domains = vec!["sysiphus.com".into(), "203.0.113".into()];
    p.mailertable = vec!["sysiphus.com smtp:exchange.sysiphus.com".into()];
    p.accept_unqualified_senders = true;
    p.masquerade_as = Some("sysiphus.com".into());
    p.masquerade_envelope = envelope;
    p.allmasquerade = true;
    p.exposed_users = vec!["root".into()];
    p
}

const BARE: &str = "From: eve\nTo: Alice <alice>\nCc: root, hal@deer-run.com\nSubject: lunch\n\nhi\n";

#[tokio::test]
async fn unqualified_names_are_qualified_and_masqueraded_with_the_envelope() {
    let (lab, sinks) =
        lab(internal_profile(true), vec![a("exchange.sysiphus.com", "192.0.2.10")], &[(10, "exchange.sysiphus.com")])
            .await;
    let (replies, done) = send(&lab, 9, "<eve>", &["<alice>"], BARE).await;
    assert_eq!(firsts(&replies), ["250 2.1.5 <alice>... Recipient ok"]);
    let qid = qid(&done);
    let got = &sinks[0].messages()[0];
    assert_eq!(got.mail_from, format!("<eve@sysiphus.com> SIZE={}", BARE.len()));
    assert_eq!(got.rcpts, ["<alice@sysiphus.com>"]);
    assert!(
        got.data.contains(
            "\r\nFrom: eve@sysiphus.com\r\nTo: Alice <alice@sysiphus.com>\r\nCc: root@internal.sysiphus.com, hal@deer-run.com\r\n"
        ),
        "{}",
        got.data
    );
    // The log keeps what the client typed.
    let log = lab.relay.log_lines();
    assert!(log.iter().any(|l| l.contains(&format!("{qid}: from=<eve>, size="))), "{log:#?}");
    assert!(to_lines(&lab, &qid)[0].starts_with("to=<alice>, delay=00:00:00, xdelay=00:00:00, mailer=smtp,"));
    lab.relay.stop().await;
}

#[tokio::test]
async fn without_masquerade_envelope_only_headers_are_masqueraded() {
    let (lab, sinks) =
        lab(internal_profile(false), vec![a("exchange.sysiphus.com", "192.0.2.10")], &[(10, "exchange.sysiphus.com")])
            .await;
    let (_, done) = send(&lab, 9, "<eve>", &["<bob@sysiphus.com>"], BARE).await;
    qid(&done);
    let got = &sinks[0].messages()[0];
    assert_eq!(got.mail_from, format!("<eve@internal.sysiphus.com> SIZE={}", BARE.len()));
    assert!(got.data.contains("\r\nFrom: eve@sysiphus.com\r\n"), "{}", got.data);
    // An EXPOSED_USER keeps the relay's own name even in the envelope.
    let (lab2, sinks2) = routing_support::lab(
        internal_profile(true),
        vec![a("exchange.sysiphus.com", "192.0.2.10")],
        &[(10, "exchange.sysiphus.com")],
    )
    .await;
    let (_, done) = send(&lab2, 9, "<root>", &["<bob@sysiphus.com>"], MSG).await;
    qid(&done);
    assert_eq!(sinks2[0].messages()[0].mail_from, "<root@internal.sysiphus.com> SIZE=19");
    lab.relay.stop().await;
    lab2.relay.stop().await;
}

#[tokio::test]
async fn precedence_sets_class_and_priority() {
    let (lab, _sinks) = lab(external_profile(), sysiphus_mx(), &[(10, "internal.sysiphus.com")]).await;
    let msg = "Precedence: bulk\nSubject: news\n\nhi\n";
    let (_, done) = send(&lab, 66, "<alice@example.net>", &["<john@sysiphus.com>"], msg).await;
    let qid = qid(&done);
    let log = lab.relay.log_lines();
    let size = msg.len();
    assert!(
        log.iter().any(|l| l.contains(&format!("{qid}: from=<alice@example.net>, size={size}, class=-60, nrcpts=1,"))),
        "{log:#?}"
    );
    // pri = size - (-60 * 1800) + 1 * 30000 (spec §6.3).
    let pri = size + 108_000 + 30_000;
    assert!(to_lines(&lab, &qid)[0].contains(&format!(", mailer=esmtp, pri={pri}, ")), "{:?}", to_lines(&lab, &qid));
    lab.relay.stop().await;
}
