//! Teaching mode: `relaylab explain SCENARIO` tells, in plain words, what a
//! lab sets up, what it sends, and why the expected outcome follows. The
//! "why" is derived from the scenario and the relay profile's rules
//! (relay_domains, IP prefixes, access entries, mailertable, greet_pause);
//! a scenario's free-text `explain:` paragraph is printed first. The output
//! is deterministic.

use crate::scenario::{self, HostSpec, LoadedScenario, RcptExpect, ReplyMatcher, Scenario, SmtpSpec, StepExpect};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Find a scenario by file path, or by name under `library`.
pub fn resolve(wanted: &str, library: &Path) -> Result<LoadedScenario, String> {
    let p = PathBuf::from(wanted);
    if p.is_file() {
        return scenario::load_file(&p).map_err(|e| e.to_string());
    }
    let files = scenario::discover(&[library.to_path_buf()])?;
    let mut names = Vec::new();
    for f in files {
        if let Ok(l) = scenario::load_file(&f) {
            if l.scenario.name == wanted {
                return Ok(l);
            }
            names.push(l.scenario.name);
        }
    }
    let key = wanted.rsplit('/').next().unwrap_or(wanted);
    let close: Vec<&String> =
        names.iter().filter(|n| n.contains(key) || key.contains(n.rsplit('/').next().unwrap_or(""))).take(5).collect();
    let mut msg =
        format!("no scenario file or scenario name `{wanted}` (looked for names under {})", library.display());
    if !close.is_empty() {
        let c: Vec<&str> = close.iter().map(|s| s.as_str()).collect();
        let _ = write!(msg, "; did you mean: {}?", c.join(", "));
    }
    msg.push_str("; `relaylab list` shows every scenario");
    Err(msg)
}

fn domain_of(addr: &str) -> String {
    let a = addr.trim_matches(|c| c == '<' || c == '>');
    a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default()
}

fn is_ip_prefix(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn ip_in(ip: &str, prefix: &str) -> bool {
    ip == prefix || ip.starts_with(&format!("{prefix}."))
}

fn domain_in(domain: &str, listed: &str) -> bool {
    let l = listed.trim_start_matches('.').to_ascii_lowercase();
    domain == l || domain.ends_with(&format!(".{l}"))
}

/// `(key, value)` pairs of the access map.
fn access_entries(s: &Scenario) -> Vec<(String, String)> {
    s.relay
        .access
        .iter()
        .flat_map(|l| l.lines().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|l| {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                return None;
            }
            let mut it = l.splitn(2, char::is_whitespace);
            Some((it.next()?.to_string(), it.next().unwrap_or("").trim().to_string()))
        })
        .collect()
}

fn host_ip(s: &Scenario, host: &str) -> Option<String> {
    s.hosts.get(host).and_then(|h| h.ip).map(|ip| ip.to_string())
}

fn ptr_of(name: &str, h: &HostSpec) -> Option<String> {
    match &h.ptr {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(p.clone()),
        None if name.contains('.') => Some(name.to_string()),
        None => None,
    }
}

fn host_words(s: &Scenario, name: &str) -> String {
    let Some(h) = s.hosts.get(name) else { return format!("the host {name}") };
    let ip = h.ip.map(|i| i.to_string()).unwrap_or_else(|| "an address in 198.51.100.0/24".into());
    match ptr_of(name, h) {
        Some(p) => format!("the host {name} ({ip}, PTR {p})"),
        None => format!("the host {name} ({ip}, no PTR)"),
    }
}

fn smtp_words(spec: &Option<SmtpSpec>) -> String {
    match spec {
        None => "a client only: nothing listens on its SMTP port".into(),
        Some(SmtpSpec::Accept) => "its SMTP port accepts and records every message (an MX sink)".into(),
        Some(SmtpSpec::Down) => "its SMTP port is down: connections are refused".into(),
        Some(SmtpSpec::Mapping(m)) => {
            let mut parts = Vec::new();
            if let Some(b) = &m.behaviour {
                parts.push(format!("behaves as `{}`", format!("{b:?}").to_ascii_lowercase()));
            }
            for (phase, r) in [("banner", &m.banner), ("helo", &m.helo), ("mail", &m.mail), ("data", &m.data)] {
                if let Some(r) = r {
                    parts.push(format!("at {phase}: {r:?}"));
                }
            }
            if let Some(r) = &m.rcpt {
                parts.push(format!("at RCPT: {r:?}"));
            }
            if parts.is_empty() {
                "its SMTP port runs a scripted host".into()
            } else {
                format!("its SMTP port runs a scripted host that {}", parts.join("; "))
            }
        }
    }
}

