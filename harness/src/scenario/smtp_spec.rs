//! `hosts.<name>.smtp`: what a virtual host's SMTP port does.
//!
//! A word (`accept`, `down`, `blackhole`, `greylist`) or a mapping:
//!
//! ```yaml
//! smtp:
//!   behaviour: scripted                 # optional; inferred from the keys
//!   banner: "554 5.3.2 not accepting messages"
//!   mail: { reply: "451 4.3.0 try later", times: 2 }
//!   rcpt: { "bad@x.example": "550 5.1.1 unknown", "*": accept }
//!   data_end: disconnect
//!   delay: { mail: 1s }
//!   greylist: { delay: 2s, prefix: 24 }
//!   down: [0s, 2s]
//!   forward: { to: b@two.example }
//! ```

use super::duration::LabDuration;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// What a host's SMTP port does.
#[derive(Debug, Clone, PartialEq)]
pub enum SmtpSpec {
    /// An MX sink that accepts every message and records it.
    Accept,
    /// Nothing listens: connections are refused.
    Down,
    /// A sink with scripted behaviour (which may also be plain accept).
    Mapping(Box<SmtpMapping>),
}

impl SmtpSpec {
    /// True when something listens on the port (at least some of the time).
    pub fn listens(&self) -> bool {
        !matches!(self, SmtpSpec::Down)
    }

    /// True when the host may receive mail (for `expect.delivered[].at`).
    pub fn can_receive(&self) -> bool {
        match self {
            SmtpSpec::Accept => true,
            SmtpSpec::Down => false,
            SmtpSpec::Mapping(m) => m.behaviour != Some(BehaviourWord::Blackhole),
        }
    }

    /// The mapping form of this spec.
    pub fn mapping(&self) -> Option<&SmtpMapping> {
        match self {
            SmtpSpec::Mapping(m) => Some(m),
            _ => None,
        }
    }

    /// What the host sends back through the relay, if anything: `forward`, `list`, `autoresponder`.
    pub fn reaction_kind(&self) -> Option<&'static str> {
        let m = self.mapping()?;
        if m.forward.is_some() {
            Some("forward")
        } else if m.list.is_some() {
            Some("list")
        } else if m.autoresponder.is_some() {
            Some("autoresponder")
        } else {
            None
        }
    }
}

/// The named behaviours (`behaviour:` or the one-word form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BehaviourWord {
    /// A healthy MX.
    Accept,
    /// Per-phase rules.
    Scripted,
    /// Greylisting (defaults unless `greylist:` says otherwise).
    Greylist,
    /// Accepts TCP, never speaks.
    Blackhole,
    /// Nothing listens.
    Down,
    /// Sends accepted mail on.
    Forward,
    /// A mailing list.
    List,
    /// An auto-responder.
    Autoresponder,
}

/// The mapping form.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpMapping {
    /// A name for the behaviour; checked against the keys given.
    #[serde(default)]
    pub behaviour: Option<BehaviourWord>,
    /// Right after the TCP accept: `disconnect`, `silence`, or a delay rule.
    #[serde(default)]
    pub connect: Option<RuleSpec>,
    /// The greeting: a reply instead of `220`.
    #[serde(default)]
    pub banner: Option<RuleSpec>,
    /// HELO and EHLO.
    #[serde(default, alias = "ehlo")]
    pub helo: Option<RuleSpec>,
    /// MAIL FROM.
    #[serde(default)]
    pub mail: Option<RuleSpec>,
    /// RCPT TO: one rule, or rules by recipient.
    #[serde(default)]
    pub rcpt: Option<RcptRules>,
    /// DATA (before 354).
    #[serde(default)]
    pub data: Option<RuleSpec>,
    /// After the final dot.
    #[serde(default)]
    pub data_end: Option<RuleSpec>,
    /// QUIT.
    #[serde(default)]
    pub quit: Option<RuleSpec>,
    /// Extra waits before answering a phase: `{ mail: 1s }`.
    #[serde(default)]
    pub delay: BTreeMap<String, LabDuration>,
    /// Greylisting at RCPT.
    #[serde(default)]
    pub greylist: Option<GreylistSpec>,
    /// Outage windows, counted from the lab's start: `[0s, 2s]` or `[[0s, 2s], [5s, 6s]]`.
    #[serde(default)]
    pub down: Option<Windows>,
    /// Whether recipient addresses may name faults (`tempfail-451@`); default true.
    #[serde(default)]
    pub address_faults: Option<bool>,
    /// Send accepted mail on through the relay (alias, `.forward`).
    #[serde(default)]
    pub forward: Option<ForwardSpec>,
    /// Explode mail to a list address to its members, through the relay.
    #[serde(default)]
    pub list: Option<ListSpec>,
    /// Answer the sender of accepted mail, through the relay.
    #[serde(default)]
    pub autoresponder: Option<AutoresponderSpec>,
    /// The most messages this host sends on in one lab (default 50); a loop
    /// the relay does not stop is cut here and reported.
    #[serde(default)]
    pub max_sent: Option<usize>,
}

