//! SMTP command lines (RFC 5321 4.1).
//!
//! Talks to nothing: parses the text of one line. Verbs are
//! case-insensitive; addresses are kept exactly as typed, since Sendmail
//! echoes the client's spelling in replies and logs (spec §0.2).

use lab_core::Reply;

/// One command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `HELO <domain>`.
    Helo(String),
    /// `EHLO <domain>`.
    Ehlo(String),
    /// `MAIL FROM:<path> [params]`; `path` as typed (with or without brackets).
    Mail {
        /// The reverse-path as typed.
        path: String,
        /// ESMTP parameters (`SIZE=108`).
        params: Vec<String>,
    },
    /// `RCPT TO:<path> [params]`.
    Rcpt {
        /// The forward-path as typed.
        path: String,
        /// ESMTP parameters (`NOTIFY=...`).
        params: Vec<String>,
    },
    /// `DATA`.
    Data,
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY <arg>`.
    Vrfy(String),
    /// `EXPN <arg>`.
    Expn(String),
    /// `VERB`.
    Verb,
    /// `ETRN <arg>`.
    Etrn(String),
    /// `HELP [topic]`.
    Help(String),
    /// Anything else: the whole line, for `Command unrecognized: "<line>"`.
    Unknown(String),
}

impl Command {
    /// Lower-case command name, as Sendmail's log says `after rcpt`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Helo(_) => "helo",
            Command::Ehlo(_) => "ehlo",
            Command::Mail { .. } => "mail",
            Command::Rcpt { .. } => "rcpt",
            Command::Data => "data",
            Command::Rset => "rset",
            Command::Noop => "noop",
            Command::Quit => "quit",
            Command::Vrfy(_) => "vrfy",
            Command::Expn(_) => "expn",
            Command::Verb => "verb",
            Command::Etrn(_) => "etrn",
            Command::Help(_) => "help",
            Command::Unknown(_) => "unknown",
        }
    }
}

/// A recognised command with bad arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// HELO/EHLO without an argument.
    #[error("{verb} requires domain address")]
    MissingDomain {
        /// `HELO` or `EHLO`.
        verb: &'static str,
    },
    /// MAIL/RCPT arguments that do not scan (no `FROM:`/`TO:`, unbalanced `<`).
    #[error("Syntax error in parameters scanning \"{scanned}\"")]
    Syntax {
        /// The text after the verb.
        scanned: String,
        /// The command name, for the log.
        verb: &'static str,
    },
}

impl CommandError {
    /// The reply Sendmail 8.13 gives (`[S srvrsmtp.c]`).
    pub fn reply(&self) -> Reply {
        match self {
            CommandError::MissingDomain { .. } => Reply::new(501, format!("5.0.0 {self}")),
            CommandError::Syntax { .. } => Reply::new(501, format!("5.5.2 {self}")),
        }
    }

    /// Lower-case name of the command that failed.
    pub fn name(&self) -> &'static str {
        match self {
            CommandError::MissingDomain { verb } => {
                if *verb == "HELO" {
                    "helo"
                } else {
                    "ehlo"
                }
            }
            CommandError::Syntax { verb, .. } => verb,
        }
    }
}

/// Split `FROM:<path> params` after the keyword; `None` when it does not scan.
fn path_and_params(rest: &str, keyword: &str) -> Option<(String, Vec<String>)> {
    let r = rest.trim_start();
    if r.len() < keyword.len() || !r[..keyword.len()].eq_ignore_ascii_case(keyword) {
        return None;
    }
    let r = r[keyword.len()..].trim_start();
    let (path, tail) = if r.starts_with('<') {
        let end = r.find('>')?;
        (&r[..=end], &r[end + 1..])
    } else {
        let end = r.find(char::is_whitespace).unwrap_or(r.len());
        (&r[..end], &r[end..])
    };
    if path.is_empty() || path[1..].contains('<') {
        return None;
    }
    Some((path.to_string(), tail.split_whitespace().map(str::to_string).collect()))
}

/// Parse one command line (without CRLF).
pub fn parse(line: &str) -> Result<Command, CommandError> {
    let trimmed = line.trim_start();
    let (verb, rest) = match trimmed.find(char::is_whitespace) {
        Some(i) => (&trimmed[..i], trimmed[i..].trim_start()),
        None => (trimmed, ""),
    };
    let arg = rest.trim_end().to_string();
    let cmd = match verb.to_ascii_uppercase().as_str() {
        "HELO" | "EHLO" => {
            let v: &'static str = if verb.eq_ignore_ascii_case("HELO") { "HELO" } else { "EHLO" };
            let domain = arg.split_whitespace().next().unwrap_or("").to_string();
            if domain.is_empty() {
                return Err(CommandError::MissingDomain { verb: v });
            }
            if v == "HELO" {
                Command::Helo(domain)
            } else {
                Command::Ehlo(domain)
            }
        }
        "MAIL" => match path_and_params(rest, "FROM:") {
            Some((path, params)) => Command::Mail { path, params },
            None => return Err(CommandError::Syntax { scanned: arg, verb: "mail" }),
        },
        "RCPT" => match path_and_params(rest, "TO:") {
            Some((path, params)) => Command::Rcpt { path, params },
            None => return Err(CommandError::Syntax { scanned: arg, verb: "rcpt" }),
        },
        "DATA" => Command::Data,
        "RSET" => Command::Rset,
        "NOOP" => Command::Noop,
        "QUIT" => Command::Quit,
        "VRFY" => Command::Vrfy(arg),
        "EXPN" => Command::Expn(arg),
        "VERB" => Command::Verb,
        "ETRN" => Command::Etrn(arg),
        "HELP" => Command::Help(arg),
        _ => Command::Unknown(line.to_string()),
    };
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_addresses_as_typed() {
        assert_eq!(
            parse("MAIL From:<Im@lying.com> SIZE=108").unwrap(),
            Command::Mail { path: "<Im@lying.com>".into(), params: vec!["SIZE=108".into()] }
        );
        assert_eq!(
            parse("mail from: Im@lying.com").unwrap(),
            Command::Mail { path: "Im@lying.com".into(), params: vec![] }
        );
        assert_eq!(
            parse("rcpt to: john@sysiphus.com").unwrap(),
            Command::Rcpt { path: "john@sysiphus.com".into(), params: vec![] }
        );
        assert_eq!(parse("MAIL FROM:<>").unwrap(), Command::Mail { path: "<>".into(), params: vec![] });
        assert_eq!(parse("ehlo  client.example ").unwrap(), Command::Ehlo("client.example".into()));
        assert_eq!(parse("QuIt").unwrap(), Command::Quit);
    }

    #[test]
    fn unknown_lines_are_kept_whole() {
        assert_eq!(parse("From: hal@deer-run.com").unwrap(), Command::Unknown("From: hal@deer-run.com".into()));
        assert_eq!(parse("").unwrap(), Command::Unknown("".into()));
        assert_eq!(parse(".").unwrap(), Command::Unknown(".".into()));
    }

    #[test]
    fn syntax_errors_reply_like_sendmail() {
        assert_eq!(
            parse("MAIL TO:<x@y>").unwrap_err().reply().first_line(),
            "501 5.5.2 Syntax error in parameters scanning \"TO:<x@y>\""
        );
        assert_eq!(
            parse("RCPT TO:<x@y").unwrap_err().reply().first_line(),
            "501 5.5.2 Syntax error in parameters scanning \"TO:<x@y\""
        );
        assert_eq!(
            parse("RCPT").unwrap_err().reply().first_line(),
            "501 5.5.2 Syntax error in parameters scanning \"\""
        );
        assert_eq!(parse("HELO").unwrap_err().reply().first_line(), "501 5.0.0 HELO requires domain address");
        assert_eq!(parse("EHLO ").unwrap_err().reply().first_line(), "501 5.0.0 EHLO requires domain address");
    }
}
