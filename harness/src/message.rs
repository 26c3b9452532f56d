//! Reading delivered messages for assertions (mail-parser does the parsing).

use mail_parser::MessageParser;

/// A delivered message's headers, in order, with values unfolded, and its body.
#[derive(Debug, Clone)]
pub struct ParsedMessage {
    /// `(name as written, unfolded value)` in message order.
    pub headers: Vec<(String, String)>,
    /// The raw header block as received.
    pub header_block: String,
    /// The body as text.
    pub body: String,
}

/// Parse raw message bytes. Folded header values are unfolded with every
/// line break and the whitespace after it turned into one space, so
/// `from a (b [1.2.3.4])\r\n\tby c` reads `from a (b [1.2.3.4]) by c`.
pub fn parse(raw: &[u8]) -> ParsedMessage {
    let Some(msg) = MessageParser::new().parse(raw) else {
        return ParsedMessage {
            headers: Vec::new(),
            header_block: String::new(),
            body: String::from_utf8_lossy(raw).into(),
        };
    };
    let headers = msg.headers_raw().map(|(name, value)| (name.to_string(), unfold(value))).collect();
    let text = String::from_utf8_lossy(raw);
    let split = text.find("\r\n\r\n").map(|i| (i + 2, i + 4)).or_else(|| text.find("\n\n").map(|i| (i + 1, i + 2)));
    let (header_block, body) = match split {
        Some((h_end, b_start)) => (text[..h_end].to_string(), text[b_start..].to_string()),
        None => (text.to_string(), String::new()),
    };
    ParsedMessage { headers, header_block, body }
}

/// Unfold a header value (RFC 5322 2.2.3) and trim it.
pub fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' || c == '\n' {
            while matches!(chars.peek(), Some('\r' | '\n' | ' ' | '\t')) {
                chars.next();
            }
            while out.ends_with([' ', '\t']) {
                out.pop();
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

impl ParsedMessage {
    /// Values of every header named `name` (case-insensitive), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_order_and_unfold() {
        let raw = b"Received: from a (b [192.0.2.1])\r\n\tby c (8.13.4/8.13.4) with ESMTP id X\r\n\tfor <d@e>; Mon, 1 Jan 2024 00:00:00 +0000\r\nReceived: from z\r\nSubject: hi\r\n\r\nbody\r\n";
        let m = parse(raw);
        assert_eq!(m.headers.len(), 3);
        assert_eq!(
            m.all("received"),
            vec![
                "from a (b [192.0.2.1]) by c (8.13.4/8.13.4) with ESMTP id X for <d@e>; Mon, 1 Jan 2024 00:00:00 +0000",
                "from z"
            ]
        );
        assert_eq!(m.body, "body\r\n");
        assert!(m.header_block.starts_with("Received: from a"));
    }
}
