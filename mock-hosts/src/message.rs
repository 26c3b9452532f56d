//! Small edits on RFC 5322 messages as actors make them: read a header,
//! prepend a `Received:`, strip trace headers, count hops.
//!
//! Messages are bytes with CRLF line ends (as a sink stores them). The header
//! block ends at the first empty line; a line starting with a blank continues
//! the header above it (RFC 5322 2.2.3).

use chrono::{DateTime, Utc};

/// Where the header block ends: the offset of the empty line (or of the end).
fn header_end(data: &[u8]) -> usize {
    let mut pos = 0;
    while pos < data.len() {
        let nl = data[pos..].iter().position(|&b| b == b'\n').map_or(data.len(), |i| pos + i + 1);
        let line = &data[pos..nl];
        if line == b"\r\n" || line == b"\n" {
            return pos;
        }
        pos = nl;
    }
    data.len()
}

/// The header fields in order: `(name, unfolded value)`.
pub fn headers(data: &[u8]) -> Vec<(String, String)> {
    let block = String::from_utf8_lossy(&data[..header_end(data)]);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// The first value of header `name` (case-insensitive).
pub fn header(data: &[u8], name: &str) -> Option<String> {
    headers(data).into_iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The message with every `name:` field (and its continuation lines) removed.
pub fn without(data: &[u8], name: &str) -> Vec<u8> {
    let end = header_end(data);
    let mut out = Vec::with_capacity(data.len());
    let mut dropping = false;
    let mut pos = 0;
    while pos < end {
        let nl = data[pos..end].iter().position(|&b| b == b'\n').map_or(end, |i| pos + i + 1);
        let line = &data[pos..nl];
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            dropping = line.len() > name.len()
                && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
                && line[name.len()] == b':';
        }
        if !dropping {
            out.extend_from_slice(line);
        }
        pos = nl;
    }
    out.extend_from_slice(&data[end..]);
    out
}

/// The message with `field` (`Name: value`, no line end) put first.
pub fn prepend(data: &[u8], field: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + field.len() + 2);
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out
}

/// The message with `field` added at the end of the header block.
pub fn append_header(data: &[u8], field: &str) -> Vec<u8> {
    let end = header_end(data);
    let mut out = Vec::with_capacity(data.len() + field.len() + 4);
    out.extend_from_slice(&data[..end]);
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\r\n");
    if end == data.len() {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&data[end..]);
    out
}

/// The body (after the empty line).
pub fn body(data: &[u8]) -> &[u8] {
    let end = header_end(data);
    let rest = &data[end..];
    rest.strip_prefix(b"\r\n").or_else(|| rest.strip_prefix(b"\n")).unwrap_or(rest)
}

/// The header block, without the empty line.
pub fn header_block(data: &[u8]) -> &[u8] {
    &data[..header_end(data)]
}

/// Trace headers, as Sendmail counts hops (spec §5.6): `Received:`,
/// `X400-Received:`, `Via:`, `Mail-From:`.
pub fn hop_count(data: &[u8]) -> usize {
    headers(data)
        .iter()
        .filter(|(n, _)| ["received", "x400-received", "via", "mail-from"].iter().any(|t| n.eq_ignore_ascii_case(t)))
        .count()
}

/// An RFC 5322 date: `Tue, 1 Jul 2025 10:00:00 +0000`.
pub fn date(t: DateTime<Utc>) -> String {
    t.format("%a, %-d %b %Y %H:%M:%S +0000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[u8] = b"Received: from a\r\n\tby b; x\r\nSubject: hi\r\nreceived: from c\r\n\r\nbody\r\n";

    #[test]
    fn reads_edits_and_counts() {
        assert_eq!(header(M, "RECEIVED").as_deref(), Some("from a by b; x"));
        assert_eq!(hop_count(M), 2);
        assert_eq!(without(M, "Received"), b"Subject: hi\r\n\r\nbody\r\n".to_vec());
        assert_eq!(body(M), b"body\r\n");
        let p = prepend(M, "Received: from z");
        assert_eq!(hop_count(&p), 3);
        assert!(p.starts_with(b"Received: from z\r\nReceived: from a"));
        let a = append_header(b"Subject: x\r\n\r\nb\r\n", "Precedence: list");
        assert_eq!(a, b"Subject: x\r\nPrecedence: list\r\n\r\nb\r\n".to_vec());
        assert_eq!(append_header(b"Subject: x\r\n", "A: b"), b"Subject: x\r\nA: b\r\n\r\n".to_vec());
        // A header named like the start of another is kept.
        assert_eq!(without(b"Received-SPF: pass\r\n\r\n", "Received"), b"Received-SPF: pass\r\n\r\n".to_vec());
        let t = DateTime::parse_from_rfc3339("2025-07-01T10:00:00Z").unwrap().to_utc();
        assert_eq!(date(t), "Tue, 1 Jul 2025 10:00:00 +0000");
    }
}