/// One scripted rule: `"550 5.1.1 unknown"`, `disconnect`, `silence`,
/// `accept`, or `{ reply: ..., times: 2, delay: 1s }`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// The reply or action word.
    pub reply: String,
    /// Apply to the first `n` matching commands only.
    pub times: Option<u32>,
    /// Wait first.
    pub delay: Option<LabDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleMap {
    #[serde(default)]
    reply: Option<String>,
    #[serde(default)]
    times: Option<u32>,
    #[serde(default)]
    delay: Option<LabDuration>,
}

const RULE_HELP: &str = "expected a reply such as \"550 5.1.1 unknown\", a word (accept, disconnect, silence), \
     or a mapping { reply: ..., times: N, delay: 1s }";

fn scalar_text(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl RuleSpec {
    fn from_value(v: serde_yaml::Value) -> Result<RuleSpec, String> {
        if let Some(s) = scalar_text(&v) {
            mock_hosts::Action::parse(&s)?;
            return Ok(RuleSpec { reply: s, times: None, delay: None });
        }
        if !v.is_mapping() {
            return Err(RULE_HELP.into());
        }
        let m: RuleMap = serde_yaml::from_value(v).map_err(|e| format!("{e}; {RULE_HELP}"))?;
        let reply = m.reply.unwrap_or_else(|| "accept".into());
        mock_hosts::Action::parse(&reply)?;
        Ok(RuleSpec { reply, times: m.times, delay: m.delay })
    }
}

impl<'de> Deserialize<'de> for RuleSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        RuleSpec::from_value(v).map_err(D::Error::custom)
    }
}

/// RCPT rules: one for every recipient, or rules by recipient
/// (`"bad@x"`, `"@domain"`, `"*"`).
#[derive(Debug, Clone, PartialEq)]
pub enum RcptRules {
    /// One rule for all.
    All(RuleSpec),
    /// By recipient, tried in order.
    By(Vec<(String, RuleSpec)>),
}

impl<'de> Deserialize<'de> for RcptRules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        let by_recipient =
            v.as_mapping().is_some_and(|m| m.keys().any(|k| k.as_str().is_some_and(|k| k.contains('@') || k == "*")));
        if !by_recipient {
            return RuleSpec::from_value(v).map(RcptRules::All).map_err(|e| {
                D::Error::custom(format!(
                    "{e}; or rules by recipient such as {{ \"bad@x.example\": \"550 5.1.1 unknown\" }}"
                ))
            });
        }
        let mut out = Vec::new();
        for (k, rule) in v.as_mapping().into_iter().flatten() {
            let key = k.as_str().ok_or_else(|| D::Error::custom("rcpt: recipient keys must be text"))?;
            mock_hosts::RcptPattern::parse(key).map_err(|e| D::Error::custom(format!("rcpt: {e}")))?;
            let rule = RuleSpec::from_value(rule.clone()).map_err(|e| D::Error::custom(format!("rcpt.{key}: {e}")))?;
            out.push((key.to_string(), rule));
        }
        Ok(RcptRules::By(out))
    }
}

/// Greylisting, as postgrey and milter-greylist do it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreylistSpec {
    /// How long a new triplet waits before a retry passes (default 300s, postgrey's).
    #[serde(default)]
    pub delay: Option<LabDuration>,
    /// Track IPv4 clients by this many bits: 32 (the address, default) or 24 (the /24, for server farms).
    #[serde(default)]
    pub prefix: Option<u8>,
    /// The deferral code (default 451).
    #[serde(default)]
    pub code: Option<u16>,
    /// Once a triplet passed, its client passes from then on (default false).
    #[serde(default)]
    pub auto_whitelist: bool,
    /// Senders never greylisted (`a@b`, `@domain`).
    #[serde(default)]
    pub whitelist: Vec<String>,
}

/// Outage windows: one `[from, until]` pair or a list of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Windows(pub Vec<(LabDuration, LabDuration)>);

impl<'de> Deserialize<'de> for Windows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(LabDuration, LabDuration),
            Many(Vec<(LabDuration, LabDuration)>),
        }
        match Raw::deserialize(d) {
            Ok(Raw::One(a, b)) => Ok(Windows(vec![(a, b)])),
            Ok(Raw::Many(v)) => Ok(Windows(v)),
            Err(_) => Err(D::Error::custom(
                "expected an outage window [from, until] such as [0s, 2s], or a list of them [[0s, 2s], [5s, 6s]]",
            )),
        }
    }
}

