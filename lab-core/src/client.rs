//! An SMTP client that records what it says and hears.
//!
//! The relay's delivery agent and every mock sender use this one client, so a
//! transcript looks the same wherever it came from. It can bind a chosen source
//! address, which is how a lab's virtual hosts get their own `127.x.y.z`
//! identity on the loopback backend.

use crate::codec::{self, CodecError};
use crate::{Reply, TranscriptRecorder};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not connect (refused, unreachable, timed out).
    #[error("connect to {addr}: {source}")]
    Connect {
        /// Where we tried to connect.
        addr: SocketAddr,
        /// Why it failed.
        source: io::Error,
    },
    /// The server said nothing within the timeout.
    #[error("timed out after {0:?} waiting for the server")]
    Timeout(Duration),
    /// The server sent something that is not an SMTP reply.
    #[error("malformed reply line: {0:?}")]
    Malformed(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl ClientError {
    /// True when the connection itself was refused (nothing listens).
    pub fn is_refused(&self) -> bool {
        matches!(self, ClientError::Connect { source, .. } if source.kind() == io::ErrorKind::ConnectionRefused)
    }
}

/// A connected SMTP client.
#[derive(Debug)]
pub struct SmtpClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    timeout: Duration,
    transcript: TranscriptRecorder,
    peer: SocketAddr,
}

impl SmtpClient {
    /// Connect to `to`, from source address `from` when given. Every later read
    /// waits at most `timeout`.
    pub async fn connect(
        from: Option<IpAddr>,
        to: SocketAddr,
        timeout: Duration,
        transcript: TranscriptRecorder,
    ) -> Result<Self, ClientError> {
        transcript.note(format!("connect to {to}{}", from.map(|f| format!(" from {f}")).unwrap_or_default()));
        let connect = async {
            let socket = if to.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            if let Some(ip) = from {
                socket.bind(SocketAddr::new(ip, 0))?;
            }
            socket.connect(to).await
        };
        let stream: TcpStream = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                transcript.note(format!("connect failed: {e}"));
                return Err(ClientError::Connect { addr: to, source: e });
            }
            Err(_) => {
                transcript.note("connect timed out");
                return Err(ClientError::Connect {
                    addr: to,
                    source: io::Error::new(io::ErrorKind::TimedOut, "connection timed out"),
                });
            }
        };
        stream.set_nodelay(true).ok();
        let (r, w) = stream.into_split();
        Ok(SmtpClient { reader: BufReader::new(r), writer: w, timeout, transcript, peer: to })
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The recorder this client writes to.
    pub fn transcript(&self) -> &TranscriptRecorder {
        &self.transcript
    }

    /// Read one (possibly multi-line) reply.
    pub async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        let mut lines = Vec::new();
        loop {
            let line =
                match tokio::time::timeout(self.timeout, codec::read_line(&mut self.reader, codec::MAX_LINE)).await {
                    Ok(Ok(l)) => l,
                    Ok(Err(e)) => {
                        self.transcript.note(format!("read failed: {e}"));
                        return Err(e.into());
                    }
                    Err(_) => {
                        self.transcript.note(format!("no reply within {:?}", self.timeout));
                        return Err(ClientError::Timeout(self.timeout));
                    }
                };
            self.transcript.server(line.clone());
            let Some((c, last, text)) = Reply::parse_line(&line) else {
                return Err(ClientError::Malformed(line));
            };
            lines.push(text.to_string());
            if last {
                return Ok(Reply { code: c, lines });
            }
        }
    }

    /// Send one command line (CRLF added) without waiting for the reply.
    pub async fn send_line(&mut self, line: &str) -> Result<(), ClientError> {
        self.transcript.client(line.to_string());
        self.writer.write_all(line.as_bytes()).await?;
        self.writer.write_all(b"\r\n").await?;
        Ok(())
    }

    /// Send raw bytes as they are (pipelined scripts, slams). Recorded line by line.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        for l in String::from_utf8_lossy(bytes).lines() {
            self.transcript.client(l.to_string());
        }
        self.writer.write_all(bytes).await?;
        Ok(())
    }

    /// Send a command and read its reply.
    pub async fn command(&mut self, line: &str) -> Result<Reply, ClientError> {
        self.send_line(line).await?;
        self.read_reply().await
    }

    /// Send a message after a `354` (dot-stuffed, terminated) and read the final reply.
    /// The transcript shows a one-line summary instead of the body.
    pub async fn send_message(&mut self, message: &[u8]) -> Result<Reply, ClientError> {
        let wire = codec::dot_stuff(message);
        let lines = wire.iter().filter(|&&b| b == b'\n').count().saturating_sub(1);
        self.transcript.note(format!("<message: {} octets, {} lines>", message.len(), lines));
        self.transcript.client(".");
        self.writer.write_all(&wire).await?;
        self.read_reply().await
    }

    /// Say QUIT and read the reply, ignoring a server that already hung up.
    pub async fn quit(mut self) -> Option<Reply> {
        let r = self.command("QUIT").await.ok();
        let _ = self.writer.shutdown().await;
        r
    }
}
