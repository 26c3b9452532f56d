//! Loading scenario files: parse, then check what serde cannot (references
//! between hosts, steps and expectations), naming file, line and column.

use super::model::{Scenario, MAX_FARM};
use std::fmt;
use std::path::{Path, PathBuf};

/// A scenario that parsed and validated, with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// The file it was read from.
    pub path: PathBuf,
    /// The scenario.
    pub scenario: Scenario,
}

/// A scenario that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// Read and validate one scenario file.
pub fn load_file(path: &Path) -> Result<LoadedScenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: format!("cannot read scenario: {e}"),
    })?;
    load_str(path, &text)
}

/// Parse and validate scenario text; `path` is used in error messages.
pub fn load_str(path: &Path, text: &str) -> Result<LoadedScenario, ScenarioError> {
    let mut scenario: Scenario = serde_yaml::from_str(text).map_err(|e| yaml_error(path, e))?;
    let located = |(needle, message): (String, String)| {
        let (line, column) = locate(text, &needle).map_or((None, None), |(l, c)| (Some(l), Some(c)));
        ScenarioError { path: path.to_path_buf(), line, column, message }
    };
    validate(&scenario, text).map_err(located)?;
    read_native_files(&mut scenario, path).map_err(located)?;
    Ok(LoadedScenario { path: path.to_path_buf(), scenario })
}

/// A serde_yaml error as `file:line:column: message`.
fn yaml_error(path: &Path, e: serde_yaml::Error) -> ScenarioError {
    let loc = e.location();
    let mut message = e.to_string();
    // serde_yaml appends " at line L column C"; we print the location up front instead.
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    ScenarioError {
        path: path.to_path_buf(),
        line: loc.as_ref().map(|l| l.line()),
        column: loc.map(|l| l.column()),
        message,
    }
}

/// Read a relay profile file (the `relay:` section of a scenario, on its own)
/// for `relaylab relay serve`. Errors name file, line and column.
pub fn load_profile(path: &Path) -> Result<relay_under_test::RelayProfile, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: format!("cannot read relay profile: {e}"),
    })?;
    let profile: relay_under_test::RelayProfile = serde_yaml::from_str(&text).map_err(|e| yaml_error(path, e))?;
    profile.validate().map_err(|e| {
        let message = e.to_string();
        let (line, column) =
            locate(&text, &profile_error_needle(&message)).map_or((None, None), |(l, c)| (Some(l), Some(c)));
        ScenarioError { path: path.to_path_buf(), line, column, message }
    })?;
    Ok(profile)
}

/// Read each `native.<relay>.file` (relative to the scenario's directory) into `whole`.
fn read_native_files(s: &mut Scenario, path: &Path) -> Result<(), (String, String)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    for (relay, spec) in s.native.iter_mut() {
        let Some(file) = &spec.file else { continue };
        let full = dir.join(file);
        let text = std::fs::read_to_string(&full).map_err(|e| {
            (
                format!("file: {}", file.display()),
                format!(
                    "native.{relay}.file: cannot read {}: {e}; the path is taken from the scenario's directory",
                    full.display()
                ),
            )
        })?;
        spec.whole = Some(text);
    }
    Ok(())
}

/// `native:` names real MTAs and gives each exactly one of snippet, whole, file.
fn check_native(s: &Scenario) -> Result<(), (String, String)> {
    for (relay, spec) in &s.native {
        if !relay.is_real() {
            return Err((
                "builtin:".into(),
                "native.builtin: the builtin relay is configured by `relay:`; `native:` is for postfix, sendmail, exim and opensmtpd".into(),
            ));
        }
        let given = [spec.snippet.is_some(), spec.whole.is_some(), spec.file.is_some()].iter().filter(|b| **b).count();
        if given != 1 {
            return Err((
                format!("{relay}:"),
                format!("native.{relay}: give exactly one of `snippet` (added to the rendered configuration), `whole` or `file` (the whole native file)"),
            ));
        }
    }
    for relay in s.differences.keys() {
        if !relay.is_real() {
            return Err((
                "differences:".into(),
                "differences.builtin: differences are from the builtin relay; name a real MTA".into(),
            ));
        }
    }
    Ok(())
}