/// An alias or `.forward`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSpec {
    /// New recipients (default: the same recipients again).
    #[serde(default, deserialize_with = "super::model::opt_list")]
    pub to: Vec<String>,
    /// Remove every `Received:` before sending on, so hop counting cannot stop a loop (default false).
    #[serde(default)]
    pub strip_received: bool,
    /// Add the host's own `Received:` (default true).
    #[serde(default)]
    pub add_received: Option<bool>,
}

/// A mailing list.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSpec {
    /// The list's address.
    pub address: String,
    /// The members.
    #[serde(deserialize_with = "super::model::opt_list")]
    pub members: Vec<String>,
    /// Envelope sender of the copies (default `owner-<list>@<domain>`; the
    /// list's own address makes a list that re-mails its bounces).
    #[serde(default)]
    pub sender: Option<String>,
    /// `Precedence:` set on the copies (`list`, `bulk`); default none.
    #[serde(default)]
    pub precedence: Option<String>,
    /// Add the host's own `Received:` (default true).
    #[serde(default)]
    pub add_received: Option<bool>,
}

/// An auto-responder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoresponderSpec {
    /// Obey RFC 3834 and natabot's rules (default true).
    #[serde(default = "yes")]
    pub obey_rules: bool,
    /// Envelope sender of replies (default `<>` when obeying, else the responder's own address).
    #[serde(default)]
    pub sender: Option<String>,
    /// The reply's subject (default `FYI -- Invalid Address`).
    #[serde(default)]
    pub subject: Option<String>,
    /// Return the original below the reply text (default true).
    #[serde(default = "yes")]
    pub quote_original: bool,
}

fn yes() -> bool {
    true
}

impl<'de> Deserialize<'de> for SmtpSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        if let Some(word) = v.as_str() {
            return match word {
                "accept" => Ok(SmtpSpec::Accept),
                "down" => Ok(SmtpSpec::Down),
                "blackhole" => Ok(SmtpSpec::Mapping(Box::new(SmtpMapping {
                    behaviour: Some(BehaviourWord::Blackhole),
                    ..SmtpMapping::default()
                }))),
                "greylist" => Ok(SmtpSpec::Mapping(Box::new(SmtpMapping {
                    behaviour: Some(BehaviourWord::Greylist),
                    greylist: Some(GreylistSpec::default()),
                    ..SmtpMapping::default()
                }))),
                other => Err(D::Error::custom(format!(
                    "smtp: expected accept, down, blackhole, greylist or a mapping of behaviours, found {other:?}"
                ))),
            };
        }
        if !v.is_mapping() {
            return Err(D::Error::custom(
                "smtp: expected accept, down, blackhole, greylist or a mapping of behaviours",
            ));
        }
        let m: SmtpMapping = serde_yaml::from_value(v).map_err(|e| D::Error::custom(format!("smtp: {e}")))?;
        if m.behaviour == Some(BehaviourWord::Down)
            && m == (SmtpMapping { behaviour: m.behaviour, ..SmtpMapping::default() })
        {
            return Ok(SmtpSpec::Down);
        }
        Ok(SmtpSpec::Mapping(Box::new(m)))
    }
}

