//! The routing decision for one recipient, in Sendmail's order (spec §3.1).
//!
//! Talks to nothing: DNS comes later, in delivery, for [`Route::Mx`] and
//! MX-looked-up hosts. For each recipient:
//! 1. `domaintable` makes the domain canonical (spec §3.7);
//! 2. `virtusertable`, for `virtuser_domains` and local domains, maps it to a
//!    new recipient (looked up again from step 1) or refuses it (spec §3.8);
//! 3. a local name (`$j`, `local_host_names`, or no domain) goes to
//!    `MAIL_HUB` if set, else is expanded by `aliases` (each target looked up
//!    again from step 1), else is a local user's mailbox, else goes to
//!    `LUSER_RELAY`, else is unknown (spec §3.1, §3.4, §10.1);
//! 4. otherwise `mailertable` (spec §3.3), then `SMART_HOST`, then MX routing
//!    of the domain (spec §3.2).

use super::mailer::{parse_relay_target, ErrorReply, HostSpec, Mailer};
use super::mailertable::{Mailertable, MailertableRoute};
use crate::addresses::headers::rewrite_headers;
use crate::addresses::masquerade::{Masquerade, Role};
use crate::addresses::{split, AliasTarget, Aliases, Domaintable, VirtTarget, Virtusertable};
use crate::profile::{RelayProfile, RoutingError};
use lab_core::Reply;

/// `MaxAliasRecursion`: how deep aliases may nest (`[S recipient.c]`, 8.13 default 10).
pub const MAX_ALIAS_RECURSION: u32 = 10;

/// Where one recipient goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// MX routing of this domain (mailer `esmtp`).
    Mx {
        /// The recipient domain.
        domain: String,
    },
    /// A fixed next hop: mailertable, `SMART_HOST`, `MAIL_HUB`, `LUSER_RELAY`.
    Host {
        /// The mailer.
        mailer: Mailer,
        /// The host.
        host: HostSpec,
    },
    /// This relay's own mailbox for a local user.
    Local {
        /// The user (lower case).
        user: String,
    },
    /// An alias target that is a file.
    File {
        /// The path.
        path: String,
        /// The alias that named it (the log's `ctladdr=`).
        alias: String,
    },
    /// An alias target that is a program.
    Program {
        /// The command, with its `|`.
        command: String,
        /// The alias that named it (the log's `ctladdr=`).
        alias: String,
    },
}

impl Route {
    /// The `mailer=` of this route.
    pub fn mailer(&self) -> Mailer {
        match self {
            Route::Mx { .. } => Mailer::Esmtp,
            Route::Host { mailer, .. } => *mailer,
            Route::Local { .. } => Mailer::Local,
            Route::File { .. } => Mailer::File,
            Route::Program { .. } => Mailer::Prog,
        }
    }
}

/// One resolved recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// What the log's `to=` shows: the recipient before any rewriting, or the
    /// alias target as written (spec §6.3).
    pub shown: String,
    /// The envelope recipient to send on, after every rewrite.
    pub addr: String,
    /// Where it goes.
    pub route: Route,
    /// Envelope sender of this copy when an `owner-` alias applies.
    pub owner: Option<String>,
    /// Alias levels passed through; each counts as a hop (spec §5.6).
    pub depth: u32,
}

/// Why a recipient is refused at RCPT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A mailertable or virtusertable `error:` entry matched.
    #[error("{}", .0.text)]
    Entry(ErrorReply),
    /// A local name with no alias, no user and no `LUSER_RELAY`.
    #[error("User unknown")]
    UserUnknown,
    /// Aliases nested deeper than `MaxAliasRecursion`.
    #[error("aliasing/forwarding loop broken ({depth} aliases deep; {MAX_ALIAS_RECURSION} max)")]
    TooDeep {
        /// How deep it got.
        depth: u32,
    },
    /// An alias (or virtual address) leads back to itself.
    #[error("aliasing/forwarding loop for {name} broken")]
    Loop {
        /// The alias or address met twice.
        name: String,
    },
}

