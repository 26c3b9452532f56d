//! `relaylab explain`: plain-words explanations of library scenarios.

use std::process::Command;

fn explain(arg: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relaylab"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["explain", arg])
        .output()
        .expect("run relaylab");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn relaying_denied_by_name() {
    let (code, out, _) = explain("open-relay/relaying-denied");
    assert_eq!(code, 0);
    for s in [
        "relay_domains: sysiphus.com",
        "the host spammer (203.0.113.66, PTR dialup-66.example.net) says HELO spoof.example.com, offers mail from Im@lying.com to victim@elsewhere.example",
        "the relay must refuse the recipient victim@elsewhere.example with `550 5.7.1 <victim@elsewhere.example>... Relaying denied`: Relaying denied: elsewhere.example is not in relay_domains and 203.0.113.66 is not in an allowed network (10.1.1)",
        "lying.com MX 10 mail.lying.com",
    ] {
        assert!(out.contains(s), "missing {s:?} in\n{out}");
    }
    // Deterministic.
    assert_eq!(out, explain("open-relay/relaying-denied").1);
}

#[test]
fn forgery_by_path() {
    let (code, out, _) = explain("scenarios/forgery/forged-headers-revealed-by-received.yaml");
    assert_eq!(code, 0);
    for s in [
        "the host forger (198.51.100.130, PTR real.dom.com) says HELO spoof.example.com, offers mail from Im@lying.com to john@sysiphus.com, with a message of its own",
        "internal.sysiphus.com (10.1.1.10, PTR internal.sysiphus.com): its SMTP port accepts and records every message",
        "the relay names the client by its reverse DNS and address, whatever name it gives in HELO",
        "a message must arrive at internal.sysiphus.com from <Im@lying.com> for john@sysiphus.com",
    ] {
        assert!(out.contains(s), "missing {s:?} in\n{out}");
    }
}

#[test]
fn greetpause_explains_the_null_session_and_the_exemption() {
    let (code, out, _) = explain("greetpause/slammer-gets-null-session");
    assert_eq!(code, 0);
    assert!(out.contains("writes its whole session at once, before the greeting"), "{out}");
    assert!(
        out.contains("greet_pause is 1500 ms and the client spoke before the greeting: it gets a null session"),
        "{out}"
    );
    assert!(out.contains("the access DB's `GreetPause:192.168 0` exempts 192.168.1.1 from greet_pause"), "{out}");
}

#[test]
fn explain_key_is_printed_first() {
    let dir = std::env::temp_dir().join(format!("relaylab-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("x.yaml");
    std::fs::write(
        &f,
        "name: t/x\nexplain: |\n  A paragraph from the course.\nrelay: { hostname: r.example }\nhosts: { c: { ip: 203.0.113.1 } }\nsteps:\n  - send: { from: c, mail_from: a@r.example, rcpt_to: b@r.example }\n",
    )
    .unwrap();
    let (code, out, _) = explain(f.to_str().unwrap());
    assert_eq!(code, 0);
    let para = out.find("A paragraph from the course.").expect("paragraph");
    assert!(para < out.find("What the lab sets up").unwrap(), "{out}");
}

#[test]
fn unknown_scenario_exits_2_with_a_hint() {
    let (code, _, err) = explain("open-relay/no-such-lab");
    assert_eq!(code, 2);
    assert!(err.contains("no scenario file or scenario name `open-relay/no-such-lab`"), "{err}");
    assert!(err.contains("relaylab list"), "{err}");
}
