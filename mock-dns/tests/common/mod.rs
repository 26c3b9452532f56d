//! A raw DNS client over real sockets: builds messages with hickory-proto
//! and sends them over tokio UDP or TCP (2-byte length prefix).

#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use hickory_proto::{
    op::{Edns, Message, Query},
    rr::{Name, RData, RecordType},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
    time::timeout,
};

pub const WAIT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

/// Lab address for tests; every server picks its own port.
pub fn bind() -> SocketAddr {
    "127.45.3.1:0".parse().unwrap()
}

pub fn request(name: &str, rtype: RecordType, edns: bool) -> Message {
    let mut msg = Message::query();
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    msg.metadata.recursion_desired = true;
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        msg.set_edns(e);
    }
    msg
}

pub async fn query(addr: SocketAddr, proto: Proto, name: &str, rtype: RecordType) -> Message {
    exchange(addr, proto, request(name, rtype, true)).await
}

pub async fn exchange(addr: SocketAddr, proto: Proto, msg: Message) -> Message {
    let wire = msg.to_vec().unwrap();
    let reply = match proto {
        Proto::Udp => {
            let sock = UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).await.unwrap();
            sock.connect(addr).await.unwrap();
            sock.send(&wire).await.unwrap();
            let mut buf = vec![0u8; 65535];
            let n = timeout(WAIT, sock.recv(&mut buf)).await.expect("no UDP answer in time").unwrap();
            buf.truncate(n);
            buf
        }
        Proto::Tcp => {
            let mut stream = timeout(WAIT, TcpStream::connect(addr)).await.unwrap().unwrap();
            let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&wire);
            stream.write_all(&framed).await.unwrap();
            let mut len = [0u8; 2];
            timeout(WAIT, stream.read_exact(&mut len)).await.expect("no TCP answer in time").unwrap();
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut buf).await.unwrap();
            buf
        }
    };
    let answer = Message::from_vec(&reply).unwrap();
    assert_eq!(answer.metadata.id, msg.metadata.id, "answer id must match query id");
    answer
}

pub fn answer_data(msg: &Message) -> Vec<RData> {
    msg.answers.iter().map(|r| r.data.clone()).collect()
}