/// Why the relay takes or refuses `rcpt` from the client at `ip`.
fn relay_reason(s: &Scenario, ip: Option<&str>, rcpt: &str) -> (bool, String) {
    let p = &s.relay;
    let dom = domain_of(rcpt);
    if dom.is_empty() {
        return (false, format!("{rcpt} has no domain"));
    }
    let access = access_entries(s);
    if let Some(ip) = ip {
        for (k, v) in &access {
            if let Some(pre) = k.strip_prefix("Connect:").or_else(|| if is_ip_prefix(k) { Some(k) } else { None }) {
                if ip_in(ip, pre) && v.to_ascii_uppercase().starts_with("REJECT") {
                    return (false, format!("the access DB says `{k} {v}`: {ip} is refused"));
                }
            }
        }
    }
    if dom == p.hostname.to_ascii_lowercase() || p.local_host_names.iter().any(|l| l.eq_ignore_ascii_case(&dom)) {
        return (true, format!("{dom} is this host itself (local_host_names): the mail is local"));
    }
    for (k, v) in &access {
        if let Some(d) = k.strip_prefix("To:") {
            if domain_in(&dom, d) && v.eq_ignore_ascii_case("RELAY") {
                return (true, format!("the access DB says `{k} RELAY`"));
            }
        }
    }
    if let Some(listed) = p.relay_domains.iter().find(|d| !is_ip_prefix(d) && domain_in(&dom, d)) {
        let how =
            if dom == listed.to_ascii_lowercase() { String::new() } else { format!(" (as a subdomain of {listed})") };
        return (true, format!("{dom} is in relay_domains{how}: the relay accepts mail for it from anyone"));
    }
    if p.promiscuous_relay {
        return (true, "promiscuous_relay is on: the relay relays for anyone".into());
    }
    if let Some(ip) = ip {
        if let Some(pre) = p.relay_domains.iter().find(|d| is_ip_prefix(d) && ip_in(ip, d)) {
            return (true, format!("{ip} is in the allowed network {pre} (relay_domains): its clients may relay out"));
        }
        for (k, v) in &access {
            if let Some(pre) = k.strip_prefix("Connect:") {
                if ip_in(ip, pre) && v.eq_ignore_ascii_case("RELAY") {
                    return (true, format!("the access DB says `{k} RELAY`"));
                }
            }
        }
    }
    let nets: Vec<&str> = p.relay_domains.iter().filter(|d| is_ip_prefix(d)).map(|s| s.as_str()).collect();
    let who = ip
        .map(|i| format!("{i} is not in an allowed network"))
        .unwrap_or_else(|| "the client is not in an allowed network".into());
    let nets = if nets.is_empty() { " (there is none)".to_string() } else { format!(" ({})", nets.join(", ")) };
    (false, format!("Relaying denied: {dom} is not in relay_domains and {who}{nets}"))
}

fn reply_why(s: &Scenario, phase: &str, m: &ReplyMatcher, ip: Option<&str>, arg: &str) -> String {
    let txt = m.as_str();
    let code = txt.trim().get(..3).unwrap_or("");
    let verb = match code.chars().next() {
        Some('2') | Some('3') => "accept",
        Some('4') => "defer (temporary failure)",
        Some('5') => "refuse",
        _ => "answer",
    };
    let what = match phase {
        "greeting" => "the connection".to_string(),
        "helo" => "the HELO/EHLO".to_string(),
        "mail" => format!("the sender {arg}"),
        "rcpt" => format!("the recipient {arg}"),
        "data" => "the DATA command".to_string(),
        "data_end" => "the message".to_string(),
        _ => format!("the {phase}"),
    };
    let mut line = format!("the relay must {verb} {what} with `{txt}`");
    let because = match phase {
        "rcpt" => {
            let (ok, why) = relay_reason(s, ip, arg);
            let agrees = (code.starts_with('2')) == ok;
            if code.starts_with('4') || !agrees && !txt.contains("Relaying denied") {
                None
            } else {
                Some(why)
            }
        }
        "mail" if code == "553" => Some(format!(
            "{} has neither an MX nor an A record in the lab DNS, and the relay refuses senders it could not answer",
            domain_of(arg)
        )),
        "helo" if txt.contains("Hello") => {
            Some("the relay names the client by its reverse DNS and address, whatever name it gives in HELO".into())
        }
        "greeting" if code == "554" && s.relay.greet_pause > 0 => Some(format!(
            "greet_pause is {} ms and the client spoke before the greeting: it gets a null session",
            s.relay.greet_pause
        )),
        _ => None,
    };
    let because = because.or_else(|| {
        let ip = ip?;
        if phase != "greeting" || !code.starts_with('2') || s.relay.greet_pause == 0 {
            return None;
        }
        access_entries(s).into_iter().find_map(|(k, v)| {
            let pre = k.strip_prefix("GreetPause:")?;
            ip_in(ip, pre).then(|| format!("the access DB's `{k} {v}` exempts {ip} from greet_pause"))
        })
    });
    if let Some(b) = because {
        let b = if txt.contains("Relaying denied") { b } else { b.replace("Relaying denied: ", "") };
        let _ = write!(line, ": {b}");
    }
    line
}

