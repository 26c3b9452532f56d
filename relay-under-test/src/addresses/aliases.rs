//! The aliases file: local names to lists of targets (spec §10.1, §10.3).
//!
//! Talks to nothing. Lines `name: target, target, ...`; names are local
//! (never qualified) and matched without regard to case. A target is an
//! address, a local name (expanded again), `:include: <file>` (the file's
//! addresses, re-read per message; a lab has no filesystem, so file contents
//! come from the profile's `include_files`), a file `/path` or a program
//! `|command`. `owner-<name>` is where errors about `<name>` go: it becomes
//! the envelope sender of the expanded copies (`[S alias.c]`).

use super::{table_lines, TableLine};
use std::collections::{BTreeMap, HashMap};

/// One right-hand side item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasTarget {
    /// An address or local name, as written.
    Address(String),
    /// `:include: <path>`.
    Include(String),
    /// `/path`: append to a file.
    File(String),
    /// `|command`: pipe to a program.
    Program(String),
}

/// The parsed aliases, with the include files they read.
#[derive(Debug, Clone, Default)]
pub struct Aliases {
    map: HashMap<String, Vec<AliasTarget>>,
    includes: BTreeMap<String, String>,
}

/// Why the aliases were refused; messages quote the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AliasesError {
    /// An aliases line is malformed.
    #[error("aliases line {line:?}: {why}")]
    Line {
        /// The line as given.
        line: String,
        /// What is wrong and what would be right.
        why: String,
    },
    /// An `:include:` names a file that `include_files` does not hold.
    #[error("include file {path:?} (named in aliases line {line:?}) is not under include_files; add it: include_files: {{ \"{path}\": \"bob@example.com\\nalice@example.com\" }}")]
    MissingInclude {
        /// The path.
        path: String,
        /// The aliases line naming it.
        line: String,
    },
    /// An include file holds a malformed entry.
    #[error("include file {path:?}: entry {entry:?}: {why}")]
    IncludeEntry {
        /// The file.
        path: String,
        /// The entry.
        entry: String,
        /// What is wrong.
        why: String,
    },
}

/// Split a right-hand side at commas outside double quotes.
pub(crate) fn split_targets(rhs: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in rhs.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).collect()
}

fn parse_target(t: &str) -> Result<AliasTarget, String> {
    let unq = t.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(t);
    if let Some(path) = unq.strip_prefix(":include:") {
        let path = path.trim();
        if path.is_empty() {
            return Err(":include: without a file name".into());
        }
        return Ok(AliasTarget::Include(path.to_string()));
    }
    if let Some(cmd) = unq.strip_prefix('|') {
        if cmd.trim().is_empty() {
            return Err("| without a program".into());
        }
        return Ok(AliasTarget::Program(unq.to_string()));
    }
    if unq.starts_with('/') {
        return Ok(AliasTarget::File(unq.to_string()));
    }
    if unq.is_empty() {
        return Err("empty target (two commas in a row?)".into());
    }
    if unq.contains(char::is_whitespace) {
        return Err(format!("target {unq:?} has blanks; separate targets with commas"));
    }
    if unq.ends_with('@') || unq.starts_with('@') {
        return Err(format!("target {unq:?} is not an address"));
    }
    Ok(AliasTarget::Address(unq.to_string()))
}

/// Addresses in an include file: one or more per line, commas between,
/// `#` comments.
fn include_entries(text: &str) -> Vec<String> {
    text.lines().map(|l| l.split('#').next().unwrap_or("")).flat_map(split_targets).filter(|s| !s.is_empty()).collect()
}

