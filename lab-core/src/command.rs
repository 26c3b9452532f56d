//! Parsing one SMTP command line (RFC 5321 4.1.1), for every server in the lab.
//!
//! A command is a four-letter verb, case-insensitive, optionally followed by
//! arguments. `MAIL` and `RCPT` carry a path after `FROM:` / `TO:` and then
//! optional ESMTP parameters (`SIZE=123`, `BODY=8BITMIME`, RFC 5321 4.1.2).
//!
//! The parser reads leniently, the way Sendmail does: blanks before the verb
//! are skipped, any blank separates words, a path may be bare or glued to its
//! parameters, and paths are kept exactly as typed (brackets and all) since a
//! server may echo the client's spelling (`250 2.1.0 <a@b>... Sender ok`);
//! [`strip_path`](crate::envelope::strip_path) gives the address. Whatever it
//! let through that a stricter reader would refuse is noted in [`Quirks`], so
//! each server decides for itself how strict it is.
//!
//! Parsing never fails: a line whose verb we do not know becomes
//! [`Command::Unknown`]; a known verb whose arguments cannot be read at all
//! (HELO without a name, MAIL without a path) becomes [`Command::Invalid`].

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `HELO <domain>`: the argument as typed, trimmed; it may hold more
    /// than one word (Sendmail uses the first).
    Helo(String),
    /// `EHLO <domain>`: as [`Command::Helo`], asking for the extension list.
    Ehlo(String),
    /// `MAIL FROM:<path> [params]`.
    Mail {
        /// The reverse-path as typed, with or without brackets; `<>` is the
        /// null sender used by bounces (RFC 5321 4.5.5).
        path: String,
        /// ESMTP parameters as given (`SIZE=123`), not interpreted.
        params: Vec<String>,
    },
    /// `RCPT TO:<path> [params]`.
    Rcpt {
        /// The forward-path as typed, with or without brackets.
        path: String,
        /// ESMTP parameters as given (`NOTIFY=NEVER`), not interpreted.
        params: Vec<String>,
    },
    /// `DATA`: the message follows after a `354`.
    Data,
    /// `RSET`: abort the current transaction.
    Rset,
    /// `NOOP` (any argument is ignored, RFC 5321 4.1.1.9).
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY <string>`; the argument may be empty.
    Vrfy(String),
    /// `EXPN <string>`.
    Expn(String),
    /// `VERB` (Sendmail's verbose mode).
    Verb,
    /// `ETRN <string>` (RFC 1985).
    Etrn(String),
    /// `HELP [topic]`; the topic may be empty.
    Help(String),
    /// A verb we do not know, or an empty line: the whole line, for the reply.
    Unknown(String),
    /// A known verb with arguments that cannot be read: `HELO`/`EHLO`
    /// without a name, `MAIL`/`RCPT` without `FROM:`/`TO:` and a path.
    Invalid {
        /// The verb, upper-case (`"MAIL"`).
        verb: &'static str,
        /// The text after the verb as typed, trimmed (Sendmail quotes it).
        args: String,
        /// What was wrong, for logs and transcripts (not sent on the wire).
        reason: &'static str,
    },
}

/// What the lenient reading let through that RFC 5321's syntax does not allow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Blanks before the verb (`" QUIT"`), or a blank other than space or tab
    /// between the verb and its arguments (`"HELO\x0bx"`).
    pub odd_spacing: bool,
    /// Arguments after a verb that takes none (`DATA now`, `RSET x`).
    pub stray_args: bool,
    /// A bracketed path followed by something other than space or tab
    /// (`MAIL FROM:<a@b>SIZE=1`).
    pub glued_path: bool,
    /// A `<` inside the path (`<a<b>`, `a<b`), which Sendmail refuses.
    pub angle_in_path: bool,
}

/// One command line as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The command.
    pub command: Command,
    /// The text after the verb as typed, trimmed (`FROM:<a@b> SIZE=1`).
    pub args: String,
    /// What a stricter reader would refuse.
    pub quirks: Quirks,
}

impl Parsed {
    /// The command, refused: a [`Command::Invalid`] for the same verb and
    /// arguments, for a server that will not accept one of its [`Quirks`].
    /// An unknown line stays [`Command::Unknown`].
    pub fn refuse(self, reason: &'static str) -> Command {
        match self.command.verb() {
            Some(verb) => Command::Invalid { verb, args: self.args, reason },
            None => self.command,
        }
    }
}

/// The verbs we know, upper-case, with the lower-case name Sendmail's log uses.
const VERBS: [(&str, &str); 13] = [
    ("HELO", "helo"),
    ("EHLO", "ehlo"),
    ("MAIL", "mail"),
    ("RCPT", "rcpt"),
    ("DATA", "data"),
    ("RSET", "rset"),
    ("NOOP", "noop"),
    ("QUIT", "quit"),
    ("VRFY", "vrfy"),
    ("EXPN", "expn"),
    ("VERB", "verb"),
    ("ETRN", "etrn"),
    ("HELP", "help"),
];

impl Command {
    /// The verb, upper-case (`"RCPT"`); `None` for [`Command::Unknown`].
    pub fn verb(&self) -> Option<&'static str> {
        Some(match self {
            Command::Helo(_) => "HELO",
            Command::Ehlo(_) => "EHLO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::Vrfy(_) => "VRFY",
            Command::Expn(_) => "EXPN",
            Command::Verb => "VERB",
            Command::Etrn(_) => "ETRN",
            Command::Help(_) => "HELP",
            Command::Invalid { verb, .. } => verb,
            Command::Unknown(_) => return None,
        })
    }

    /// Lower-case command name, as Sendmail's log says `after rcpt`;
    /// `"unknown"` for [`Command::Unknown`].
    pub fn name(&self) -> &'static str {
        self.verb().and_then(|v| VERBS.iter().find(|(upper, _)| *upper == v)).map_or("unknown", |(_, lower)| lower)
    }
}

/// Parse one line, without its CRLF.
pub fn parse(line: &str) -> Parsed {
    let trimmed = line.trim_start();
    let (verb, rest) = match trimmed.find(char::is_whitespace) {
        Some(i) => trimmed.split_at(i),
        None => (trimmed, ""),
    };
    let args = rest.trim();
    let mut quirks = Quirks {
        odd_spacing: trimmed.len() != line.len() || (!args.is_empty() && !rest.starts_with([' ', '\t'])),
        ..Quirks::default()
    };
    let upper = verb.to_ascii_uppercase();
    let Some(&(verb, _)) = VERBS.iter().find(|(v, _)| *v == upper) else {
        return Parsed { command: Command::Unknown(line.to_string()), args: args.to_string(), quirks };
    };
    let invalid = |reason| Command::Invalid { verb, args: args.to_string(), reason };
    let command = match verb {
        "HELO" | "EHLO" if args.is_empty() => invalid("domain name required"),
        "HELO" => Command::Helo(args.to_string()),
        "EHLO" => Command::Ehlo(args.to_string()),
        "MAIL" | "RCPT" => match path_after(args, if verb == "MAIL" { "FROM:" } else { "TO:" }) {
            Ok(p) => {
                quirks.glued_path = p.glued;
                quirks.angle_in_path = p.path.strip_prefix('<').unwrap_or(p.path).contains('<');
                let (path, params) = (p.path.to_string(), p.params);
                if verb == "MAIL" {
                    Command::Mail { path, params }
                } else {
                    Command::Rcpt { path, params }
                }
            }
            Err(reason) => invalid(reason),
        },
        "DATA" | "RSET" => {
            quirks.stray_args = !args.is_empty();
            if verb == "DATA" {
                Command::Data
            } else {
                Command::Rset
            }
        }
        "NOOP" => Command::Noop,
        "QUIT" => Command::Quit,
        "VRFY" => Command::Vrfy(args.to_string()),
        "EXPN" => Command::Expn(args.to_string()),
        "VERB" => Command::Verb,
        "ETRN" => Command::Etrn(args.to_string()),
        _ => Command::Help(args.to_string()),
    };
    Parsed { command, args: args.to_string(), quirks }
}

/// A path and its parameters, as [`path_after`] found them.
struct PathArgs<'a> {
    path: &'a str,
    params: Vec<String>,
    glued: bool,
}

/// Read `FROM:<path> params` (or `TO:`): the keyword is case-insensitive and
/// may be followed by blanks (`MAIL FROM: <a@b>` is common in the wild even
/// though RFC 5321 4.1.2 has no space there). The path is normally bracketed
/// and ends at the first `>`; a bare address, ending at a blank, is accepted
/// as Sendmail does.
fn path_after<'a>(args: &'a str, keyword: &str) -> Result<PathArgs<'a>, &'static str> {
    let head = args.get(..keyword.len()).ok_or("missing keyword")?;
    if !head.eq_ignore_ascii_case(keyword) {
        return Err("missing keyword");
    }
    let rest = args[keyword.len()..].trim_start();
    let (path, tail) = if rest.starts_with('<') {
        let end = rest.find('>').ok_or("unbalanced <")?;
        rest.split_at(end + 1)
    } else {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if end == 0 {
            return Err("missing path");
        }
        rest.split_at(end)
    };
    Ok(PathArgs {
        path,
        params: tail.split_whitespace().map(str::to_string).collect(),
        glued: path.starts_with('<') && !tail.is_empty() && !tail.starts_with([' ', '\t']),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::strip_path;

    /// The command alone, when the quirks do not matter.
    fn cmd(line: &str) -> Command {
        parse(line).command
    }

    fn mail(path: &str, params: &[&str]) -> Command {
        Command::Mail { path: path.into(), params: params.iter().map(|s| s.to_string()).collect() }
    }

    fn rcpt(path: &str, params: &[&str]) -> Command {
        Command::Rcpt { path: path.into(), params: params.iter().map(|s| s.to_string()).collect() }
    }

    /// The address of a MAIL or RCPT line, brackets stripped.
    fn address(line: &str) -> String {
        match cmd(line) {
            Command::Mail { path, .. } | Command::Rcpt { path, .. } => strip_path(&path).to_string(),
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn quirks(line: &str) -> Quirks {
        parse(line).quirks
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(cmd("ehlo client.example"), Command::Ehlo("client.example".into()));
        assert_eq!(cmd("HeLo x"), Command::Helo("x".into()));
        assert_eq!(cmd("data"), Command::Data);
        assert_eq!(cmd("Quit"), Command::Quit);
        assert_eq!(cmd("QuIt"), Command::Quit);
        assert_eq!(cmd("noop whatever"), Command::Noop);
        assert_eq!(cmd("rset "), Command::Rset);
        assert_eq!(cmd("expn staff"), Command::Expn("staff".into()));
        assert_eq!(cmd("Verb"), Command::Verb);
        assert_eq!(cmd("etrn example.com"), Command::Etrn("example.com".into()));
        assert_eq!(cmd("help mail"), Command::Help("mail".into()));
        assert_eq!(cmd("HELP"), Command::Help("".into()));
        assert_eq!(cmd("VRFY root"), Command::Vrfy("root".into()));
    }

    #[test]
    fn hello_keeps_the_whole_argument() {
        assert_eq!(cmd("ehlo  client.example "), Command::Ehlo("client.example".into()));
        assert_eq!(cmd("HELO a b"), Command::Helo("a b".into()));
    }

    #[test]
    fn keeps_addresses_as_typed() {
        assert_eq!(cmd("MAIL From:<Im@lying.com> SIZE=108"), mail("<Im@lying.com>", &["SIZE=108"]));
        assert_eq!(cmd("mail from: Im@lying.com"), mail("Im@lying.com", &[]));
        assert_eq!(cmd("rcpt to: john@sysiphus.com"), rcpt("john@sysiphus.com", &[]));
        assert_eq!(cmd("MAIL FROM:<>"), mail("<>", &[]));
    }

    #[test]
    fn mail_from_variants() {
        assert_eq!(cmd("MAIL FROM:<a@b>"), mail("<a@b>", &[]));
        assert_eq!(cmd("mail from:<a@b> SIZE=123 BODY=8BITMIME"), mail("<a@b>", &["SIZE=123", "BODY=8BITMIME"]));
        assert_eq!(cmd("MAIL FROM: <a@b>"), mail("<a@b>", &[]));
        assert_eq!(cmd("MAIL FROM:a@b"), mail("a@b", &[]));
        for (line, addr) in
            [("MAIL FROM:<a@b>", "a@b"), ("MAIL FROM: <a@b>", "a@b"), ("MAIL FROM:<>", ""), ("MAIL FROM:a@b", "a@b")]
        {
            assert_eq!(address(line), addr, "{line:?}");
        }
    }

    #[test]
    fn rcpt_to_variants() {
        assert_eq!(cmd("RCPT TO:<x@y>"), rcpt("<x@y>", &[]));
        assert_eq!(cmd("rcpt to: <x@y> NOTIFY=NEVER"), rcpt("<x@y>", &["NOTIFY=NEVER"]));
        assert_eq!(address("rcpt to: <x@y> NOTIFY=NEVER"), "x@y");
        assert_eq!(address("RCPT TO:<>"), "");
    }

    #[test]
    fn unreadable_arguments_are_invalid_not_unknown() {
        for line in [
            "MAIL",
            "MAIL FROM",
            "MAIL TO:<a@b>",
            "MAIL FROM:<a@b",
            "MAIL FROM:",
            "RCPT",
            "RCPT TO:<x@y",
            "HELO",
            "EHLO   ",
            "MAIL FROMé",
        ] {
            assert!(matches!(cmd(line), Command::Invalid { .. }), "{line:?} should be invalid");
        }
        assert_eq!(
            cmd("MAIL TO:<x@y>"),
            Command::Invalid { verb: "MAIL", args: "TO:<x@y>".into(), reason: "missing keyword" }
        );
        assert_eq!(cmd("RCPT"), Command::Invalid { verb: "RCPT", args: "".into(), reason: "missing keyword" });
        assert_eq!(cmd("EHLO "), Command::Invalid { verb: "EHLO", args: "".into(), reason: "domain name required" });
    }

    #[test]
    fn quirks_note_what_a_strict_reader_refuses() {
        for line in ["MAIL FROM:<a@b> SIZE=1", "rcpt to: x@y", "DATA", "RSET ", "QUIT", "HELO\ta", "NOOP x"] {
            assert_eq!(quirks(line), Quirks::default(), "{line:?}");
        }
        let q = |odd_spacing, stray_args, glued_path, angle_in_path| Quirks {
            odd_spacing,
            stray_args,
            glued_path,
            angle_in_path,
        };
        assert_eq!(quirks(" QUIT"), q(true, false, false, false));
        assert_eq!(quirks("HELO\x0bx"), q(true, false, false, false));
        assert_eq!(quirks("DATA\x0b"), q(false, false, false, false));
        assert_eq!(quirks("DATA now"), q(false, true, false, false));
        assert_eq!(quirks("rset x"), q(false, true, false, false));
        assert_eq!(quirks("MAIL FROM:<a@b>SIZE=1"), q(false, false, true, false));
        assert_eq!(quirks("MAIL FROM:<a@b>\x0bSIZE=1"), q(false, false, true, false));
        assert_eq!(quirks("MAIL FROM:<a<b>"), q(false, false, false, true));
        assert_eq!(quirks("RCPT TO:a<b"), q(false, false, false, true));
        assert_eq!(quirks("RCPT TO:<a<b>x"), q(false, false, true, true));
        // The lenient reading is still a command.
        assert_eq!(cmd(" QUIT"), Command::Quit);
        assert_eq!(cmd("DATA now"), Command::Data);
        assert_eq!(cmd("MAIL FROM:<a@b>SIZE=1"), mail("<a@b>", &["SIZE=1"]));
        assert_eq!(cmd("MAIL FROM:<a<b>"), mail("<a<b>", &[]));
        assert_eq!(
            parse("MAIL FROM:<a<b>").refuse("< in path"),
            Command::Invalid { verb: "MAIL", args: "FROM:<a<b>".into(), reason: "< in path" }
        );
    }

    #[test]
    fn unknown_lines_are_kept_whole() {
        assert_eq!(cmd("XYZZY plugh"), Command::Unknown("XYZZY plugh".into()));
        assert_eq!(cmd("MAILFROM:<a@b>"), Command::Unknown("MAILFROM:<a@b>".into()));
        assert_eq!(cmd(""), Command::Unknown("".into()));
        assert_eq!(cmd("Received: from forged"), Command::Unknown("Received: from forged".into()));
        assert_eq!(cmd("From: hal@deer-run.com"), Command::Unknown("From: hal@deer-run.com".into()));
        assert_eq!(cmd("."), Command::Unknown(".".into()));
        assert_eq!(parse("XYZZY").refuse("unused"), Command::Unknown("XYZZY".into()));
    }

    #[test]
    fn names_are_lower_case_verbs() {
        assert_eq!(cmd("RCPT TO:<x@y>").name(), "rcpt");
        assert_eq!(cmd("HELO").name(), "helo");
        assert_eq!(cmd("bogus").name(), "unknown");
        assert_eq!(cmd("bogus").verb(), None);
        assert_eq!(cmd("etrn x").verb(), Some("ETRN"));
    }

    #[test]
    fn non_ascii_never_panics() {
        assert_eq!(cmd("MAIL FROM:éa@b"), mail("éa@b", &[]));
        assert!(matches!(cmd("RCPT TOé"), Command::Invalid { .. }));
        assert_eq!(cmd("é"), Command::Unknown("é".into()));
    }
}