fn step_expect_lines(s: &Scenario, e: &StepExpect, ip: Option<&str>, mail_from: &str, rcpts: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (phase, m) in [("greeting", &e.greeting), ("helo", &e.helo), ("mail", &e.mail)] {
        if let Some(m) = m {
            out.push(reply_why(s, phase, m, ip, mail_from));
        }
    }
    match &e.rcpt {
        Some(RcptExpect::All(m)) => {
            for r in rcpts {
                out.push(reply_why(s, "rcpt", m, ip, r));
            }
        }
        Some(RcptExpect::Each(ms)) => {
            for (m, r) in ms.iter().zip(rcpts) {
                out.push(reply_why(s, "rcpt", m, ip, r));
            }
        }
        None => {}
    }
    for (phase, m) in [("data", &e.data), ("data_end", &e.data_end), ("quit", &e.quit)] {
        if let Some(m) = m {
            out.push(reply_why(s, phase, m, ip, ""));
        }
    }
    for (w, n) in e.counts() {
        out.push(format!("{n} message(s) must end {w}"));
    }
    if let Some(f) = &e.fate {
        out.push(format!("the sending MTA's message must end {f}"));
    }
    out
}

/// The plain-words explanation of a lab.
pub fn explain(loaded: &LoadedScenario) -> String {
    let s = &loaded.scenario;
    let p = &s.relay;
    let mut o = String::new();
    let _ = writeln!(o, "{} ({})", s.name, loaded.path.display());
    if !s.about.is_empty() {
        let _ = writeln!(o, "  {}", s.about);
    }
    if let Some(c) = &s.course {
        let _ = writeln!(o, "  course: {c}");
    }
    if let Some(x) = &s.explain {
        let _ = writeln!(o);
        for l in x.trim().lines() {
            let _ = writeln!(o, "  {l}");
        }
    }

    let _ = writeln!(o, "\nWhat the lab sets up");
    let domains: Vec<&str> = p.relay_domains.iter().filter(|d| !is_ip_prefix(d)).map(|s| s.as_str()).collect();
    let nets: Vec<&str> = p.relay_domains.iter().filter(|d| is_ip_prefix(d)).map(|s| s.as_str()).collect();
    let role = if p.promiscuous_relay {
        "a promiscuous relay: it relays for anyone (an internal relay's setting)".to_string()
    } else if nets.is_empty() {
        "a relay that takes mail in for its domains and relays out for no one".to_string()
    } else {
        "a relay that takes mail in for its domains and relays out only for its own networks".to_string()
    };
    let _ = writeln!(o, "  The relay {} (lab address {}) is {role}.", p.hostname, s.network.relay_ip);
    if !domains.is_empty() {
        let _ = writeln!(
            o,
            "  relay_domains: {}: it accepts mail for these domains and their subdomains, from anyone.",
            domains.join(", ")
        );
    }
    if !nets.is_empty() {
        let _ = writeln!(
            o,
            "  allowed networks (IP prefixes in relay_domains): {}: clients there may relay anywhere.",
            nets.join(", ")
        );
    }
    if !p.local_host_names.is_empty() {
        let _ =
            writeln!(o, "  local_host_names: {}: mail for these is delivered locally.", p.local_host_names.join(", "));
    }
    for (k, v) in access_entries(s) {
        let _ = writeln!(o, "  access DB: `{k} {v}`");
    }
    for m in &p.mailertable {
        let _ = writeln!(o, "  mailertable: `{m}`: mail for that domain goes there instead of to its MX");
    }
    if let Some(h) = &p.smart_host {
        let _ = writeln!(o, "  smart_host: {h}: outbound mail goes through it");
    }
    if p.greet_pause > 0 {
        let _ = writeln!(
            o,
            "  greet_pause: {} ms: the relay waits before its greeting; a client that talks first is refused",
            p.greet_pause
        );
    }
    if p.delay_checks != Default::default() {
        let _ = writeln!(o, "  delay_checks: {:?}: client and sender checks wait until RCPT", p.delay_checks);
    }
    if p.accept_unresolvable_domains {
        let _ = writeln!(o, "  accept_unresolvable_domains: senders whose domain does not resolve are taken");
    }
    if !s.hosts.is_empty() {
        let _ = writeln!(o, "  Hosts:");
        for (name, h) in &s.hosts {
            let _ =
                writeln!(o, "    - {}: {}", host_words(s, name).trim_start_matches("the host "), smtp_words(&h.smtp));
        }
    }
    if !s.dns.is_empty() {
        let _ = writeln!(o, "  DNS records (anything else gets NXDOMAIN):");
        for (name, node) in &s.dns {
            for (t, v) in node.records() {
                let _ = writeln!(o, "    - {name} {t} {v}");
            }
        }
    }
    for f in &s.dns_faults {
        let _ = writeln!(
            o,
            "  DNS fault: {} {}: {}",
            f.name,
            f.rtype.as_deref().unwrap_or("(every type)"),
            f.fault.as_deref().unwrap_or("delayed")
        );
    }
    for z in &s.dnsbl {
        let listed: Vec<&str> = z.listed.keys().map(|s| s.as_str()).collect();
        let _ = writeln!(o, "  DNSBL zone {} lists {}", z.zone, listed.join(", "));
    }

    let _ = writeln!(o, "\nWhat it sends");
    let mut whys: Vec<String> = Vec::new();
    for (i, st) in s.steps.iter().enumerate() {
        let n = i + 1;
        if let Some(send) = &st.send {
            let hello = match (&send.helo, &send.ehlo) {
                (Some(h), _) => format!("HELO {h}"),
                (_, Some(e)) => format!("EHLO {e}"),
                _ => format!("EHLO {}", send.from),
            };
            let mf = if send.mail_from == "<>" || send.mail_from.is_empty() {
                "the null sender <>".to_string()
            } else {
                send.mail_from.clone()
            };
            let to = send.to.as_deref().map(|t| format!(" (to {t}, not the relay)")).unwrap_or_default();
            let msg = if send.forge.is_some() {
                ", with forged headers"
            } else if send.data.is_some() {
                ", with a message of its own"
            } else {
                ""
            };
            let _ = writeln!(
                o,
                "  {n}. {} says {hello}, offers mail from {mf} to {}{msg}{to}",
                host_words(s, &send.from),
                send.rcpt_to.join(", ")
            );
            if let Some(e) = &st.expect {
                let ip = host_ip(s, &send.from);
                for w in step_expect_lines(s, e, ip.as_deref(), &send.mail_from, &send.rcpt_to) {
                    whys.push(format!("step {n}: {w}"));
                }
            }
        } else if let Some(sc) = &st.script {
            let how = if sc.pipelined {
                "writes its whole session at once, before the greeting"
            } else {
                "types a session line by line"
            };
            let _ = writeln!(o, "  {n}. {} {how}:", host_words(s, &sc.from));
            if let Some(g) = &sc.greeting {
                let ip = host_ip(s, &sc.from);
                whys.push(format!("step {n}: {}", reply_why(s, "greeting", g, ip.as_deref(), "")));
            }
            for l in &sc.lines {
                let (line, shown) = match (&l.send, &l.message) {
                    (Some(t), _) => (t.clone(), format!("\"{t}\"")),
                    (_, Some(_)) => (String::new(), "a message".to_string()),
                    _ => continue,
                };
                match &l.expect {
                    Some(e) => {
                        let _ = writeln!(o, "       {shown} -> expects {e}");
                        if line.is_empty() || e.as_str().starts_with('5') || e.as_str().starts_with('4') {
                            whys.push(format!("step {n}: the relay must answer {shown} with `{e}`"));
                        }
                    }
                    None => {
                        let _ = writeln!(o, "       {shown}");
                    }
                }
            }
        } else {
            let words = match st.action() {
                "settle" => "waits until the relay has finished every delivery".to_string(),
                "slam" => {
                    let sl = st.slam.as_ref().unwrap();
                    format!(
                        "{} slams the relay: {} connection(s), {} message(s) from {} to {}",
                        host_words(s, &sl.from),
                        sl.connections,
                        sl.messages,
                        sl.mail_from,
                        sl.rcpt_to.join(", ")
                    )
                }
                "mta" => {
                    let m = st.mta.as_ref().unwrap();
                    format!(
                        "{} acts as a sending MTA (queues on 4xx, retries) with mail from {} to {}",
                        host_words(s, &m.from),
                        m.mail_from,
                        m.rcpt_to.join(", ")
                    )
                }
                "dns" => "the lab's DNS changes".to_string(),
                "advance" => format!("lab time moves on by {:?}, running what falls due", st.advance.unwrap().0),
                "flush" => "the relay's queue is run for one domain (sendmail -qR@domain)".to_string(),
                "queue_run" => "the relay's whole queue is run (sendmail -q)".to_string(),
                "mailq" => "the relay's queue is listed (mailq)".to_string(),
                _ => format!("lab time passes ({:?})", st.wait.map(|w| w.0).unwrap_or_default()),
            };
            let _ = writeln!(o, "  {n}. {words}");
            if let (Some(e), Some(_)) = (&st.expect, st.slam.as_ref().or(None)) {
                for w in step_expect_lines(s, e, None, "", &[]) {
                    whys.push(format!("step {n}: {w}"));
                }
            } else if let Some(e) = &st.expect {
                for w in step_expect_lines(s, e, None, "", &[]) {
                    whys.push(format!("step {n}: {w}"));
                }
            }
        }
    }
    if let Some(u) = s.run_until {
        let _ = writeln!(
            o,
            "  Then lab time runs on until {:?} after the start (queue runs, retries, DSN deadlines).",
            u.0
        );
    }

    let _ = writeln!(o, "\nWhy the expected outcome follows");
    let e = &s.expect;
    if let Some(n) = e.delivered_count {
        whys.push(if n == 0 {
            "no message may reach any MX host: nothing was accepted for relaying".to_string()
        } else {
            format!("{n} message(s) must reach the lab's MX hosts")
        });
    }
    for d in &e.delivered {
        let mut w = "a message must arrive".to_string();
        if let Some(a) = &d.at {
            let _ = write!(w, " at {a}");
        }
        if let Some(m) = &d.mail_from {
            let _ = write!(w, " from <{m}>");
        }
        if let Some(r) = &d.rcpt_to {
            let _ = write!(w, " for {}", r.join(", "));
        }
        for h in &d.headers {
            for (k, v) in h {
                let _ = write!(w, "; header {k}: {v}");
            }
        }
        if let Some(h) = d.hops {
            let _ = write!(w, "; {h} trace header(s)");
        }
        whys.push(w);
    }
    for l in &e.relay_log {
        whys.push(format!("the relay must log a line matching {l}"));
    }
    for l in &e.relay_log_absent {
        whys.push(format!("no relay log line may match {l}"));
    }
    for q in &e.dns_queries {
        whys.push(format!("the relay must ask the lab DNS for {q}"));
    }
    if let Some(q) = e.queued {
        whys.push(format!("{q} message(s) may remain in the relay's queue"));
    }
    if let Some(q) = &e.queue {
        if let Some(n) = q.dsn_count {
            whys.push(format!(
                "the relay must send {n} delivery status notification(s) (DSNs) to the senders of what failed"
            ));
        }
        if let Some(d) = q.depth {
            whys.push(format!("the queue must end with {d} message(s)"));
        }
    }
    for (h, he) in &e.hosts {
        if let Some(r) = he.received {
            whys.push(format!("{h} must have accepted {r} message(s)"));
        }
    }
    if whys.is_empty() {
        let _ = writeln!(o, "  (the lab sets no expectations)");
    }
    for w in whys {
        let _ = writeln!(o, "  - {w}");
    }
    o
}
