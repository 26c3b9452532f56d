//! The parts of a scenario that matter when it runs on more than one relay:
//! native configuration for a real MTA (`native:`), MTA-neutral event
//! assertions (`expect.events`), and the differences from the builtin relay
//! that were looked at and explained (`differences:`).

use super::matcher::ValueMatcher;
use relay_under_test::flavours::events::EventKind;
use serde::Deserialize;
use std::path::PathBuf;

/// Native configuration for one real MTA: exactly one of `snippet`, `whole`
/// or `file`.
///
/// ```yaml
/// native:
///   sendmail: { file: external.mc }   # a whole sendmail.mc beside the scenario
///   postfix:
///     snippet: |
///       smtpd_helo_required = yes
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NativeSpec {
    /// Lines added to the configuration rendered from the profile.
    #[serde(default)]
    pub snippet: Option<String>,
    /// A whole native file (`sendmail.mc`, `main.cf`, Exim's configuration,
    /// `smtpd.conf`) used instead of the rendered one.
    #[serde(default)]
    pub whole: Option<String>,
    /// Like `whole`, read from a file; a relative path is taken from the
    /// scenario's directory. The loader reads it into `whole`.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl NativeSpec {
    /// As the flavours take it.
    pub fn config(&self) -> relay_under_test::flavours::NativeConfig {
        use relay_under_test::flavours::NativeConfig;
        match (&self.snippet, &self.whole) {
            (Some(s), _) => NativeConfig::Snippet(s.clone()),
            (None, Some(w)) => NativeConfig::Whole(w.clone()),
            (None, None) => NativeConfig::Rendered,
        }
    }

    /// True when the MTA is configured by the user's whole file, not by the profile.
    pub fn is_whole(&self) -> bool {
        self.snippet.is_none() && (self.whole.is_some() || self.file.is_some())
    }
}

/// What happened to mail, as any relay's log says it (the shared event
/// model of `relay_under_test::flavours::events`): the same assertion holds
/// on the builtin relay and on Postfix, Sendmail, Exim and OpenSMTPD.
///
/// ```yaml
/// events:
///   - { event: rejected, to: victim@elsewhere.example, status: "5" }
///   - { event: delivered, to: hal@sysiphus.com, peer: /int2\.sysiphus\.com/ }
///   - { event: deferred, to: john@sysiphus.com, count: 1 }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventExpect {
    /// `received`, `delivered`, `deferred`, `bounced`, `rejected` or `dsn_sent`.
    pub event: EventKind,
    /// Envelope sender (exact, case-insensitive, or /regex/; `""` is `<>`).
    #[serde(default)]
    pub from: Option<ValueMatcher>,
    /// Envelope recipient (exact, case-insensitive, or /regex/).
    #[serde(default)]
    pub to: Option<ValueMatcher>,
    /// The client (received, rejected) or next hop (delivered, deferred), as a substring or /regex/.
    #[serde(default)]
    pub peer: Option<ValueMatcher>,
    /// The start of the status: `"5"` (any permanent failure), `"5.7.1"`, `"554"`.
    #[serde(default)]
    pub status: Option<String>,
    /// How many events must match (default: at least one).
    #[serde(default)]
    pub count: Option<usize>,
}

impl EventExpect {
    /// Does `e` match?
    pub fn matches(&self, e: &relay_under_test::flavours::events::RelayEvent) -> bool {
        let addr = |m: &Option<ValueMatcher>, v: &Option<String>| match m {
            None => true,
            Some(m) => v.as_deref().is_some_and(|v| address_matches(m, v)),
        };
        e.kind == self.event
            && addr(&self.from, &e.from)
            && addr(&self.to, &e.to)
            && self.peer.as_ref().is_none_or(|m| e.peer.as_deref().is_some_and(|p| m.matches_within(p)))
            && self.status.as_ref().is_none_or(|s| e.status.as_deref().is_some_and(|got| got.starts_with(s.as_str())))
    }
}

/// Addresses compare without case (MTAs log them as given, or lower-cased).
fn address_matches(m: &ValueMatcher, v: &str) -> bool {
    match m {
        ValueMatcher::Text(t) => t.eq_ignore_ascii_case(v),
        ValueMatcher::Regex(..) => m.matches_exact(v),
    }
}

impl std::fmt::Display for EventExpect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.event.as_str();
        write!(f, "{name}")?;
        if let Some(m) = &self.from {
            write!(f, " from=<{m}>")?;
        }
        if let Some(m) = &self.to {
            write!(f, " to=<{m}>")?;
        }
        if let Some(m) = &self.peer {
            write!(f, " peer={m}")?;
        }
        if let Some(s) = &self.status {
            write!(f, " status={s}…")?;
        }
        if let Some(n) = self.count {
            write!(f, " (exactly {n})")?;
        }
        Ok(())
    }
}

/// A difference from the builtin relay that was looked at: either the MTA
/// legitimately does it its own way, or it is a bug (in the MTA, its
/// rendering, or relaylab) written down until fixed.
///
/// ```yaml
/// differences:
///   postfix:
///     - expect: steps[0] (send from spammer): helo reply
///       kind: legitimate
///       why: Postfix's HELO reply does not echo the client's name and address.
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownDifference {
    /// The start of the missed expectation's name as reports print it
    /// (`expect.relay_log[0]`, `steps[0] (send from spammer): rcpt[0] reply`).
    pub expect: String,
    /// `legitimate` or `bug`.
    pub kind: DifferenceKind,
    /// Why, in a sentence a mail administrator can check.
    pub why: String,
}

pub use reports::DifferenceKind;
