//! Addresses: the tables that rewrite or expand them before routing.
//!
//! Talks to nothing: pure lookups over the profile's tables.
//! - [`domaintable`]: canonical domain for parallel names, envelope and headers (spec §3.7);
//! - [`virtusertable`]: virtual users and domains, envelope recipient only (spec §3.8);
//! - [`aliases`]: local names to lists, `:include:` files, `owner-` (spec §10.1, §10.3);
//! - [`masquerade`]: `MASQUERADE_AS` and friends on the way out (spec §3.5);
//! - [`headers`]: rewriting the addresses inside `From:`/`To:`-type headers.

pub mod aliases;
pub mod domaintable;
pub mod headers;
pub mod masquerade;
pub mod virtusertable;

pub use aliases::{AliasTarget, Aliases, AliasesError};
pub use domaintable::{Domaintable, DomaintableError};
pub use masquerade::Masquerade;
pub use virtusertable::{VirtTarget, Virtusertable, VirtusertableError};

/// One entry line of a table in the profile's text form (`mailertable`,
/// `domaintable`, `virtusertable`, `aliases`, `access`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableLine<'a> {
    /// The line as given.
    pub raw: &'a str,
    /// The line trimmed: never blank, never a `#` comment.
    pub text: &'a str,
}

/// The entry lines of a table, in order; blank lines and `#` comments are
/// skipped.
pub(crate) fn table_lines<S: AsRef<str>>(lines: &[S]) -> impl Iterator<Item = TableLine<'_>> {
    lines.iter().filter_map(|raw| {
        let raw = raw.as_ref();
        let text = raw.trim();
        (!text.is_empty() && !text.starts_with('#')).then_some(TableLine { raw, text })
    })
}

/// Split `user@domain` at the last `@`: `(user, Some(domain))`, or
/// `(addr, None)` for a bare local name. The domain is lower-cased, without
/// a trailing dot.
pub fn split(addr: &str) -> (&str, Option<String>) {
    match addr.rsplit_once('@') {
        Some((u, d)) if !d.is_empty() => (u, Some(d.trim_end_matches('.').to_ascii_lowercase())),
        _ => (addr, None),
    }
}

/// `user@domain`.
pub fn join(user: &str, domain: &str) -> String {
    format!("{user}@{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join() {
        assert_eq!(split("Hal@Sysiphus.COM."), ("Hal", Some("sysiphus.com".to_string())));
        assert_eq!(split("a%b@c@d.com"), ("a%b@c", Some("d.com".to_string())));
        assert_eq!(split("eve"), ("eve", None));
        assert_eq!(split("eve@"), ("eve@", None));
        assert_eq!(join("eve", "sysiphus.com"), "eve@sysiphus.com");
    }
}