impl Aliases {
    /// Parse alias lines (blank lines and `#` comments skipped) against the
    /// given include files.
    pub fn parse<S: AsRef<str>>(lines: &[S], includes: &BTreeMap<String, String>) -> Result<Aliases, AliasesError> {
        let mut map = HashMap::new();
        for TableLine { raw, text: line } in table_lines(lines) {
            let bad = |why: String| AliasesError::Line { line: raw.to_string(), why };
            let (name, rhs) = line
                .split_once(':')
                .ok_or_else(|| bad("no colon; write `name: target, target`, e.g. `staff: hal, laura`".into()))?;
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(bad(format!("alias name {name:?} must be one word before the colon")));
            }
            if name.contains('@') {
                return Err(bad(format!(
                    "alias name {name:?} has a domain; aliases apply to local names only, write it without @domain"
                )));
            }
            let mut targets = Vec::new();
            for t in split_targets(rhs) {
                let target = parse_target(&t).map_err(bad)?;
                if let AliasTarget::Include(path) = &target {
                    let text = includes
                        .get(path)
                        .ok_or_else(|| AliasesError::MissingInclude { path: path.clone(), line: raw.to_string() })?;
                    for e in include_entries(text) {
                        parse_target(&e).map_err(|why| AliasesError::IncludeEntry {
                            path: path.clone(),
                            entry: e.clone(),
                            why,
                        })?;
                    }
                }
                targets.push(target);
            }
            if map.insert(name.to_ascii_lowercase(), targets).is_some() {
                return Err(bad(format!("alias {name:?} is defined twice; merge the lines")));
            }
        }
        Ok(Aliases { map, includes: includes.clone() })
    }

    /// True when there are no aliases.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The targets of alias `name`, includes expanded in place.
    pub fn lookup(&self, name: &str) -> Option<Vec<AliasTarget>> {
        let targets = self.map.get(&name.to_ascii_lowercase())?;
        let mut out = Vec::new();
        for t in targets {
            match t {
                AliasTarget::Include(path) => {
                    let text = self.includes.get(path).map(String::as_str).unwrap_or("");
                    out.extend(include_entries(text).iter().filter_map(|e| parse_target(e).ok()));
                }
                other => out.push(other.clone()),
            }
        }
        Some(out)
    }

    /// The envelope sender for copies expanded from `name`: the `owner-<name>`
    /// alias's target when it is one plain address, else `owner-<name>`
    /// itself (`[S alias.c]`).
    pub fn owner(&self, name: &str) -> Option<String> {
        let lower = name.to_ascii_lowercase();
        let owner = if lower.starts_with("owner-") { "owner-owner".to_string() } else { format!("owner-{lower}") };
        match self.map.get(&owner)?.as_slice() {
            [AliasTarget::Address(a)] => Some(a.clone()),
            _ => Some(owner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn includes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn a(s: &str) -> AliasTarget {
        AliasTarget::Address(s.into())
    }

    #[test]
    fn the_course_aliases() {
        let inc = includes(&[("/lists/customer-list", "bob@x.com, carol@y.com\n# gone: ted@z.com\nalice@w.com\n")]);
        let al = Aliases::parse(
            &[
                "hal:            hal@deer-run.com",
                "staff:          hal,laura,jim,staff-archive",
                "staff-archive:  /var/archives/staff",
                "Postmaster:     staff",
                "info:           |/etc/mail/infobot",
                "customers:      :include: /lists/customer-list",
                "rock-pushers:   \"|/etc/mail/majordomo/wrapper resend -l rock-pushers rock-pushers-outgoing\"",
                "owner-rock-pushers: hal",
                "owner-staff: hal, laura",
            ],
            &inc,
        )
        .unwrap();
        assert_eq!(al.lookup("HAL"), Some(vec![a("hal@deer-run.com")]));
        assert_eq!(al.lookup("staff"), Some(vec![a("hal"), a("laura"), a("jim"), a("staff-archive")]));
        assert_eq!(al.lookup("postmaster"), Some(vec![a("staff")]));
        assert_eq!(al.lookup("staff-archive"), Some(vec![AliasTarget::File("/var/archives/staff".into())]));
        assert_eq!(al.lookup("info"), Some(vec![AliasTarget::Program("|/etc/mail/infobot".into())]));
        assert_eq!(al.lookup("customers"), Some(vec![a("bob@x.com"), a("carol@y.com"), a("alice@w.com")]));
        assert!(matches!(al.lookup("rock-pushers").unwrap()[0], AliasTarget::Program(_)));
        assert_eq!(al.lookup("nobody"), None);
        assert_eq!(al.owner("rock-pushers"), Some("hal".into()));
        assert_eq!(al.owner("staff"), Some("owner-staff".into()), "a list owner stays owner-<name>");
        assert_eq!(al.owner("hal"), None);
    }

    #[test]
    fn bad_lines_and_missing_includes() {
        let none = BTreeMap::new();
        for (line, hint) in [
            ("hal hal@deer-run.com", "no colon"),
            ("hal@sysiphus.com: hal@deer-run.com", "local names only"),
            ("staff: hal,,jim", "empty target"),
            ("staff: hal laura", "separate targets with commas"),
            ("two words: x", "one word"),
        ] {
            let e = Aliases::parse(&[line], &none).unwrap_err().to_string();
            assert!(e.starts_with(&format!("aliases line {line:?}")) && e.contains(hint), "{line}: {e}");
        }
        let e = Aliases::parse(&["x: a", "X: b"], &none).unwrap_err().to_string();
        assert!(e.contains("defined twice"), "{e}");
        let e = Aliases::parse(&["customers: :include: /lists/c"], &none).unwrap_err().to_string();
        assert!(e.starts_with("include file \"/lists/c\""), "{e}");
        let bad = includes(&[("/lists/c", "bob@x.com\nbad entry\n")]);
        let e = Aliases::parse(&["customers: :include:/lists/c"], &bad).unwrap_err().to_string();
        assert!(e.contains("entry \"bad entry\""), "{e}");
    }
}