/// Checks across sections. An error carries a piece of source text to locate it by.
fn validate(s: &Scenario, _text: &str) -> Result<(), (String, String)> {
    check_native(s)?;
    if let Err(e) = s.relay.validate() {
        let message = e.to_string();
        return Err((profile_error_needle(&message), format!("relay: {message}")));
    }
    if s.steps.is_empty() {
        return Err(("steps:".into(), "steps: a lab needs at least one step".into()));
    }
    let host_names: Vec<&str> = s.hosts.keys().map(String::as_str).collect();
    let known = |name: &str| host_names.contains(&name);
    let unknown = |i: usize, key: &str, name: &str| {
        (
            format!("{key}: {name}"),
            format!(
                "steps[{i}].{key}: unknown host `{name}`; declare it under `hosts:` (known: {})",
                list(&host_names)
            ),
        )
    };
    for (name, h) in &s.hosts {
        if let Some(m) = h.smtp.as_ref().and_then(|x| x.mapping()) {
            m.check().map_err(|e| (format!("{name}:"), format!("hosts.{name}.smtp: {e}")))?;
        }
        if h.farm == Some(0) || h.farm.is_some_and(|n| n > MAX_FARM) {
            return Err((format!("{name}:"), format!("hosts.{name}.farm: give 1 to {MAX_FARM} addresses")));
        }
    }
    for (i, step) in s.steps.iter().enumerate() {
        let actions = [
            step.send.is_some(),
            step.script.is_some(),
            step.settle.is_some(),
            step.slam.is_some(),
            step.mta.is_some(),
            step.dns.is_some(),
            step.wait.is_some(),
            step.advance.is_some(),
            step.flush.is_some(),
            step.queue_run.is_some(),
            step.mailq.is_some(),
        ];
        let n = actions.iter().filter(|&&a| a).count();
        if n != 1 {
            return Err((
                "steps:".into(),
                format!("steps[{i}]: expected exactly one of `send`, `script`, `settle`, `slam`, `mta`, `dns`, `wait`, `advance`, `flush`, `queue_run` or `mailq`, found {n}"),
            ));
        }
        if let Some(e) = &step.expect {
            let fits = match step.action() {
                "send" => !e.has_counts() && !e.has_mta_keys(),
                "slam" => !e.has_reply_matchers() && !e.has_mta_keys(),
                "mta" => !e.has_reply_matchers(),
                _ => false,
            };
            if !fits {
                let what = match step.action() {
                    "send" => "a `send` step takes reply matchers (greeting, helo, mail, rcpt, data, data_end, quit)",
                    "slam" => "a `slam` step takes counts (accepted, tempfailed, rejected, refused, timed_out, errors, unsent)",
                    "mta" => "an `mta` step takes counts, attempts, fate, replies and spacing",
                    _ => "only `send`, `slam` and `mta` steps take `expect`; a `script` puts `expect` on each line",
                };
                return Err(("expect:".into(), format!("steps[{i}].expect: {what}")));
            }
            if let Some(f) = &e.fate {
                if !["delivered", "bounced", "gave_up"].contains(&f.as_str()) {
                    return Err((
                        f.clone(),
                        format!("steps[{i}].expect.fate: expected delivered, bounced or gave_up, found {f:?}"),
                    ));
                }
            }
        }
        let from = step
            .send
            .as_ref()
            .map(|x| &x.from)
            .or(step.script.as_ref().map(|x| &x.from))
            .or(step.slam.as_ref().map(|x| &x.from))
            .or(step.mta.as_ref().map(|x| &x.from));
        if let Some(from) = from {
            if !known(from) {
                return Err(unknown(i, "from", from));
            }
        }
        let to = step
            .send
            .as_ref()
            .and_then(|x| x.to.as_ref())
            .or(step.script.as_ref().and_then(|x| x.to.as_ref()))
            .or(step.slam.as_ref().and_then(|x| x.to.as_ref()))
            .or(step.mta.as_ref().and_then(|x| x.to.as_ref()));
        if let Some(to) = to {
            if !known(to) {
                return Err(unknown(i, "to", to));
            }
            if s.hosts[to].smtp.is_none() {
                return Err((
                    format!("to: {to}"),
                    format!("steps[{i}].to: `{to}` runs no SMTP service (give it `smtp:`)"),
                ));
            }
        }
        if let Some(send) = &step.send {
            if send.helo.is_some() && send.ehlo.is_some() {
                return Err(("helo:".into(), format!("steps[{i}].send: give `helo` or `ehlo`, not both")));
            }
            if send.rcpt_to.is_empty() {
                return Err(("rcpt_to:".into(), format!("steps[{i}].send.rcpt_to: at least one recipient is needed")));
            }
        }
        if let Some(script) = &step.script {
            for (j, line) in script.lines.iter().enumerate() {
                if line.send.is_some() == line.message.is_some() {
                    return Err((
                        "lines:".into(),
                        format!("steps[{i}].script.lines[{j}]: expected exactly one of `send` (a command line) or `message`"),
                    ));
                }
            }
        }
        if let Some(slam) = &step.slam {
            if slam.connections == 0 || slam.messages == 0 || slam.rcpt_to.is_empty() {
                return Err((
                    "slam:".into(),
                    format!("steps[{i}].slam: connections, messages and rcpt_to must each be at least 1"),
                ));
            }
            if slam.connections.saturating_mul(slam.messages) > MAX_SLAM_MESSAGES {
                return Err((
                    "messages:".into(),
                    format!("steps[{i}].slam: at most {MAX_SLAM_MESSAGES} messages per slam (connections × messages)"),
                ));
            }
            if slam.distinct_sources && slam.connections > MAX_FARM {
                return Err((
                    "distinct_sources".into(),
                    format!("steps[{i}].slam: at most {MAX_FARM} connections can each have their own address"),
                ));
            }
        }
        if let Some(mta) = &step.mta {
            if mta.rcpt_to.is_empty() {
                return Err(("rcpt_to:".into(), format!("steps[{i}].mta.rcpt_to: at least one recipient is needed")));
            }
        }
        if let Some(dns) = &step.dns {
            check_dns_step(i, dns)?;
        }
    }
    let farms: usize = s.farm_sizes().values().sum();
    if farms > 240 {
        return Err((
            "hosts:".into(),
            format!("hosts: the lab needs {farms} addresses (hosts and their farms); a lab has room for 240"),
        ));
    }
    for (i, f) in s.dns_faults.iter().enumerate() {
        f.to_fault().map_err(|e| (f.name.clone(), format!("dns_faults[{i}]: {e}")))?;
    }
    for (i, bl) in s.dnsbl.iter().enumerate() {
        mock_dns::Record::parse(&bl.zone, "TXT", "x")
            .map_err(|e| (bl.zone.clone(), format!("dnsbl[{i}].zone: {e}")))?;
        for who in bl.listed.keys() {
            if who.parse::<std::net::IpAddr>().is_err() && !known(who) {
                return Err((
                    who.clone(),
                    format!("dnsbl[{i}].listed: {who:?} is neither an IP address nor a host under `hosts:`"),
                ));
            }
        }
    }
    for (i, d) in s.expect.delivered.iter().enumerate() {
        if let Some(at) = &d.at {
            let ok = s.hosts.get(at).and_then(|h| h.smtp.as_ref()).is_some_and(|x| x.can_receive());
            if !ok {
                return Err((
                    format!("at: {at}"),
                    format!("expect.delivered[{i}].at: `{at}` is not a host with an SMTP service that accepts mail, so nothing can be delivered there"),
                ));
            }
        }
    }
    for (name, h) in &s.expect.hosts {
        let Some(spec) = s.hosts.get(name) else {
            return Err((
                format!("{name}:"),
                format!("expect.hosts.{name}: unknown host (known: {})", list(&host_names)),
            ));
        };
        let smtp = spec.smtp.as_ref();
        let reacts = smtp.and_then(|x| x.reaction_kind()).is_some();
        if (h.sent.is_some()
            || !h.sent_outcomes.is_empty()
            || !h.sent_replies.is_empty()
            || h.silent.is_some()
            || h.loop_cut.is_some())
            && !reacts
        {
            return Err((
                format!("{name}:"),
                format!("expect.hosts.{name}: `{name}` sends nothing on (give it forward, list or autoresponder)"),
            ));
        }
        let greylists = smtp.and_then(|x| x.mapping()).is_some_and(|m| m.greylist.is_some());
        if (h.greylisted.is_some() || h.greylist_passed.is_some()) && !greylists {
            return Err((format!("{name}:"), format!("expect.hosts.{name}: `{name}` does not greylist")));
        }
        for k in h.sent_outcomes.keys() {
            if !OUTCOME_WORDS.contains(&k.as_str()) {
                return Err((
                    k.clone(),
                    format!("expect.hosts.{name}.sent_outcomes: {k:?} is not one of {}", OUTCOME_WORDS.join(", ")),
                ));
            }
        }
    }
    for q in &s.expect.dns_queries {
        let parts: Vec<&str> = q.split_whitespace().collect();
        let ok = match parts.as_slice() {
            [_, _] => true,
            [_, _, p] => ["udp", "tcp"].contains(&p.to_ascii_lowercase().as_str()),
            _ => false,
        };
        if !ok {
            return Err((
                q.clone(),
                format!("expect.dns_queries: expected \"TYPE name\" such as \"MX sysiphus.com\", optionally with udp or tcp after it, found {q:?}"),
            ));
        }
    }
    for (name, node) in &s.dns {
        for (rtype, value) in node.records() {
            if let Err(e) = mock_dns::Record::parse(name, rtype, value) {
                return Err((value.to_string(), format!("dns.{name}.{rtype}: {e}")));
            }
        }
    }
    let mut seen = std::collections::HashMap::new();
    for (name, h) in &s.hosts {
        if let Some(ip) = h.ip {
            if ip == s.network.relay_ip {
                return Err((
                    ip.to_string(),
                    format!("hosts.{name}.ip: {ip} is the relay's address (network.relay_ip)"),
                ));
            }
            if let Some(other) = seen.insert(ip, name) {
                return Err((ip.to_string(), format!("hosts.{name}.ip: {ip} is already used by host `{other}`")));
            }
        }
    }
    super::queue_spec::validate(s)?;
    Ok(())
}

