//! The query log, and the request handler in front of hickory's catalog that
//! keeps it. That handler is also where per-query faults are decided
//! (see [`crate::fault`]), before the catalog is asked.

use std::{
    iter,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use hickory_server::{
    net::{runtime::Time, xfer::Protocol, NetError},
    proto::{
        op::{Header, HeaderCounts, Message, Metadata, ResponseCode},
        rr::{Record, RecordType},
        serialize::binary::{BinDecoder, BinEncoder},
    },
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::{Catalog, MessageResponse, MessageResponseBuilder, Queries},
};

use crate::fault::{FaultKind, Faults};

/// One query the mock DNS answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueryLogEntry {
    /// Queried name, lowercase, without trailing dot (`"."` for the root).
    pub name: String,
    /// Query type mnemonic: `"MX"`, `"A"`, `"PTR"`, ... (`"TYPE65432"` if unknown).
    pub qtype: String,
    /// `"udp"` or `"tcp"`.
    pub protocol: String,
    /// Response code sent: `"NOERROR"`, `"NXDOMAIN"`, `"SERVFAIL"`, ...;
    /// `"TIMEOUT"` when no response was sent (a `timeout` fault).
    pub rcode: String,
    /// Number of records in the answer section.
    pub answers: usize,
    /// The fault applied to this query, if any: `servfail`, `timeout`,
    /// `truncate`, `delay 2s`, ...
    pub fault: Option<String>,
}

/// Shared, append-only list of answered queries.
#[derive(Clone, Default)]
pub(crate) struct QueryLog(Arc<Mutex<Vec<QueryLogEntry>>>);

impl QueryLog {
    pub(crate) fn snapshot(&self) -> Vec<QueryLogEntry> {
        self.lock().clone()
    }

    fn push(&self, entry: QueryLogEntry) {
        self.lock().push(entry);
    }

    // A panic elsewhere must not hide the log from the report.
    fn lock(&self) -> MutexGuard<'_, Vec<QueryLogEntry>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Serves from the catalog, applies faults, and logs every query.
pub(crate) struct LoggingHandler {
    pub(crate) catalog: Catalog,
    pub(crate) log: QueryLog,
    pub(crate) faults: Faults,
}

#[async_trait::async_trait]
impl RequestHandler for LoggingHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, response_handle: R) -> ResponseInfo {
        let (name, qtype) = match request.queries.queries().first() {
            Some(query) => (log_name(&query.name().to_string()), type_name(query.query_type())),
            None => (String::new(), String::new()),
        };
        let udp = request.protocol() == Protocol::Udp;
        let fault = self.faults.for_query(&name, &qtype);
        let fault_word = fault.as_ref().map(|f| describe_fault(f, udp));
        let mut responder = LogBeforeSend {
            inner: response_handle,
            state: Arc::new(Pending {
                log: self.log.clone(),
                name,
                qtype,
                protocol: protocol_name(request.protocol()),
                udp,
                queries: reread_queries(&request.queries),
                logged: AtomicBool::new(false),
                fault: fault_word,
            }),
        };
        let state = responder.state.clone();
        if let Some(f) = fault {
            if !f.delay.is_zero() {
                tokio::time::sleep(f.delay).await;
            }
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.authoritative = true;
            let rcode = match f.kind {
                FaultKind::Timeout => {
                    // No response at all: the client's timeout decides.
                    state.record_text("TIMEOUT", 0);
                    metadata.response_code = ResponseCode::ServFail;
                    let counts = HeaderCounts::default();
                    return ResponseInfo::from(Header { metadata, counts });
                }
                FaultKind::ServFail => Some(ResponseCode::ServFail),
                FaultKind::NxDomain => Some(ResponseCode::NXDomain),
                FaultKind::Refused => Some(ResponseCode::Refused),
                // RFC 7766: TC set, no records; the client retries over TCP.
                FaultKind::Truncate if udp => {
                    metadata.truncation = true;
                    Some(ResponseCode::NoError)
                }
                _ => None,
            };
            if let Some(code) = rcode {
                metadata.response_code = code;
                let builder = MessageResponseBuilder::new(&request.queries, request.edns.as_ref());
                let response = builder.build_no_records(metadata);
                return match responder.send_response(response).await {
                    Ok(info) => info,
                    Err(_) => {
                        let counts = HeaderCounts::default();
                        ResponseInfo::from(Header { metadata, counts })
                    }
                };
            }
        }
        let info = self.catalog.handle_request::<_, T>(request, responder).await;
        // Every catalog path sends a response; this only guards "every query".
        if !state.logged.load(Ordering::SeqCst) {
            state.record(info.response_code, usize::from(info.counts().answers));
        }
        info
    }
}

