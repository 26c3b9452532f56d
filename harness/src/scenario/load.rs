//! Loading scenario files: parse, then check what serde cannot (references
//! between hosts, steps and expectations), naming file, line and column.

use super::model::{Scenario, SmtpService};
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
    let scenario: Scenario = serde_yaml::from_str(text).map_err(|e| yaml_error(path, e))?;
    validate(&scenario, text).map_err(|(needle, message)| {
        let (line, column) = locate(text, &needle).map_or((None, None), |(l, c)| (Some(l), Some(c)));
        ScenarioError { path: path.to_path_buf(), line, column, message }
    })?;
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
    ScenarioError { path: path.to_path_buf(), line: loc.as_ref().map(|l| l.line()), column: loc.map(|l| l.column()), message }
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
        let (line, column) = locate(&text, &profile_error_needle(&message)).map_or((None, None), |(l, c)| (Some(l), Some(c)));
        ScenarioError { path: path.to_path_buf(), line, column, message }
    })?;
    Ok(profile)
}

/// Checks across sections. An error carries a piece of source text to locate it by.
fn validate(s: &Scenario, _text: &str) -> Result<(), (String, String)> {
    if let Err(e) = s.relay.validate() {
        let message = e.to_string();
        return Err((profile_error_needle(&message), format!("relay: {message}")));
    }
    if s.steps.is_empty() {
        return Err(("steps:".into(), "steps: a lab needs at least one step".into()));
    }
    let host_names: Vec<&str> = s.hosts.keys().map(String::as_str).collect();
    let known = |name: &str| host_names.contains(&name);
    for (i, step) in s.steps.iter().enumerate() {
        let actions = [step.send.is_some(), step.script.is_some(), step.settle.is_some()];
        let n = actions.iter().filter(|&&a| a).count();
        if n != 1 {
            return Err((
                "steps:".into(),
                format!("steps[{i}]: expected exactly one of `send`, `script` or `settle`, found {n}"),
            ));
        }
        if step.expect.is_some() && step.send.is_none() {
            return Err((
                "expect:".into(),
                format!("steps[{i}].expect: only a `send` step takes `expect`; a `script` puts `expect` on each line"),
            ));
        }
        let from = step.send.as_ref().map(|x| &x.from).or(step.script.as_ref().map(|x| &x.from));
        if let Some(from) = from {
            if !known(from) {
                return Err((
                    format!("from: {from}"),
                    format!("steps[{i}].from: unknown host `{from}`; declare it under `hosts:` (known: {})", list(&host_names)),
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
    }
    for (i, d) in s.expect.delivered.iter().enumerate() {
        if let Some(at) = &d.at {
            let sink = s.hosts.get(at).and_then(|h| h.smtp);
            if sink != Some(SmtpService::Accept) {
                return Err((
                    format!("at: {at}"),
                    format!("expect.delivered[{i}].at: `{at}` is not a host with `smtp: accept`, so nothing can be delivered there"),
                ));
            }
        }
    }
    for q in &s.expect.dns_queries {
        let mut parts = q.split_whitespace();
        let ok = matches!((parts.next(), parts.next(), parts.next()), (Some(_), Some(_), None));
        if !ok {
            return Err((q.clone(), format!("expect.dns_queries: expected \"TYPE name\" such as \"MX sysiphus.com\", found {q:?}")));
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
                return Err((ip.to_string(), format!("hosts.{name}.ip: {ip} is the relay's address (network.relay_ip)")));
            }
            if let Some(other) = seen.insert(ip, name) {
                return Err((ip.to_string(), format!("hosts.{name}.ip: {ip} is already used by host `{other}`")));
            }
        }
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
            return Err(format!("{}: no such file or folder (give scenario files or folders, e.g. `scenarios/`)", p.display()));
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
        let text = GOOD.replace("  hostname: relay.example.com", "  hostname: relay.example.com\n  relay_domains: [example.com, 10.1.300]");
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
}
