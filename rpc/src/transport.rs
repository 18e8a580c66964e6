//! The forwarding transport over `rpc.proto`'s `Forward` service: [`call`] sends a payload
//! and classifies what went wrong; [`ForwardEndpoint`] receives, refuses requests meant for
//! another datacenter and hands the payload to a [`Handler`].

use std::sync::Arc;
use std::time::Duration;

use meridian_proto::v1::forward_client::ForwardClient;
use meridian_proto::v1::forward_server::{Forward, ForwardServer};
use meridian_proto::v1::{ForwardRequest, ForwardResponse};

use crate::channels::{Channels, MAX_MESSAGE};

/// Why a call got no reply payload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The peer could not be reached; the request was not sent.
    #[error("server {addr} unreachable: {reason}")]
    Unreachable {
        /// Its RPC address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The request was sent (or may have been) but no answer came: the peer may have acted
    /// on it.
    #[error("no answer from server {addr}: {reason}")]
    NoAnswer {
        /// Its RPC address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The peer refused the envelope (wrong datacenter, undecodable payload).
    #[error("forwarding: {0}")]
    Protocol(String),
}

/// Whether a failed call certainly never reached the peer: the connection could not be made.
/// tonic maps a connector's failure to `Unavailable` with the connector error's text:
/// hyper's "tcp connect error" in plaintext, and under TLS `meridian_tls::ConnectError`'s
/// "tcp connect error" / "tls connect error" (a refused handshake, whichever side refused:
/// the connector waits for the server's first bytes, so a refused client certificate fails
/// the connect and not the request). Anything else may have failed after the request was
/// written.
fn never_sent(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && status.message().contains("connect error")
}

/// Sends `payload` to the `Forward` service at `addr` for `datacenter`, within `timeout`;
/// the reply payload. Under TLS the peer must prove the channels' default server name.
pub async fn call(
    channels: &Channels,
    addr: &str,
    datacenter: &str,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>, TransportError> {
    let channel = channels.get(addr);
    let got = call_on(channel, addr, datacenter, payload, timeout).await;
    note_outcome(channels, addr, None, &got);
    got
}

/// Whether a call gave up waiting (the connection may be stalled).
fn timed_out(r: &Result<Vec<u8>, TransportError>) -> bool {
    matches!(r, Err(TransportError::NoAnswer { reason, .. }) if reason.starts_with(TIMED_OUT))
}

const TIMED_OUT: &str = "timed out after";

/// [`call`] to a peer that must prove `server_name` under TLS (`gateway.dc2.consul`, or
/// `server.dc2.consul` across datacenters); without TLS the name is not checked.
pub async fn call_named(
    channels: &Channels,
    addr: &str,
    server_name: &str,
    datacenter: &str,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>, TransportError> {
    let channel = channels.get_named(addr, server_name);
    let got = call_on(channel, addr, datacenter, payload, timeout).await;
    note_outcome(channels, addr, Some(server_name), &got);
    got
}

/// An answer (a reply, or the peer's refusal) shows the connection alive; a call that gave
/// up waiting may mean it is stalled ([`Channels::forget_if_stalled`] decides).
fn note_outcome(
    channels: &Channels,
    addr: &str,
    server_name: Option<&str>,
    got: &Result<Vec<u8>, TransportError>,
) {
    match got {
        Ok(_) | Err(TransportError::Protocol(_)) => channels.heard(addr, server_name),
        r if timed_out(r) => {
            if channels.forget_if_stalled(addr, server_name) {
                tracing::debug!(peer = %addr, "no answer for a while: dialling afresh next time");
            }
        }
        Err(_) => {}
    }
}

async fn call_on(
    channel: Result<tonic::transport::Channel, tonic::transport::Error>,
    addr: &str,
    datacenter: &str,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>, TransportError> {
    let unreachable = |reason: String| TransportError::Unreachable {
        addr: addr.to_string(),
        reason,
    };
    let no_answer = |reason: String| TransportError::NoAnswer {
        addr: addr.to_string(),
        reason,
    };
    let channel = channel.map_err(|e| unreachable(e.to_string()))?;
    let mut client = ForwardClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let req = ForwardRequest {
        datacenter: datacenter.to_string(),
        payload,
        ..Default::default()
    };
    let resp = match tokio::time::timeout(timeout, client.forward(req)).await {
        Err(_) => return Err(no_answer(format!("{TIMED_OUT} {timeout:?}"))),
        Ok(Err(status)) if never_sent(&status) => {
            return Err(unreachable(status.message().to_string()));
        }
        // `RequirePeer` refused the caller before the service saw the request.
        Ok(Err(status)) if status.code() == tonic::Code::PermissionDenied => {
            return Err(TransportError::Protocol(status.message().to_string()));
        }
        Ok(Err(status)) => return Err(no_answer(status.message().to_string())),
        Ok(Ok(r)) => r.into_inner(),
    };
    if !resp.error.is_empty() {
        return Err(TransportError::Protocol(resp.error));
    }
    Ok(resp.payload)
}

/// What answers forwarded payloads: a server (writes, read indexes, HTTP), a gateway (relay
/// to another datacenter).
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The reply payload to `payload`, or a gRPC status (`invalid_argument` for a payload
    /// that does not decode).
    async fn handle(&self, payload: Vec<u8>) -> Result<Vec<u8>, tonic::Status>;
}

/// The receiving side of the `Forward` service.
pub struct ForwardEndpoint<H> {
    datacenter: String,
    handler: Arc<H>,
}

impl<H: Handler> ForwardEndpoint<H> {
    /// The tonic service for `datacenter`, answered by `handler`.
    pub fn server(datacenter: String, handler: H) -> ForwardServer<Self> {
        ForwardServer::new(Self {
            datacenter,
            handler: Arc::new(handler),
        })
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
    }
}

#[tonic::async_trait]
impl<H: Handler> Forward for ForwardEndpoint<H> {
    async fn forward(
        &self,
        request: tonic::Request<ForwardRequest>,
    ) -> Result<tonic::Response<ForwardResponse>, tonic::Status> {
        let req = request.into_inner();
        if req.datacenter != self.datacenter {
            return Err(tonic::Status::failed_precondition(format!(
                "request for datacenter {:?} reached a server of {:?}",
                req.datacenter, self.datacenter
            )));
        }
        let payload = self.handler.handle(req.payload).await?;
        Ok(tonic::Response::new(ForwardResponse {
            payload,
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_are_never_sent_and_others_may_have_been() {
        for msg in [
            "tcp connect error: Connection refused (os error 111)",
            "tls connect error: 127.0.0.1:1: handshake failed: invalid peer certificate: UnknownIssuer",
            "tls connect error: 127.0.0.1:1: the server refused this client: received fatal alert: CertificateRequired",
        ] {
            assert!(never_sent(&tonic::Status::unavailable(msg)), "{msg}");
        }
        assert!(!never_sent(&tonic::Status::unavailable("connection reset")));
        assert!(!never_sent(&tonic::Status::unknown("tcp connect error")));
    }
}