struct Pending {
    log: QueryLog,
    name: String,
    qtype: String,
    protocol: String,
    udp: bool,
    queries: Queries,
    logged: AtomicBool,
    fault: Option<String>,
}

impl Pending {
    fn record(&self, rcode: ResponseCode, answers: usize) {
        self.record_text(&rcode_name(rcode), answers);
    }

    fn record_text(&self, rcode: &str, answers: usize) {
        if self.logged.swap(true, Ordering::SeqCst) {
            return;
        }
        self.log.push(QueryLogEntry {
            name: self.name.clone(),
            qtype: self.qtype.clone(),
            protocol: self.protocol.clone(),
            rcode: rcode.to_string(),
            answers,
            fault: self.fault.clone(),
        });
    }
}

/// How the log names a fault: `servfail`, `delay 2s, timeout`, `truncate
/// (tcp: answered)`.
fn describe_fault(f: &crate::fault::Fault, udp: bool) -> String {
    let word = match f.kind {
        FaultKind::Truncate if !udp => "truncate (tcp: answered)".to_string(),
        FaultKind::Answer => return format!("delay {:?}", f.delay),
        k => k.word().to_string(),
    };
    if f.delay.is_zero() {
        word
    } else {
        format!("delay {:?}, {word}", f.delay)
    }
}

/// Logs a response before it is handed to the socket, so a client that has
/// its answer always finds the query in the log. hickory only reports the
/// answer count after queueing the bytes, so the response is encoded here
/// once to count, then rebuilt for the real send.
#[derive(Clone)]
struct LogBeforeSend<R> {
    inner: R,
    state: Arc<Pending>,
}

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for LogBeforeSend<R> {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let edns = response.edns().cloned();
        let metadata = *response.metadata();
        // Same size limit hickory applies, so truncation matches.
        let max_size = if self.state.udp { edns.as_ref().map_or(512, |e| e.max_payload()) } else { u16::MAX };
        let mut wire = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut wire);
        encoder.set_max_size(max_size);
        let encoded = response.destructive_emit(&mut encoder);
        let message = encoded.ok().and_then(|_| Message::from_vec(&wire).ok());

        let state = self.state.clone();
        let builder = MessageResponseBuilder::new(&state.queries, edns.as_ref());
        match message {
            Some(message) => {
                state.record(message.metadata.response_code, message.answers.len());
                let rebuilt = builder.build(
                    message.metadata,
                    message.answers.iter(),
                    message.authorities.iter(),
                    iter::empty(),
                    message.additionals.iter(),
                );
                self.inner.send_response(rebuilt).await
            }
            // hickory answers an unencodable response with SERVFAIL too.
            None => {
                let mut failed = Metadata::response_from_request(&metadata);
                failed.response_code = ResponseCode::ServFail;
                state.record(ResponseCode::ServFail, 0);
                self.inner.send_response(builder.build_no_records(failed)).await
            }
        }
    }
}

/// An owned copy of the question section, byte for byte (keeps the client's
/// letter case, which 0x20-randomizing resolvers check).
fn reread_queries(queries: &Queries) -> Queries {
    let bytes = queries.as_bytes();
    Queries::read(&mut BinDecoder::new(bytes), queries.len())
        .or_else(|_| Queries::read(&mut BinDecoder::new(&[]), 0))
        .unwrap_or_else(|_| unreachable!("reading zero queries cannot fail"))
}

fn log_name(fqdn: &str) -> String {
    if fqdn == "." {
        return ".".to_string();
    }
    fqdn.strip_suffix('.').unwrap_or(fqdn).to_ascii_lowercase()
}

fn type_name(rtype: RecordType) -> String {
    match rtype {
        RecordType::Unknown(code) => format!("TYPE{code}"),
        known => known.to_string(),
    }
}

fn protocol_name(protocol: Protocol) -> String {
    match protocol {
        Protocol::Udp => "udp".to_string(),
        Protocol::Tcp => "tcp".to_string(),
        #[allow(unreachable_patterns)]
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// RFC mnemonics, as `dig` prints them.
pub(crate) fn rcode_name(rcode: ResponseCode) -> String {
    let name = match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        ResponseCode::BADVERS => "BADVERS",
        other => return format!("RCODE{}", u16::from(other)),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized() {
        assert_eq!(log_name("MX.Example.COM."), "mx.example.com");
        assert_eq!(log_name("."), ".");
        assert_eq!(type_name(RecordType::MX), "MX");
        assert_eq!(type_name(RecordType::Unknown(65432)), "TYPE65432");
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::NoError), "NOERROR");
        assert_eq!(rcode_name(<ResponseCode as From<u16>>::from(3841)), "RCODE3841");
    }
}
