//! Parsing one SMTP command line (RFC 5321 4.1.1).
//!
//! A command is a four-letter verb, case-insensitive, optionally followed by a
//! space and arguments. `MAIL` and `RCPT` carry a path in angle brackets after
//! `FROM:` / `TO:` and then optional ESMTP parameters (`SIZE=123`,
//! `BODY=8BITMIME`, RFC 5321 4.1.2). Parsing never fails: a line that is not a
//! command we know becomes [`Command::Unknown`] (answered `500`), a known verb
//! with bad arguments becomes [`Command::Invalid`] (answered `501`).

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `HELO <domain>`: the client's name, plain SMTP.
    Helo(String),
    /// `EHLO <domain>`: the client's name, asking for the extension list.
    Ehlo(String),
    /// `MAIL FROM:<path> [params]`. `from` is the path without brackets; `""`
    /// is the null sender `<>` used by bounces (RFC 5321 4.5.5).
    Mail {
        /// The reverse-path without angle brackets.
        from: String,
        /// ESMTP parameters as given (`SIZE=123`), not interpreted.
        params: Vec<String>,
    },
    /// `RCPT TO:<path> [params]`.
    Rcpt {
        /// The forward-path without angle brackets.
        to: String,
        /// ESMTP parameters as given, not interpreted.
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
    /// `VRFY <string>`.
    Vrfy(String),
    /// `HELP [topic]`.
    Help,
    /// A verb we do not know, or an empty line: the whole line, for the reply.
    Unknown(String),
    /// A known verb with arguments we cannot parse.
    Invalid {
        /// The verb, upper-cased.
        verb: String,
        /// What was wrong, for logs and transcripts (not sent on the wire).
        reason: &'static str,
    },
}

impl Command {
    /// Parse one line, without its CRLF.
    pub fn parse(line: &str) -> Command {
        let trimmed = line.trim_end();
        let (verb, args) = match trimmed.find([' ', '\t']) {
            Some(i) => (&trimmed[..i], trimmed[i..].trim_start()),
            None => (trimmed, ""),
        };
        let upper = verb.to_ascii_uppercase();
        let invalid = |reason| Command::Invalid { verb: upper.clone(), reason };
        match upper.as_str() {
            "HELO" | "EHLO" if args.is_empty() => invalid("domain name required"),
            "HELO" => Command::Helo(args.to_string()),
            "EHLO" => Command::Ehlo(args.to_string()),
            "MAIL" => match path_after(args, "FROM:") {
                Ok((from, params)) => Command::Mail { from, params },
                Err(reason) => invalid(reason),
            },
            "RCPT" => match path_after(args, "TO:") {
                Ok((to, _)) if to.is_empty() => invalid("null recipient"),
                Ok((to, params)) => Command::Rcpt { to, params },
                Err(reason) => invalid(reason),
            },
            "DATA" if !args.is_empty() => invalid("DATA takes no arguments"),
            "DATA" => Command::Data,
            "RSET" if !args.is_empty() => invalid("RSET takes no arguments"),
            "RSET" => Command::Rset,
            "NOOP" => Command::Noop,
            "QUIT" => Command::Quit,
            "VRFY" if args.is_empty() => invalid("VRFY requires an argument"),
            "VRFY" => Command::Vrfy(args.to_string()),
            "HELP" => Command::Help,
            _ => Command::Unknown(line.to_string()),
        }
    }
}

/// Parse `FROM:<path> params` (or `TO:`): the keyword is case-insensitive and
/// may be followed by blanks (`MAIL FROM: <a@b>` is common in the wild even
/// though RFC 5321 4.1.2 has no space there). The path is normally bracketed;
/// a bare address is accepted, as Sendmail does.
fn path_after(args: &str, keyword: &str) -> Result<(String, Vec<String>), &'static str> {
    let head = args.get(..keyword.len()).ok_or("missing keyword")?;
    if !head.eq_ignore_ascii_case(keyword) {
        return Err("missing keyword");
    }
    let rest = args[keyword.len()..].trim_start();
    let (path, rest) = if let Some(inner) = rest.strip_prefix('<') {
        let close = inner.find('>').ok_or("unbalanced <")?;
        (&inner[..close], &inner[close + 1..])
    } else {
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        if end == 0 {
            return Err("missing path");
        }
        (&rest[..end], &rest[end..])
    };
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return Err("junk after path");
    }
    let params = rest.split_whitespace().map(str::to_string).collect();
    Ok((path.trim().to_string(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(from: &str, params: &[&str]) -> Command {
        Command::Mail { from: from.into(), params: params.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(Command::parse("ehlo client.example"), Command::Ehlo("client.example".into()));
        assert_eq!(Command::parse("HeLo x"), Command::Helo("x".into()));
        assert_eq!(Command::parse("data"), Command::Data);
        assert_eq!(Command::parse("Quit"), Command::Quit);
        assert_eq!(Command::parse("noop whatever"), Command::Noop);
        assert_eq!(Command::parse("rset "), Command::Rset);
    }

    #[test]
    fn mail_from_variants() {
        assert_eq!(Command::parse("MAIL FROM:<a@b>"), mail("a@b", &[]));
        assert_eq!(
            Command::parse("mail from:<a@b> SIZE=123 BODY=8BITMIME"),
            mail("a@b", &["SIZE=123", "BODY=8BITMIME"])
        );
        assert_eq!(Command::parse("MAIL FROM: <a@b>"), mail("a@b", &[]));
        assert_eq!(Command::parse("MAIL FROM:<>"), mail("", &[]));
        assert_eq!(Command::parse("MAIL FROM:a@b"), mail("a@b", &[]));
    }

    #[test]
    fn rcpt_to_variants() {
        assert_eq!(Command::parse("RCPT TO:<x@y>"), Command::Rcpt { to: "x@y".into(), params: vec![] });
        assert_eq!(
            Command::parse("rcpt to: <x@y> NOTIFY=NEVER"),
            Command::Rcpt { to: "x@y".into(), params: vec!["NOTIFY=NEVER".into()] }
        );
    }

    #[test]
    fn bad_arguments_are_invalid_not_unknown() {
        for line in [
            "MAIL",
            "MAIL FROM",
            "MAIL TO:<a@b>",
            "MAIL FROM:<a@b",
            "MAIL FROM:<a@b>SIZE=1",
            "MAIL FROM:",
            "RCPT TO:<>",
            "RCPT",
            "HELO",
            "EHLO   ",
            "DATA now",
            "VRFY",
        ] {
            assert!(matches!(Command::parse(line), Command::Invalid { .. }), "{line:?} should be invalid");
        }
    }

    #[test]
    fn unknown_lines_are_kept_whole() {
        assert_eq!(Command::parse("XYZZY plugh"), Command::Unknown("XYZZY plugh".into()));
        assert_eq!(Command::parse("MAILFROM:<a@b>"), Command::Unknown("MAILFROM:<a@b>".into()));
        assert_eq!(Command::parse(""), Command::Unknown("".into()));
        assert_eq!(Command::parse("Received: from forged"), Command::Unknown("Received: from forged".into()));
    }
}