/// The most messages one `slam` step may send.
pub const MAX_SLAM_MESSAGES: usize = 200_000;

/// The outcome words counts use.
pub const OUTCOME_WORDS: [&str; 6] = ["accepted", "tempfailed", "rejected", "refused", "timed_out", "errors"];

fn check_dns_step(i: usize, dns: &super::actor_spec::DnsStepSpec) -> Result<(), (String, String)> {
    for (name, node) in dns.add.iter().chain(&dns.replace) {
        for (rtype, value) in node.records() {
            mock_dns::Record::parse(name, rtype, value)
                .map_err(|e| (value.to_string(), format!("steps[{i}].dns.{name}.{rtype}: {e}")))?;
        }
    }
    for r in &dns.remove {
        let parts: Vec<&str> = r.split_whitespace().collect();
        if parts.len() != 2 {
            return Err((
                r.clone(),
                format!("steps[{i}].dns.remove: expected \"TYPE name\" such as \"MX sysiphus.com\", found {r:?}"),
            ));
        }
    }
    for f in &dns.faults {
        f.to_fault().map_err(|e| (f.name.clone(), format!("steps[{i}].dns.faults: {e}")))?;
    }
    Ok(())
}

/// What to look for in the source to locate a profile error: the offending
/// value, which the relay's messages quote (`relay_domains entry "10.1.300": ...`),
/// else the key the message starts with.
fn profile_error_needle(message: &str) -> String {
    let quoted = message.split('"').nth(1).filter(|v| !v.is_empty());
    match quoted {
        Some(v) => v.to_string(),
        None => message.split_whitespace().next().unwrap_or("relay:").to_string(),
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// 1-based line and column of the first occurrence of `needle` in `text`.
fn locate(text: &str, needle: &str) -> Option<(usize, usize)> {
    let idx = text.find(needle)?;
    let before = &text[..idx];
    let line = before.matches('\n').count() + 1;
    let column = idx - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    Some((line, column))
}

/// Find scenario files under `paths` (files or folders, searched recursively),
/// sorted, `.yaml`/`.yml` only.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out).map_err(|e| format!("cannot read folder {}: {e}", p.display()))?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(format!(
                "{}: no such file or folder (give scenario files or folders, e.g. `scenarios/`)",
                p.display()
            ));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: t/ok
