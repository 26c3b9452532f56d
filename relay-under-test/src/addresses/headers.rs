//! Rewriting the addresses inside address headers (spec §3.5, §3.7).
//!
//! Talks to nothing. Sender headers (`From:`, `Sender:`, `Reply-To:`,
//! `Resent-From:`, `Resent-Sender:`, `Errors-To:`) and recipient headers
//! (`To:`, `Cc:`, `Bcc:`, `Resent-To:`, `Resent-Cc:`, `Resent-Bcc:`) are
//! address lists; each address (inside `<...>`, or the bare word) is passed
//! to a rewrite function, display names and comments stay. A rewritten
//! header is written unfolded; untouched headers keep their bytes.

use super::masquerade::Role;

/// Which role a header's addresses play, if it is an address header.
pub fn role_of(name: &str) -> Option<Role> {
    const SENDERS: &[&str] = &["from", "sender", "reply-to", "resent-from", "resent-sender", "errors-to"];
    const RECIPIENTS: &[&str] = &["to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"];
    let n = name.to_ascii_lowercase();
    if SENDERS.contains(&n.as_str()) {
        Some(Role::Sender)
    } else if RECIPIENTS.contains(&n.as_str()) {
        Some(Role::Recipient)
    } else {
        None
    }
}

/// Split an address list at top-level commas (outside quotes, `<>`, comments).
fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut comment, mut start) = (false, 0i32, 0i32, 0usize);
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' if comment == 0 => quoted = !quoted,
            '(' if !quoted => comment += 1,
            ')' if !quoted && comment > 0 => comment -= 1,
            '<' if !quoted && comment == 0 => angle += 1,
            '>' if !quoted && comment == 0 && angle > 0 => angle -= 1,
            ',' if !quoted && comment == 0 && angle == 0 => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// Byte range of the address in one list element: inside `<...>`, or the
/// first word outside quotes and comments.
fn address_span(elem: &str) -> Option<(usize, usize)> {
    let (mut quoted, mut comment) = (false, 0i32);
    let mut word: Option<usize> = None;
    for (i, c) in elem.char_indices() {
        match c {
            '"' if comment == 0 => quoted = !quoted,
            '(' if !quoted => {
                if let Some(s) = word {
                    return Some((s, i));
                }
                comment += 1;
            }
            ')' if !quoted && comment > 0 => comment -= 1,
            '<' if !quoted && comment == 0 => {
                let end = elem[i..].find('>')? + i;
                return Some((i + 1, end));
            }
            c if c.is_whitespace() && !quoted && comment == 0 => {
                if let Some(s) = word.take() {
                    // A phrase followed by more words: look for `<` later.
                    if elem[i..].contains('<') {
                        continue;
                    }
                    return Some((s, i));
                }
            }
            _ if !quoted && comment == 0 && word.is_none() => word = Some(i),
            _ => {}
        }
    }
    word.map(|s| (s, elem.len()))
}

/// Rewrite one address-list value; `None` when nothing changed.
pub fn rewrite_list(value: &str, f: &dyn Fn(&str) -> String) -> Option<String> {
    // Group syntax (`undisclosed-recipients:;`) is left alone.
    if value.contains(':') && value.trim_end().ends_with(';') {
        return None;
    }
    let mut changed = false;
    let parts: Vec<String> = split_list(value)
        .into_iter()
        .map(|elem| match address_span(elem) {
            Some((s, e)) if e > s => {
                let old = &elem[s..e];
                let new = f(old);
                if new != old {
                    changed = true;
                }
                format!("{}{new}{}", &elem[..s], &elem[e..])
            }
            _ => elem.to_string(),
        })
        .collect();
    changed.then(|| parts.join(","))
}

/// Rewrite the address headers of `data` (CRLF message) with `f(addr, role)`.
pub fn rewrite_headers(data: &[u8], f: &dyn Fn(&str, Role) -> String) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut pos = 0;
    // Each field: its first line and continuation lines.
    while pos < data.len() {
        let line_end = |from: usize| data[from..].iter().position(|&b| b == b'\n').map_or(data.len(), |i| from + i + 1);
        let first_end = line_end(pos);
        let first = &data[pos..first_end];
        let text = String::from_utf8_lossy(first);
        let trimmed = text.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break; // end of header block
        }
        let Some(colon) = trimmed.find(':').filter(|&c| c > 0 && !trimmed[..c].contains([' ', '\t'])) else {
            break; // not a header line: body starts here
        };
        let mut end = first_end;
        while end < data.len() && (data[end] == b' ' || data[end] == b'\t') {
            end = line_end(end);
        }
        let field = &data[pos..end];
        let name = &trimmed[..colon];
        let rewritten = role_of(name).and_then(|role| {
            let raw = String::from_utf8_lossy(field);
            let value: String =
                raw[colon + 1..].split("\r\n").map(|l| l.trim_end_matches('\n')).collect::<Vec<_>>().join("");
            let value = value.trim();
            rewrite_list(value, &|a| f(a, role)).map(|v| format!("{name}: {v}\r\n"))
        });
        match rewritten {
            Some(h) => out.extend_from_slice(h.as_bytes()),
            None => out.extend_from_slice(field),
        }
        pos = end;
    }
    out.extend_from_slice(&data[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn upper(a: &str) -> String {
        if a.contains('@') {
            a.to_string()
        } else {
            format!("{a}@x.com")
        }
    }

    #[test]
    fn lists_with_names_comments_and_quotes() {
        assert_eq!(rewrite_list("eve", &upper), Some("eve@x.com".into()));
        assert_eq!(rewrite_list("Eve <eve>", &upper), Some("Eve <eve@x.com>".into()));
        assert_eq!(
            rewrite_list("\"Smith, Eve\" <eve>, bob (Bob B), c@d.com", &upper),
            Some("\"Smith, Eve\" <eve@x.com>, bob@x.com (Bob B), c@d.com".into())
        );
        assert_eq!(rewrite_list("Eve Smith <eve>", &upper), Some("Eve Smith <eve@x.com>".into()));
        assert_eq!(rewrite_list("a@b.com", &upper), None);
        assert_eq!(rewrite_list("undisclosed-recipients:;", &upper), None);
    }

    #[test]
    fn only_address_headers_change() {
        let m =
            b"Received: from a\r\n\tby b\r\nFrom: Eve <eve>\r\nTo: alice,\r\n bob\r\nSubject: eve\r\n\r\nFrom: eve\r\n";
        let out = rewrite_headers(m, &|a, role| match role {
            Role::Sender => format!("{a}@s.com"),
            Role::Recipient => format!("{a}@r.com"),
        });
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Received: from a\r\n\tby b\r\nFrom: Eve <eve@s.com>\r\nTo: alice@r.com, bob@r.com\r\nSubject: eve\r\n\r\nFrom: eve\r\n"
        );
        assert_eq!(role_of("reply-TO"), Some(Role::Sender));
        assert_eq!(role_of("Subject"), None);
    }
}
