//! Identity over real sockets: the greeting (`smtp_login_msg`), the EHLO
//! keywords and the information commands (`privacy_flags`), and the
//! session-end log lines (spec §2.2–2.4, §6.4).

mod support;

use pretty_assertions::assert_eq;
use relay_under_test::{RelayProfile, RelayUnderTest};
use support::*;

#[tokio::test]
async fn login_message_greets_mailer_esmtp_ready() {
    // [C:Ex 3.1.3]: confSMTP_LOGIN_MSG `mailer ready`; ESMTP is inserted, the version is gone.
    let lab = external_lab(|p| p.smtp_login_msg = Some("mailer ready".into())).await;
    let mut c = lab.client(66).await;
    assert_eq!(c.read_reply().await.unwrap().text(), "220 mailer ESMTP ready");
    assert_eq!(c.quit().await.unwrap().text(), "221 2.0.0 external.sysiphus.com closing connection");
    // A template with macros and a second line.
    let lab = lab_with_template("$j at your service\nno UCE").await;
    let mut c = lab.client(66).await;
    assert_eq!(c.read_reply().await.unwrap().text(), "220 external.sysiphus.com ESMTP at your service\n220 no UCE");
}

async fn lab_with_template(t: &str) -> Lab {
    external_lab(|p| p.smtp_login_msg = Some(t.into())).await
}

#[tokio::test]
async fn external_privacy_flags_refuse_and_hide_the_commands() {
    // external.mc: noexpn,novrfy,noverb,noetrn,noreceipts (the support profile).
    let lab = external_lab(|_| {}).await;
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    assert_eq!(
        talk(&mut c, &["EHLO spoof.example.com", "EXPN staff", "VRFY root", "VERB", "ETRN sysiphus.com"]).await,
        [
            "250 external.sysiphus.com Hello real.dom.com [203.0.113.66], pleased to meet you\n\
             250 ENHANCEDSTATUSCODES\n250 PIPELINING\n250 8BITMIME\n250 SIZE\n250 HELP",
            "502 5.7.0 Sorry, we do not allow this operation",
            "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)",
            "502 5.7.0 Verbose unavailable",
            "502 5.7.0 Sorry, we do not allow this operation",
        ]
    );
    c.quit().await;
    assert_eq!(
        log_of(&lab),
        [
            "NOQUEUE: real.dom.com [203.0.113.66]: EXPN staff [rejected]",
            "NOQUEUE: real.dom.com [203.0.113.66]: VRFY root [rejected]",
            "NOQUEUE: real.dom.com [203.0.113.66]: ETRN sysiphus.com [rejected]",
        ]
    );
}

#[tokio::test]
async fn default_privacy_offers_and_answers_every_command() {
    let lab = external_lab(|p| p.privacy_flags = vec!["authwarnings".into()]).await;
    let mut c = lab.client(67).await;
    c.read_reply().await.unwrap();
    assert_eq!(
        talk(&mut c, &["EHLO x.example", "VERB", "VRFY <john@deer-run.com>", "EXPN postmaster", "ETRN sysiphus.com"])
            .await,
        [
            "250 external.sysiphus.com Hello [203.0.113.67], pleased to meet you\n250 ENHANCEDSTATUSCODES\n\
             250 PIPELINING\n250 EXPN\n250 VERB\n250 8BITMIME\n250 SIZE\n250 DSN\n250 ETRN\n250 HELP",
            "250 2.0.0 Verbose mode",
            "252 2.1.5 Cannot VRFY user; try RCPT to attempt delivery (or try finger)",
            "550 5.1.1 postmaster... User unknown",
            "250 2.0.0 Queuing for node sysiphus.com started",
        ]
    );
    c.quit().await;
    assert_eq!(
        log_of(&lab),
        [
            "NOQUEUE: [203.0.113.67]: VRFY <john@deer-run.com>",
            "NOQUEUE: [203.0.113.67]: EXPN postmaster",
            "NOQUEUE: [203.0.113.67]: ETRN sysiphus.com",
        ]
    );
}

