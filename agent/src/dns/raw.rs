//! Answers to raw query bytes, for the socket loops of [`super::udp`] and [`super::tcp`]:
//! what hickory's server did with a datagram or a TCP frame before [`ConsulDns`] saw it
//! (drop what is shorter than a header or is a response, FORMERR what does not parse),
//! then the handler, its reply encoded as hickory encodes it (at most the client's EDNS
//! buffer, or 512 bytes, over UDP; SERVFAIL if it cannot be encoded).

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_server::net::NetError;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{
    Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::Record;
use hickory_server::proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder,
};
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};
use parking_lot::Mutex;

use super::handler::{ConsulDns, question_section};
use super::source::Generation;

/// A reply to raw query bytes.
pub(super) struct Answered {
    /// The encoded reply.
    pub(super) bytes: Vec<u8>,
    /// `Some` when it may be cached, built at that generation.
    pub(super) cacheable: Option<Generation>,
}

/// Logs a question answered from the cache, at debug (parsed only when debug is on, so
/// the hot path pays one `enabled!` check).
pub(super) fn served_cached(
    raw: &[u8],
    src: SocketAddr,
    protocol: Protocol,
    started: std::time::Instant,
) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let Ok(msg) = hickory_server::proto::op::Message::from_bytes(raw) else {
        return;
    };
    if let Some(q) = msg.queries.first() {
        super::handler::served(
            &q.name().to_ascii(),
            q.query_type(),
            src,
            protocol,
            started.elapsed(),
        );
    }
}

impl ConsulDns {
    /// The reply to the message `raw` from `src`; `None` when nothing is to be sent.
    pub(super) async fn answer_raw(
        &self,
        raw: Vec<u8>,
        src: SocketAddr,
        protocol: Protocol,
    ) -> Option<Answered> {
        let header = Header::read(&mut BinDecoder::new(&raw)).ok()?;
        let mut capture = Capture {
            id: header.metadata.id,
            max_size: 512,
            protocol,
            out: Arc::default(),
        };
        let cacheable = match Request::from_bytes(raw, src, protocol) {
            Ok(req) if req.metadata.message_type == MessageType::Response => return None,
            Ok(req) => {
                if let Some(e) = &req.edns {
                    capture.max_size = e.max_payload().max(512);
                }
                self.respond(&req, capture.clone()).await.1
            }
            Err(e) => {
                tracing::debug!(cause = %e, "DNS message does not parse: FORMERR");
                // No questions: nothing to encode, so this cannot fail.
                let queries = question_section(&[]).ok()?;
                let resp = MessageResponseBuilder::new(&queries, None)
                    .error_msg(&header.metadata, ResponseCode::FormErr);
                let _ = capture.clone().send_response(resp).await;
                None
            }
        };
        let bytes = capture.out.lock().take()?;
        Some(Answered { bytes, cacheable })
    }
}

/// A response handler that keeps the encoded reply.
#[derive(Clone)]
struct Capture {
    id: u16,
    /// The client's EDNS buffer (at least 512) over UDP.
    max_size: u16,
    protocol: Protocol,
    out: Arc<Mutex<Option<Vec<u8>>>>,
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
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
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(match self.protocol {
            Protocol::Udp => self.max_size,
            _ => u16::MAX,
        });
        let info = match response.destructive_emit(&mut encoder) {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(cause = %e, "DNS reply not encoded: SERVFAIL");
                bytes.clear();
                let mut metadata = Metadata::new(self.id, MessageType::Response, OpCode::Query);
                metadata.response_code = ResponseCode::ServFail;
                let header = Header {
                    metadata,
                    counts: HeaderCounts::default(),
                };
                header.emit(&mut BinEncoder::new(&mut bytes))?;
                ResponseInfo::from(header)
            }
        };
        *self.out.lock() = Some(bytes);
        Ok(info)
    }
}