impl SmtpMapping {
    /// Check that the keys fit together and with `behaviour`; `Err` names the problem.
    pub fn check(&self) -> Result<(), String> {
        let reactions = [self.forward.is_some(), self.list.is_some(), self.autoresponder.is_some()];
        if reactions.iter().filter(|r| **r).count() > 1 {
            return Err("give at most one of forward, list and autoresponder".into());
        }
        for phase in self.delay.keys() {
            if mock_hosts::Phase::parse(phase).is_none() {
                return Err(format!(
                    "delay.{phase}: unknown phase; expected connect, banner, helo, mail, rcpt, data, data_end or quit"
                ));
            }
        }
        let has_rules = self.connect.is_some()
            || self.banner.is_some()
            || self.helo.is_some()
            || self.mail.is_some()
            || self.rcpt.is_some()
            || self.data.is_some()
            || self.data_end.is_some()
            || self.quit.is_some()
            || !self.delay.is_empty();
        if let Some(g) = &self.greylist {
            if let Some(p) = g.prefix {
                if p == 0 || p > 32 {
                    return Err(format!(
                        "greylist.prefix: {p} is not a prefix length; use 32 (the address) or 24 (the /24)"
                    ));
                }
            }
            if let Some(c) = g.code {
                if !(400..500).contains(&c) {
                    return Err(format!("greylist.code: {c} is not a 4xx code"));
                }
            }
            for w in &g.whitelist {
                mock_hosts::RcptPattern::parse(w).map_err(|e| format!("greylist.whitelist: {e}"))?;
            }
        }
        if let Some(Windows(ws)) = &self.down {
            for (from, until) in ws {
                if until.0 <= from.0 {
                    return Err(format!("down: the window [{:?}, {:?}] ends before it starts", from.0, until.0));
                }
            }
        }
        if let Some(l) = &self.list {
            if l.members.is_empty() {
                return Err("list.members: a list needs at least one member".into());
            }
            if !l.address.contains('@') {
                return Err(format!("list.address: {:?} is not an address", l.address));
            }
        }
        let want = |what: bool, word: &str| {
            if what {
                Ok(())
            } else {
                Err(format!("behaviour: {word} needs a `{word}:` section"))
            }
        };
        match self.behaviour {
            None => Ok(()),
            Some(BehaviourWord::Accept) if has_rules || self.greylist.is_some() => {
                Err("behaviour: accept takes no rules; use behaviour: scripted (or leave behaviour out)".into())
            }
            Some(BehaviourWord::Down) => {
                Err("behaviour: down takes no other keys (use `down: [from, until]` for an outage window)".into())
            }
            Some(BehaviourWord::Blackhole) if has_rules || reactions.iter().any(|r| *r) => {
                Err("behaviour: blackhole never speaks, so it takes no rules".into())
            }
            Some(BehaviourWord::Forward) => want(self.forward.is_some(), "forward"),
            Some(BehaviourWord::List) => want(self.list.is_some(), "list"),
            Some(BehaviourWord::Autoresponder) => want(self.autoresponder.is_some(), "autoresponder"),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<SmtpSpec, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn words_and_mappings() {
        assert_eq!(parse("accept").unwrap(), SmtpSpec::Accept);
        assert_eq!(parse("down").unwrap(), SmtpSpec::Down);
        assert_eq!(parse("{ behaviour: down }").unwrap(), SmtpSpec::Down);
        let bh = parse("blackhole").unwrap();
        assert!(!bh.can_receive());
        assert!(parse("sometimes").unwrap_err().contains("expected accept, down, blackhole, greylist"));
        let m = parse(
            r#"{ behaviour: scripted, rcpt: { "bad@x": "550 5.1.1 unknown" }, data_end: "451 4.3.0 try later", delay: { mail: 1s } }"#,
        )
        .unwrap();
        let m = m.mapping().unwrap();
        assert_eq!(
            m.rcpt,
            Some(RcptRules::By(vec![(
                "bad@x".into(),
                RuleSpec { reply: "550 5.1.1 unknown".into(), times: None, delay: None }
            )]))
        );
        assert_eq!(m.data_end.as_ref().unwrap().reply, "451 4.3.0 try later");
        assert!(m.check().is_ok());
    }

    #[test]
    fn rules_in_every_form() {
        let m =
            parse("{ rcpt: { reply: \"452 4.2.2 full\", times: 2 }, mail: disconnect, data: { delay: 2s } }").unwrap();
        let m = m.mapping().unwrap();
        assert_eq!(
            m.rcpt,
            Some(RcptRules::All(RuleSpec { reply: "452 4.2.2 full".into(), times: Some(2), delay: None }))
        );
        assert_eq!(m.mail.as_ref().unwrap().reply, "disconnect");
        assert_eq!(m.data.as_ref().unwrap().reply, "accept");
        assert!(parse("{ mail: hangup }")
            .unwrap_err()
            .contains("expected `accept`, `disconnect`, `silence` or a reply"));
        assert!(parse("{ mail: { reply: \"250\", time: 2 } }").unwrap_err().contains("unknown field `time`"));
        assert!(parse("{ rcpt: { \"bad\": \"550\" } }").is_err());
        assert!(parse("{ down: [2s] }").unwrap_err().contains("outage window"));
        assert_eq!(
            parse("{ down: [[0s, 2s], [5s, 6s]] }").unwrap().mapping().unwrap().down.as_ref().unwrap().0.len(),
            2
        );
    }

    #[test]
    fn checks_say_what_is_wrong() {
        let err = |y: &str| parse(y).unwrap().mapping().unwrap().check().unwrap_err();
        assert!(err("{ behaviour: accept, mail: \"451\" }").contains("behaviour: accept takes no rules"));
        assert!(err("{ delay: { helo2: 1s } }").contains("delay.helo2: unknown phase"));
        assert!(err("{ greylist: { prefix: 33 } }").contains("greylist.prefix"));
        assert!(err("{ down: [3s, 1s] }").contains("ends before it starts"));
        assert!(err("{ behaviour: forward }").contains("needs a `forward:` section"));
        assert!(err("{ forward: {}, autoresponder: {} }").contains("at most one of"));
    }
}