impl Refusal {
    /// The RCPT reply, `path` as the client typed it.
    pub fn reply(&self, path: &str) -> Reply {
        match self {
            Refusal::Entry(e) => e.reply(path),
            Refusal::UserUnknown => Reply::new(550, format!("5.1.1 {path}... User unknown")),
            Refusal::TooDeep { .. } | Refusal::Loop { .. } => Reply::new(554, format!("5.4.6 {path}... {self}")),
        }
    }

    /// The log line text: `<path>... <why>`.
    pub fn log_text(&self, path: &str) -> String {
        format!("{path}... {self}")
    }
}

/// Everything routing and address rewriting needs, parsed once from the profile.
#[derive(Debug, Clone, Default)]
pub struct Router {
    hostname: String,
    local_names: Vec<String>,
    local_users: Vec<String>,
    mailertable: Mailertable,
    smart_host: Option<(Mailer, HostSpec)>,
    mail_hub: Option<(Mailer, HostSpec)>,
    luser_relay: Option<(Mailer, HostSpec)>,
    domaintable: Domaintable,
    virtusertable: Virtusertable,
    virtuser_domains: Vec<String>,
    aliases: Aliases,
    masquerade: Masquerade,
    accept_unqualified: bool,
}

fn norm(d: &str) -> String {
    d.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn relay_target(key: &'static str, v: &Option<String>) -> Result<Option<(Mailer, HostSpec)>, RoutingError> {
    v.as_deref()
        .map(|t| parse_relay_target(t).map_err(|why| RoutingError::RelayTarget { key, value: t.to_string(), why }))
        .transpose()
}

/// Walk state for one recipient.
#[derive(Default)]
struct Walk {
    out: Vec<Delivery>,
    /// Aliases being expanded, lower case.
    aliases: Vec<String>,
    /// Addresses virtusertable produced, lower case.
    virtual_seen: Vec<String>,
}

impl Walk {
    /// Record a delivery of the recipient `shown` (as given) to `addr` by `route`.
    fn deliver(&mut self, shown: &str, addr: String, route: Route, owner: Option<&str>, depth: u32) {
        self.out.push(Delivery { shown: shown.to_string(), addr, route, owner: owner.map(str::to_string), depth });
    }
}

impl Router {
    /// Parse the profile's routing and address keys.
    pub fn from_profile(p: &RelayProfile) -> Result<Router, RoutingError> {
        let mut local_names = vec![norm(&p.hostname)];
        local_names.extend(p.local_host_names.iter().map(|n| norm(n)));
        Ok(Router {
            hostname: norm(&p.hostname),
            local_names,
            local_users: p.local_users.iter().map(|u| u.trim().to_ascii_lowercase()).collect(),
            mailertable: Mailertable::parse(&p.mailertable)?,
            smart_host: relay_target("smart_host", &p.smart_host)?,
            mail_hub: relay_target("mail_hub", &p.mail_hub)?,
            luser_relay: relay_target("luser_relay", &p.luser_relay)?,
            domaintable: Domaintable::parse(&p.domaintable)?,
            virtusertable: Virtusertable::parse(&p.virtusertable)?,
            virtuser_domains: p.virtuser_domains.iter().map(|d| norm(d)).filter(|d| !d.is_empty()).collect(),
            aliases: Aliases::parse(&p.aliases, &p.include_files)?,
            masquerade: Masquerade::from_profile(p),
            accept_unqualified: p.accept_unqualified_senders,
        })
    }

    /// Whether `domain` is this host (`$j` or `local_host_names`).
    pub fn is_local(&self, domain: &str) -> bool {
        self.local_names.contains(&norm(domain))
    }

    /// Whether a recipient's domain is ours for the relay check though not
    /// a local name or relay domain: a `domaintable` left-hand side (spec
    /// §3.7) or a `virtuser_domains` entry (spec §3.8).
    pub fn is_ours(&self, addr: &str) -> bool {
        match split(addr) {
            (_, Some(d)) => self.domaintable.lookup(&d).is_some() || self.virtuser_domains.contains(&d),
            _ => false,
        }
    }

    /// A bare RCPT name under `accept_unqualified_senders`: qualified with
    /// the masquerade domain under allmasquerade, else with `$j` (spec §3.5).
    /// Anything else is returned as is.
    pub fn qualify_rcpt(&self, addr: &str) -> String {
        if self.accept_unqualified && !addr.is_empty() && !addr.contains('@') {
            self.masquerade.qualify_recipient(addr)
        } else {
            addr.to_string()
        }
    }

    /// Whether bare sender names are accepted (`FEATURE(accept_unqualified_senders)`).
    pub fn accepts_unqualified_senders(&self) -> bool {
        self.accept_unqualified
    }

    /// Resolve recipient `addr` (no brackets) into its deliveries, or the
    /// reason it is refused. `to=` shows `addr` unless an alias expands it.
    pub fn resolve(&self, addr: &str) -> Result<Vec<Delivery>, Refusal> {
        let mut w = Walk::default();
        self.walk(addr, addr, 0, None, &mut w)?;
        // Each address once (Sendmail's duplicate suppression).
        let mut seen: Vec<(String, Route)> = Vec::new();
        w.out.retain(|d| {
            let key = (d.addr.to_ascii_lowercase(), d.route.clone());
            let fresh = !seen.contains(&key);
            seen.push(key);
            fresh
        });
        Ok(w.out)
    }

    /// The refusal for recipient `addr` at RCPT, if any. Bare names are left
    /// to the relay check (which refuses them unless qualified before).
    pub fn refusal(&self, addr: &str) -> Option<Refusal> {
        if !addr.contains('@') {
            return None;
        }
        self.resolve(addr).err()
    }

    /// The deepest alias expansion of `addr` (0 when it is no alias).
    pub fn alias_depth(&self, addr: &str) -> u32 {
        self.resolve(addr).ok().and_then(|ds| ds.iter().map(|d| d.depth).max()).unwrap_or(0)
    }

    fn walk(&self, addr: &str, shown: &str, depth: u32, owner: Option<&str>, w: &mut Walk) -> Result<(), Refusal> {
        // 1. domaintable (spec §3.7).
        let addr = self.domaintable.rewrite(addr);
        let (user, domain) = split(&addr);
        let local = domain.as_deref().is_none_or(|d| self.is_local(d));
        // 2. virtusertable, before anything else (spec §3.1 step 5, §3.8).
        if let Some(d) = &domain {
            if local || self.virtuser_domains.contains(d) {
                match self.virtusertable.lookup(user, d) {
                    Some(VirtTarget::Error(e)) => return Err(Refusal::Entry(e)),
                    Some(VirtTarget::Address(next)) => {
                        let next = self.masquerade.qualify(&next);
                        w.virtual_seen.push(addr.to_ascii_lowercase());
                        if w.virtual_seen.contains(&next.to_ascii_lowercase())
                            || w.virtual_seen.len() as u32 > MAX_ALIAS_RECURSION
                        {
                            return Err(Refusal::Loop { name: next });
                        }
                        return self.walk(&next, shown, depth, owner, w);
                    }
                    None => {}
                }
            }
        }
        // 3. local names.
        if local {
            return self.local(user, shown, depth, owner, w);
        }
        let domain = domain.expect("not local, so qualified");
        // 4. mailertable, SMART_HOST, MX.
        let route = match self.mailertable.lookup(&domain) {
            Some(MailertableRoute::Error(e)) => return Err(Refusal::Entry(e)),
            Some(MailertableRoute::Local(u)) => {
                return self.local(u.as_deref().unwrap_or(user), shown, depth, owner, w);
            }
            Some(MailertableRoute::Relay(mailer, host)) => Route::Host { mailer, host },
            None => match &self.smart_host {
                Some((mailer, host)) => Route::Host { mailer: *mailer, host: host.clone() },
                None => Route::Mx { domain },
            },
        };
        w.deliver(shown, addr, route, owner, depth);
        Ok(())
    }

    fn local(&self, user: &str, shown: &str, depth: u32, owner: Option<&str>, w: &mut Walk) -> Result<(), Refusal> {
        // MAIL_HUB wins over local delivery: user@hub (spec §3.1, §3.4).
        if let Some((mailer, host)) = &self.mail_hub {
            let route = Route::Host { mailer: *mailer, host: host.clone() };
            w.deliver(shown, format!("{user}@{}", host.name()), route, owner, depth);
            return Ok(());
        }
        let lower = user.to_ascii_lowercase();
        if let Some(targets) = self.aliases.lookup(user) {
            if w.aliases.contains(&lower) {
                return Err(Refusal::Loop { name: user.to_string() });
            }
            let depth = depth + 1;
            if depth > MAX_ALIAS_RECURSION {
                return Err(Refusal::TooDeep { depth });
            }
            w.aliases.push(lower.clone());
            // The list's own owner, else the one of an enclosing list.
            let own = self.aliases.owner(user);
            let owner = own.as_deref().or(owner);
            for t in targets {
                match t {
                    // `name: name, other`: deliver to the user itself (`[S recipient.c]` QSELFREF).
                    AliasTarget::Address(a) if a.eq_ignore_ascii_case(user) => {
                        self.mailbox(user, &a, depth, owner, w)?;
                    }
                    AliasTarget::Address(a) => self.walk(&a, &a, depth, owner, w)?,
                    AliasTarget::File(path) => {
                        let route = Route::File { path: path.clone(), alias: lower.clone() };
                        w.deliver(&path, path.clone(), route, owner, depth)
                    }
                    AliasTarget::Program(command) => {
                        let route = Route::Program { command: command.clone(), alias: lower.clone() };
                        w.deliver(&command, command.clone(), route, owner, depth)
                    }
                    AliasTarget::Include(_) => unreachable!("Aliases::lookup expands includes"),
                }
            }
            w.aliases.pop();
            return Ok(());
        }
        self.mailbox(user, shown, depth, owner, w)
    }

    /// A local user's mailbox, else `LUSER_RELAY`, else unknown.
    fn mailbox(&self, user: &str, shown: &str, depth: u32, owner: Option<&str>, w: &mut Walk) -> Result<(), Refusal> {
        let lower = user.to_ascii_lowercase();
        let (addr, route) = if self.local_users.contains(&lower) {
            (format!("{user}@{}", self.hostname), Route::Local { user: lower })
        } else if let Some((mailer, host)) = &self.luser_relay {
            (format!("{user}@{}", host.name()), Route::Host { mailer: *mailer, host: host.clone() })
        } else {
            return Err(Refusal::UserUnknown);
        };
        w.deliver(shown, addr, route, owner, depth);
        Ok(())
    }

    /// The envelope sender as an SMTP mailer sends it: qualified,
    /// domaintable, masquerade_envelope (spec §3.5, §3.7).
    pub fn outbound_sender(&self, sender: &str) -> String {
        if sender.is_empty() {
            return String::new();
        }
        let q = self.domaintable.rewrite(&self.masquerade.qualify(sender));
        self.masquerade.envelope(&q, Role::Sender)
    }

    /// An envelope recipient as an SMTP mailer sends it (allmasquerade with
    /// masquerade_envelope).
    pub fn outbound_recipient(&self, addr: &str) -> String {
        self.masquerade.envelope(addr, Role::Recipient)
    }

    /// The message as an SMTP mailer sends it: address headers qualified,
    /// domaintable-rewritten and masqueraded (spec §3.5, §3.7).
    pub fn outbound_headers(&self, data: &[u8]) -> Vec<u8> {
        rewrite_headers(data, &|a, role| {
            let q = self.domaintable.rewrite(&self.masquerade.qualify(a));
            self.masquerade.header(&q, role)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn router(f: impl FnOnce(&mut RelayProfile)) -> Router {
        let mut p = RelayProfile::new("external.sysiphus.com");
        f(&mut p);
        Router::from_profile(&p).unwrap()
    }

    fn routes(r: &Router, addr: &str) -> Vec<(String, String, Route)> {
        r.resolve(addr).unwrap().into_iter().map(|d| (d.shown, d.addr, d.route)).collect()
    }

    fn mx(d: &str) -> Route {
        Route::Mx { domain: d.into() }
    }

    fn host(m: Mailer, h: &str) -> Route {
        Route::Host { mailer: m, host: HostSpec::parse(h).unwrap() }
    }

    #[test]
    fn mailertable_smart_host_and_mx_in_that_order() {
        let r = router(|p| {
            p.mailertable = vec!["sysiphus.com smtp:exch01.sysiphus.com".into()];
            p.smart_host = Some("[internal.sysiphus.com]".into());
        });
        assert_eq!(routes(&r, "a@sysiphus.com")[0].2, host(Mailer::Smtp, "exch01.sysiphus.com"));
        assert_eq!(routes(&r, "a@deer-run.com")[0].2, host(Mailer::Relay, "[internal.sysiphus.com]"));
        let plain = router(|_| {});
        assert_eq!(
            routes(&plain, "a@deer-run.com"),
            vec![("a@deer-run.com".into(), "a@deer-run.com".into(), mx("deer-run.com"))]
        );
    }

    #[test]
    fn virtusertable_before_mailertable_only_for_its_domains() {
        let r = router(|p| {
            p.virtusertable = vec![
                "sales@sysiphus.com sales@lists.sysiphus.com".into(),
                "@virtual.com marketing@sysiphus.com".into(),
            ];
            p.virtuser_domains = vec!["sysiphus.com".into()];
            p.mailertable = vec!["sysiphus.com smtp:exchange.sysiphus.com".into()];
        });
        // sales is rewritten and routed by MX of lists; to= keeps the old address.
        assert_eq!(
            routes(&r, "sales@sysiphus.com"),
            vec![("sales@sysiphus.com".into(), "sales@lists.sysiphus.com".into(), mx("lists.sysiphus.com"))]
        );
        assert_eq!(routes(&r, "bob@sysiphus.com")[0].2, host(Mailer::Smtp, "exchange.sysiphus.com"));
        // virtual.com is not in virtuser_domains: the table is not consulted.
        assert_eq!(routes(&r, "x@virtual.com")[0].2, mx("virtual.com"));
        assert!(r.is_ours("x@sysiphus.com") && !r.is_ours("x@virtual.com"));
    }

    #[test]
    fn nested_virtual_users_errors_and_loops() {
        let r = router(|p| {
            p.virtusertable = vec![
                "support@virtu.com support@responder.com".into(),
                "@responder.com resp@sysiphus.com".into(),
                "joe@bar.com error:nouser 550 No such user here".into(),
                "a@loop.com b@loop.com".into(),
                "b@loop.com a@loop.com".into(),
            ];
            p.virtuser_domains = vec!["virtu.com".into(), "responder.com".into(), "bar.com".into(), "loop.com".into()];
        });
        assert_eq!(routes(&r, "support@virtu.com")[0].1, "resp@sysiphus.com");
        assert_eq!(
            r.refusal("joe@bar.com").unwrap().reply("<joe@bar.com>").first_line(),
            "550 5.1.1 <joe@bar.com>... No such user here"
        );
        assert_eq!(r.refusal("a@loop.com"), Some(Refusal::Loop { name: "a@loop.com".into() }));
    }

    #[test]
    fn local_names_hub_aliases_users_luser_relay() {
        let r = router(|p| {
            p.local_users = vec!["hal".into()];
            p.aliases = vec![
                "staff: hal, laura@sysiphus.com, staff-archive".into(),
                "staff-archive: /var/archives/staff".into(),
                "info: |/etc/mail/infobot".into(),
                "hal2: hal2, hal".into(),
            ];
        });
        assert_eq!(routes(&r, "hal@external.sysiphus.com")[0].2, Route::Local { user: "hal".into() });
        assert_eq!(
            routes(&r, "staff@EXTERNAL.sysiphus.com"),
            vec![
                ("hal".into(), "hal@external.sysiphus.com".into(), Route::Local { user: "hal".into() }),
                ("laura@sysiphus.com".into(), "laura@sysiphus.com".into(), mx("sysiphus.com")),
                (
                    "/var/archives/staff".into(),
                    "/var/archives/staff".into(),
                    Route::File { path: "/var/archives/staff".into(), alias: "staff-archive".into() }
                ),
            ]
        );
        assert_eq!(r.resolve("staff@external.sysiphus.com").unwrap()[2].depth, 2);
        assert_eq!(
            routes(&r, "info@external.sysiphus.com")[0].2,
            Route::Program { command: "|/etc/mail/infobot".into(), alias: "info".into() }
        );
        assert_eq!(r.refusal("nobody@external.sysiphus.com"), Some(Refusal::UserUnknown));
        // An alias naming itself delivers to that name's mailbox: unknown here.
        assert_eq!(r.refusal("hal2@external.sysiphus.com"), Some(Refusal::UserUnknown));

        let hub = router(|p| {
            p.mail_hub = Some("internal.sysiphus.com".into());
            p.aliases = vec!["x: |/bin/sh -c evil".into()];
        });
        // The hub wins, even over aliases; the recipient becomes user@hub.
        assert_eq!(
            routes(&hub, "x@external.sysiphus.com"),
            vec![(
                "x@external.sysiphus.com".into(),
                "x@internal.sysiphus.com".into(),
                host(Mailer::Relay, "internal.sysiphus.com")
            )]
        );
        let luser = router(|p| p.luser_relay = Some("smtp:internal.sysiphus.com".into()));
        assert_eq!(routes(&luser, "jim@external.sysiphus.com")[0].1, "jim@internal.sysiphus.com");
        assert_eq!(routes(&luser, "jim@external.sysiphus.com")[0].2, host(Mailer::Smtp, "internal.sysiphus.com"));
    }

    #[test]
    fn alias_loops_depth_owner_and_duplicates() {
        let chain: Vec<String> = (0..12).map(|i| format!("a{i}: a{}", i + 1)).collect();
        let r = router(|p| {
            p.local_users = vec!["hal".into()];
            p.aliases = chain;
            p.aliases.extend(["ping: pong".to_string(), "pong: ping".into(), "a12: hal".into()]);
            p.aliases.extend([
                "list: hal, hal@external.sysiphus.com, ext@x.com".to_string(),
                "owner-list: boss@x.com".into(),
            ]);
        });
        assert_eq!(r.refusal("ping@external.sysiphus.com"), Some(Refusal::Loop { name: "ping".into() }));
        let deep = r.refusal("a0@external.sysiphus.com").unwrap();
        assert_eq!(
            deep.reply("<a0@external.sysiphus.com>").first_line(),
            "554 5.4.6 <a0@external.sysiphus.com>... aliasing/forwarding loop broken (11 aliases deep; 10 max)"
        );
        assert_eq!(r.alias_depth("a3@external.sysiphus.com"), 10);
        let list = r.resolve("list@external.sysiphus.com").unwrap();
        assert_eq!(list.len(), 2, "hal once: {list:?}");
        assert!(list.iter().all(|d| d.owner.as_deref() == Some("boss@x.com")));
    }

    #[test]
    fn domaintable_rewrites_and_counts_as_ours() {
        let r = router(|p| {
            p.domaintable = vec!["parallel.com sysiphus.com".into()];
            p.mailertable = vec!["sysiphus.com smtp:internal.sysiphus.com".into()];
        });
        assert_eq!(
            routes(&r, "hal@parallel.com"),
            vec![("hal@parallel.com".into(), "hal@sysiphus.com".into(), host(Mailer::Smtp, "internal.sysiphus.com"))]
        );
        assert!(r.is_ours("hal@parallel.com"));
        assert_eq!(r.outbound_sender("eve@parallel.com"), "eve@sysiphus.com");
        let out =
            r.outbound_headers(b"From: Hal <hal@parallel.com>\r\nTo: hal@parallel.com\r\n\r\nhal@parallel.com\r\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From: Hal <hal@sysiphus.com>\r\nTo: hal@sysiphus.com\r\n\r\nhal@parallel.com\r\n"
        );
    }

    #[test]
    fn unqualified_recipients_only_when_accepted() {
        let off = router(|_| {});
        assert_eq!(off.qualify_rcpt("alice"), "alice");
        assert_eq!(off.refusal("alice"), None, "left to the relay check");
        let on = router(|p| p.accept_unqualified_senders = true);
        assert_eq!(on.qualify_rcpt("alice"), "alice@external.sysiphus.com");
        let masq = router(|p| {
            p.accept_unqualified_senders = true;
            p.allmasquerade = true;
            p.masquerade_as = Some("sysiphus.com".into());
        });
        assert_eq!(masq.qualify_rcpt("alice"), "alice@sysiphus.com");
    }
}