#[tokio::test]
async fn goaway_is_every_restriction_at_once() {
    let lab = external_lab(|p| p.privacy_flags = vec!["goaway".into()]).await;
    let mut c = lab.client(67).await;
    c.read_reply().await.unwrap();
    assert_eq!(
        talk(&mut c, &["VRFY root", "EXPN root", "EHLO x.example", "VERB"]).await,
        [
            "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)",
            "502 5.7.0 Sorry, we do not allow this operation",
            "250 external.sysiphus.com Hello [203.0.113.67], pleased to meet you\n250 ENHANCEDSTATUSCODES\n\
             250 PIPELINING\n250 8BITMIME\n250 SIZE\n250 HELP",
            "502 5.7.0 Verbose unavailable",
        ]
    );
    // needvrfyhelo alone: VRFY is allowed, but only after HELO.
    let lab = lab_flags("needvrfyhelo").await;
    let mut c = lab.client(67).await;
    c.read_reply().await.unwrap();
    assert_eq!(
        talk(&mut c, &["VRFY root", "HELO x.example", "VRFY root"]).await,
        [
            "503 5.0.0 I demand that you introduce yourself first",
            "250 external.sysiphus.com Hello [203.0.113.67], pleased to meet you",
            "550 5.1.1 root... User unknown",
        ]
    );
}

async fn lab_flags(flags: &str) -> Lab {
    external_lab(|p| p.privacy_flags = vec![flags.into()]).await
}

#[tokio::test]
async fn session_end_lines_did_not_issue_and_lost_input() {
    let lab = external_lab(|_| {}).await;
    // HELO and QUIT only.
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    c.command("HELO x").await.unwrap();
    c.quit().await;
    // Gone in the middle of a transaction.
    let mut c = lab.client(67).await;
    c.read_reply().await.unwrap();
    talk(&mut c, &["HELO y", "MAIL FROM:<a@b.example>", "RCPT TO:<john@sysiphus.com>"]).await;
    drop(c);
    let log = wait_for_log(&lab, "lost input").await;
    // Gone outside a transaction: only "did not issue" (LogLevel 9).
    let mut c = lab.client(9).await;
    c.read_reply().await.unwrap();
    c.command("EHLO z").await.unwrap();
    drop(c);
    let after = wait_for_log(&lab, "[203.0.113.9] did not issue").await;
    assert_eq!(
        log,
        [
            "NOQUEUE: real.dom.com [203.0.113.66] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA",
            "QID: lost input channel from [203.0.113.67] to MTA after rcpt",
        ]
    );
    assert_eq!(after[2..], ["NOQUEUE: [203.0.113.9] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA"]);
    // A refused VRFY counts as trying: no "did not issue".
    let mut c = lab.client(66).await;
    c.read_reply().await.unwrap();
    c.command("VRFY root").await.unwrap();
    c.quit().await;
    assert_eq!(log_of(&lab)[3..], ["NOQUEUE: real.dom.com [203.0.113.66]: VRFY root [rejected]"]);
    lab.relay.stop().await;
}

#[tokio::test]
async fn bad_identity_values_stop_the_start() {
    let net = subnet();
    for (f, want) in [
        (
            Box::new(|p: &mut RelayProfile| p.privacy_flags = vec!["noexpn,novrfy,noverbs".into()])
                as Box<dyn Fn(&mut RelayProfile)>,
            "relay profile: privacy_flags entry \"noverbs\" is not a privacy flag; valid: public,",
        ),
        (
            Box::new(|p: &mut RelayProfile| p.smtp_login_msg = Some("$j on $q".into())),
            "relay profile: smtp_login_msg \"$j on $q\": unknown macro $q; a greeting may use $j",
        ),
    ] {
        let mut p = external_profile();
        f(&mut p);
        let e = relay_under_test::BuiltinRelay::start(p, refusal_network(net)).await.unwrap_err().to_string();
        assert!(e.starts_with(want), "{e}");
    }
}