relay:
  hostname: relay.example.com
hosts:
  client: { ip: 203.0.113.5 }
steps:
  - send:
      from: client
      mail_from: a@b.example
      rcpt_to: x@relay.example.com
";

    #[test]
    fn good_scenario_loads() {
        let s = load_str(Path::new("t.yaml"), GOOD).unwrap();
        assert_eq!(s.scenario.name, "t/ok");
        assert_eq!(s.scenario.steps.len(), 1);
    }

    #[test]
    fn native_files_are_read_beside_the_scenario() {
        let dir = std::env::temp_dir().join(format!("relaylab-native-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("relay.mc"), "OSTYPE(`linux')dnl\n").unwrap();
        let text = format!("{GOOD}native:\n  sendmail: {{ file: relay.mc }}\n  postfix: {{ snippet: \"a = b\" }}\n");
        let s = load_str(&dir.join("s.yaml"), &text).unwrap().scenario;
        let mc = &s.native[&crate::scenario::RelayName::Sendmail];
        assert_eq!(mc.whole.as_deref(), Some("OSTYPE(`linux')dnl\n"));
        assert!(mc.is_whole());
        assert!(!s.native[&crate::scenario::RelayName::Postfix].is_whole());
        let missing = text.replace("relay.mc", "gone.mc");
        let e = load_str(&dir.join("s.yaml"), &missing).unwrap_err().to_string();
        assert!(e.contains("s.yaml:12:15: native.sendmail.file: cannot read"), "{e}");
        assert!(e.contains("gone.mc"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn native_needs_a_real_mta_and_exactly_one_form() {
        let two = format!("{GOOD}native:\n  exim:\n    snippet: x\n    whole: y\n");
        let e = load_str(Path::new("s.yaml"), &two).unwrap_err().to_string();
        assert!(e.starts_with("s.yaml:12:3: native.exim: give exactly one of"), "{e}");
        let builtin = format!("{GOOD}native:\n  builtin: {{ snippet: x }}\n");
        let e = load_str(Path::new("s.yaml"), &builtin).unwrap_err().to_string();
        assert!(e.contains("native.builtin: the builtin relay is configured by `relay:`"), "{e}");
        let bad_kind = format!("{GOOD}differences:\n  postfix:\n    - {{ expect: x, kind: maybe, why: y }}\n");
        let e = load_str(Path::new("s.yaml"), &bad_kind).unwrap_err().to_string();
        assert!(e.contains("unknown variant `maybe`, expected `legitimate` or `bug`"), "{e}");
    }

    #[test]
    fn unknown_key_is_reported_with_line_and_column() {
        let text = GOOD.replace("      mail_from:", "      mial_from:");
        let e = load_str(Path::new("s.yaml"), &text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("s.yaml:9:7: "), "{shown}");
        assert!(shown.contains("unknown field `mial_from`"), "{shown}");
    }

    #[test]
    fn yaml_syntax_error_is_located() {
        let text = GOOD.replace("rcpt_to: x@relay.example.com", "rcpt_to: [x@relay.example.com");
        let e = load_str(Path::new("s.yaml"), &text).unwrap_err();
        assert_eq!(e.path, PathBuf::from("s.yaml"));
        assert!(e.line.is_some() && e.column.is_some(), "{e}");
    }

    #[test]
    fn unknown_host_reference_is_located() {
        let text = GOOD.replace("from: client", "from: cleint");
        let e = load_str(Path::new("s.yaml"), &text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("s.yaml:8:7: steps[0].from: unknown host `cleint`"), "{shown}");
        assert!(shown.contains("known: client"), "{shown}");
    }

    #[test]
    fn bad_relay_profile_value_is_located() {
        let text = GOOD.replace(
            "  hostname: relay.example.com",
            "  hostname: relay.example.com\n  relay_domains: [example.com, 10.1.300]",
        );
        let e = load_str(Path::new("s.yaml"), &text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("s.yaml:4:32: relay: relay_domains entry \"10.1.300\""), "{shown}");
    }

    #[test]
    fn bad_reply_matcher_says_what_was_expected() {
        let text = format!("{GOOD}    expect:\n      rcpt: [[550]]\n");
        let e = load_str(Path::new("s.yaml"), &text).unwrap_err();
        assert!(e.to_string().starts_with("s.yaml:12:7: "), "{e}");
        assert!(e.to_string().contains("expected a reply matcher such as"), "{e}");
    }

    fn err(text: &str) -> String {
        load_str(Path::new("s.yaml"), text).unwrap_err().to_string()
    }

    const HOSTS: &str = "name: t/actors
relay:
  hostname: relay.example.com
hosts:
  client: { ip: 203.0.113.5 }
  mx.example.com: { ip: 198.51.100.7, smtp: { rcpt: { \"bad@x\": \"550 5.1.1 unknown\" } } }
steps:
";

    #[test]
    fn actor_steps_load() {
        let text = format!(
            "{HOSTS}  - slam: {{ from: client, connections: 3, messages: 2, rate: 10/s, size: 2k, mail_from: a@b.example, rcpt_to: x@relay.example.com }}
    expect: {{ accepted: 6 }}
  - mta: {{ from: client, to: mx.example.com, mail_from: a@b.example, rcpt_to: y@x, retry: [1s], farm: true }}
    expect: {{ fate: delivered, attempts: 2, replies: [\"451\", \"250\"], spacing: [1s] }}
  - dns: {{ replace: {{ relay.example.com: {{ MX: \"10 mx.example.com\" }} }}, faults: [{{ name: x, fault: servfail }}] }}
  - wait: 10ms
"
        );
        let s = load_str(Path::new("t.yaml"), &text).unwrap().scenario;
        assert_eq!(s.steps.len(), 4);
        assert_eq!(s.farm_sizes()["client"], 2, "the mta retries from a second farm address");
    }

    #[test]
    fn actor_mistakes_are_located_and_explained() {
        let step = |s: &str| format!("{HOSTS}{s}");
        let e = err(&step("  - slam: { from: client, to: nowhere, mail_from: a@b, rcpt_to: x@y }\n"));
        assert!(e.contains("steps[0].to: unknown host `nowhere`"), "{e}");
        let e = err(&step("  - slam: { from: client, to: client, mail_from: a@b, rcpt_to: x@y }\n"));
        assert!(e.contains("steps[0].to: `client` runs no SMTP service"), "{e}");
        let e = err(&step("  - slam: { from: client, mail_from: a@b, rcpt_to: x@y }\n    expect: { rcpt: \"250\" }\n"));
        assert!(e.contains("steps[0].expect: a `slam` step takes counts"), "{e}");
        let e = err(&step("  - send: { from: client, mail_from: a@b, rcpt_to: x@y }\n    expect: { accepted: 1 }\n"));
        assert!(e.contains("a `send` step takes reply matchers"), "{e}");
        let e = err(&step("  - mta: { from: client, mail_from: a@b, rcpt_to: x@y }\n    expect: { fate: lost }\n"));
        assert!(e.contains("expect.fate: expected delivered, bounced or gave_up"), "{e}");
        let e =
            err(&step("  - slam: { from: client, connections: 1000, messages: 1000, mail_from: a@b, rcpt_to: x@y }\n"));
        assert!(e.contains("at most 200000 messages per slam"), "{e}");
        let e = err(&step("  - dns: { remove: [sysiphus.com] }\n"));
        assert!(e.contains("steps[0].dns.remove: expected \"TYPE name\""), "{e}");
        let e = err(&step("  - slam: { from: client, mail_from: a@b, rcpt_to: x@y, rate: fast }\n"));
        assert!(e.contains("rate: expected messages per second"), "{e}");
        assert!(e.starts_with("s.yaml:8:"), "{e}");
    }

    #[test]
    fn smtp_and_dns_section_mistakes() {
        let base = HOSTS.replace(r#"smtp: { rcpt: { "bad@x": "550 5.1.1 unknown" } }"#, "smtp: SMTP");
        assert!(base.contains("SMTP"));
        let with = |smtp: &str, rest: &str| format!("{}  - wait: 1s\n{rest}", base.replace("SMTP", smtp));
        let e = err(&with("{ behaviour: accept, mail: disconnect }", ""));
        assert!(e.contains("hosts.mx.example.com.smtp: behaviour: accept takes no rules"), "{e}");
        let e = err(&with("{ mail: hang-up }", ""));
        assert!(e.contains("expected `accept`, `disconnect`, `silence` or a reply"), "{e}");
        assert!(e.starts_with("s.yaml:6:"), "{e}");
        let e = err(&with("sometimes", ""));
        assert!(e.contains("smtp: expected accept, down, blackhole, greylist"), "{e}");
        let e = err(&with("accept", "dnsbl: { zone: bl.example, listed: { nobody: x } }\n"));
        assert!(e.contains("dnsbl[0].listed: \"nobody\" is neither an IP address nor a host"), "{e}");
        let e = err(&with("accept", "dns_faults: [{ name: x, fault: slow }]\n"));
        assert!(e.contains("dns_faults[0]: unknown DNS fault \"slow\""), "{e}");
        let e = err(&with("blackhole", "expect: { delivered: [{ at: mx.example.com }] }\n"));
        assert!(e.contains("is not a host with an SMTP service that accepts mail"), "{e}");
        let e = err(&with("accept", "expect: { hosts: { mx.example.com: { sent: 1 } } }\n"));
        assert!(e.contains("`mx.example.com` sends nothing on"), "{e}");
        let e = err(&with("accept", "expect: { hosts: { mx.example.com: { greylisted: 1 } } }\n"));
        assert!(e.contains("does not greylist"), "{e}");
        let e = err(&with("accept", "expect: { dns_queries: [\"MX x quic\"] }\n"));
        assert!(e.contains("optionally with udp or tcp"), "{e}");
    }
}
