//! SMTP lines and DATA, both directions.
//!
//! SMTP is line-oriented: every command and reply line ends in CRLF (we accept a
//! bare LF from sloppy clients, as Sendmail does). The message itself follows
//! DATA and ends with a line holding a single `.`; a line of the message that
//! starts with `.` is sent with the dot doubled (RFC 5321 4.5.2, "dot
//! transparency") and the receiver removes one.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Longest command line we accept: RFC 5321 4.5.3.1.4 says 512 octets, real
/// clients exceed it, so be generous but bounded.
pub const MAX_LINE: usize = 4096;

/// Why reading failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The peer closed the connection.
    #[error("connection closed by peer")]
    Closed,
    /// A line was longer than the limit.
    #[error("line longer than {0} octets")]
    LineTooLong(usize),
    /// Transport error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Read one line (without its CRLF or LF) of at most `max` octets. Bytes that
/// are not UTF-8 are replaced, since command lines are ASCII by definition.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> Result<String, CodecError> {
    let raw = read_raw_line(r, max).await?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// Read one raw line, CRLF/LF stripped.
pub async fn read_raw_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> Result<Vec<u8>, CodecError> {
    let mut buf = Vec::new();
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            if buf.is_empty() {
                return Err(CodecError::Closed);
            }
            // A last line without terminator: the peer went away mid-line.
            return Err(CodecError::Closed);
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(i) => {
                buf.extend_from_slice(&available[..i]);
                r.consume(i + 1);
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                if buf.len() > max {
                    return Err(CodecError::LineTooLong(max));
                }
                return Ok(buf);
            }
            None => {
                let n = available.len();
                buf.extend_from_slice(available);
                r.consume(n);
                if buf.len() > max + 1 {
                    return Err(CodecError::LineTooLong(max));
                }
            }
        }
    }
}

/// What reading DATA produced.
#[derive(Debug)]
pub struct DataRead {
    /// The message, dot-unstuffed, every line ending in CRLF.
    pub data: Vec<u8>,
    /// True when the message grew past the size limit; reading went on to the
    /// final dot so the session stays in step, but the bytes past the limit
    /// were dropped.
    pub oversize: bool,
}

/// Read a message after `354` up to the terminating `.` line, removing one
/// leading dot from each line (RFC 5321 4.5.2). `max_size` of 0 means no limit.
pub async fn read_data<R: AsyncBufRead + Unpin>(r: &mut R, max_size: usize) -> Result<DataRead, CodecError> {
    let mut data = Vec::new();
    let mut oversize = false;
    loop {
        // Message lines may be up to 1000 octets (RFC 5321 4.5.3.1.6); allow far
        // more, since we are a test tool and must see what a broken peer sends.
        let line = read_raw_line(r, 1 << 20).await?;
        if line == b"." {
            return Ok(DataRead { data, oversize });
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if max_size == 0 || data.len() + line.len() + 2 <= max_size {
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
        } else {
            oversize = true;
        }
    }
}

/// Prepare message bytes for the wire: normalise line ends to CRLF, double a
/// leading dot on every line, and append the terminating `.` line.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    let mut at_line_start = true;
    let mut i = 0;
    while i < message.len() {
        let b = message[i];
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        match b {
            b'\r' if message.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
                at_line_start = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            _ => {
                out.push(b);
                at_line_start = false;
            }
        }
        i += 1;
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Normalise text to CRLF line ends and make sure it ends with one.
pub fn to_crlf(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        let l = line.strip_suffix('\n').unwrap_or(line);
        let l = l.strip_suffix('\r').unwrap_or(l);
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[tokio::test]
    async fn data_round_trips_through_dot_stuffing() {
        let msg = b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n";
        let wire = dot_stuff(msg);
        assert_eq!(wire, b"Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\n..\r\nend\r\n.\r\n".to_vec());
        let mut r = BufReader::new(&wire[..]);
        let got = read_data(&mut r, 0).await.unwrap();
        assert_eq!(got.data, msg.to_vec());
        assert!(!got.oversize);
    }

    #[tokio::test]
    async fn bare_lf_lines_are_accepted_and_normalised() {
        let mut r = BufReader::new(&b"HELO x\nMAIL FROM:<a@b>\r\n"[..]);
        assert_eq!(read_line(&mut r, MAX_LINE).await.unwrap(), "HELO x");
        assert_eq!(read_line(&mut r, MAX_LINE).await.unwrap(), "MAIL FROM:<a@b>");
        assert!(matches!(read_line(&mut r, MAX_LINE).await, Err(CodecError::Closed)));
    }

    #[tokio::test]
    async fn overlong_line_is_an_error() {
        let long = vec![b'a'; 100];
        let mut input = long.clone();
        input.extend_from_slice(b"\r\n");
        let mut r = BufReader::new(&input[..]);
        assert!(matches!(read_line(&mut r, 10).await, Err(CodecError::LineTooLong(10))));
    }

    #[tokio::test]
    async fn oversize_data_is_read_to_the_end_but_flagged() {
        let mut r = BufReader::new(&b"0123456789\r\n0123456789\r\n.\r\nQUIT\r\n"[..]);
        let got = read_data(&mut r, 15).await.unwrap();
        assert!(got.oversize);
        assert_eq!(got.data, b"0123456789\r\n".to_vec());
        assert_eq!(read_line(&mut r, MAX_LINE).await.unwrap(), "QUIT");
    }

    #[test]
    fn dot_stuff_adds_missing_final_crlf() {
        assert_eq!(dot_stuff(b"x"), b"x\r\n.\r\n".to_vec());
        assert_eq!(to_crlf("a\nb\r\n"), b"a\r\nb\r\n".to_vec());
    }
}
