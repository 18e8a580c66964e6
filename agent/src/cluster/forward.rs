//! Request forwarding over gRPC (`rpc.proto`, port 8300): a follower sends writes to the
//! leader and asks it for a read index; a client agent sends its HTTP API requests to a
//! server. [`Forwarder`] is the sending side, [`ForwardService`] the receiving one.
//!
//! Reads are never shipped as results: a follower asks the leader for the index a read must
//! see (`ReadIndex`, with a quorum check for `?consistent`), waits until it has applied that
//! far and answers from its own state. Client agents, which hold no state, forward the whole
//! HTTP request; the server runs it through its own API router, so every endpoint,
//! blocking query and filter behaves the same on a client as on a server.

use std::sync::Arc;
use std::time::Duration;

use meridian_proto::v1::forward_client::ForwardClient;
use meridian_proto::v1::forward_server::{Forward, ForwardServer};
use meridian_proto::v1::{ForwardRequest, ForwardResponse};
use serde::{Deserialize, Serialize};

use super::raft_rpc::{Channels, MAX_MESSAGE};
use super::wire;
use crate::catalog::{Command, RequestId, Response};
use crate::rpc::RpcError;
use crate::server::ServerHandle;

/// An HTTP API request as a client agent forwards it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpRequest {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// Path and query string.
    pub uri: String,
    /// Headers worth forwarding (content type, token).
    pub headers: Vec<(String, String)>,
    /// Body bytes (carried raw, after the JSON header).
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// The server's answer to a forwarded HTTP request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes (carried raw).
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// What a forwarded request asks.
#[derive(Debug, Serialize, Deserialize)]
enum Op {
    /// Apply a command on the leader (from servers without request ids; never sent now).
    Apply(Command),
    /// Apply a command on the leader as the write `id`: a retry with the same id answers the
    /// first result instead of applying again.
    ApplyOnce { cmd: Command, id: RequestId },
    /// The index a read must see (after a quorum check when `consistent`).
    ReadIndex { consistent: bool },
    /// Run an HTTP API request.
    Http(HttpRequest),
    /// Whether the server has raft state (for `-bootstrap-expect`).
    RaftStatus,
}

/// The answer.
#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Applied { index: u64, response: Response },
    ReadIndex { index: u64 },
    Http(HttpResponse),
    RaftStatus { initialized: bool },
    Failed { kind: FailKind, message: String },
}

/// Failure kinds that must survive the hop, so the caller sees the same [`RpcError`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum FailKind {
    Rejected,
    NoLeader,
    NotLeader,
    /// The write may or may not have been applied.
    Unknown,
    Other,
}

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The server could not be reached; the request was not sent.
    #[error("server {addr} unreachable: {reason}")]
    Unreachable {
        /// Its RPC address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The request was sent (or may have been) but no answer came: the server may have acted
    /// on it. A write must not be retried without its request id.
    #[error("no answer from server {addr}: {reason}")]
    NoAnswer {
        /// Its RPC address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error.
    #[error(transparent)]
    Remote(#[from] RpcError),
    /// The receiving server is not (or no longer) the leader.
    #[error("{0} is not the leader")]
    NotLeader(String),
    /// A message could not be encoded or decoded.
    #[error("forwarding: {0}")]
    Protocol(String),
}

/// `[u32 header length][header JSON][raw body]`: bodies are not JSON-escaped.
fn pack<T: Serialize>(what: &'static str, header: &T, body: &[u8]) -> Result<Vec<u8>, String> {
    let h = wire::encode(what, header).map_err(|e| e.to_string())?;
    let len = u32::try_from(h.len()).map_err(|_| format!("{what} header too large"))?;
    let mut out = Vec::with_capacity(4 + h.len() + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    Ok(out)
}

fn unpack<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<(T, Vec<u8>), String> {
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| format!("{what}: message too short"))?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(format!("{what}: header truncated"));
    }
    let (h, body) = rest.split_at(len);
    let header = wire::decode(what, h).map_err(|e| e.to_string())?;
    Ok((header, body.to_vec()))
}

/// A `Forward` request's payload as the receiving server reads it: the command of a
/// forwarded write (with its request id, if any), `None` for the other requests.
pub(crate) fn decode_request(
    payload: &[u8],
) -> Result<Option<(Command, Option<RequestId>)>, String> {
    let (op, _body): (Op, Vec<u8>) = unpack("forward request", payload)?;
    Ok(match op {
        Op::Apply(cmd) => Some((cmd, None)),
        Op::ApplyOnce { cmd, id } => Some((cmd, Some(id))),
        Op::ReadIndex { .. } | Op::Http(_) | Op::RaftStatus => None,
    })
}

/// A `Forward` reply's payload as the sending server reads it.
pub(crate) fn decode_reply(payload: &[u8]) -> Result<(), String> {
    unpack::<Reply>("forward reply", payload).map(drop)
}

fn body_of(op: &Op) -> &[u8] {
    match op {
        Op::Http(r) => &r.body,
        _ => &[],
    }
}

/// Sends forwarded requests.
#[derive(Debug, Clone)]
pub struct Forwarder {
    datacenter: String,
    channels: Arc<Channels>,
}

impl Forwarder {
    /// A forwarder for `datacenter`, sharing `channels` with the raft transport.
    pub fn new(datacenter: String, channels: Arc<Channels>) -> Self {
        Self {
            datacenter,
            channels,
        }
    }

    async fn send(&self, addr: &str, op: Op, timeout: Duration) -> Result<Reply, ForwardError> {
        let unreachable = |reason: String| ForwardError::Unreachable {
            addr: addr.to_string(),
            reason,
        };
        let channel = self
            .channels
            .get(addr)
            .map_err(|e| unreachable(e.to_string()))?;
        let payload = pack("forward request", &op, body_of(&op)).map_err(ForwardError::Protocol)?;
        let mut client = ForwardClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let req = ForwardRequest {
            datacenter: self.datacenter.clone(),
            payload,
            ..Default::default()
        };
        let no_answer = |reason: String| ForwardError::NoAnswer {
            addr: addr.to_string(),
            reason,
        };
        let resp = match tokio::time::timeout(timeout, client.forward(req)).await {
            Err(_) => return Err(no_answer(format!("timed out after {timeout:?}"))),
            Ok(Err(status)) if never_sent(&status) => {
                return Err(unreachable(status.message().to_string()));
            }
            Ok(Err(status)) => return Err(no_answer(status.message().to_string())),
            Ok(Ok(r)) => r.into_inner(),
        };
        if !resp.error.is_empty() {
            return Err(ForwardError::Protocol(resp.error));
        }
        let (reply, body): (Reply, Vec<u8>) =
            unpack("forward reply", &resp.payload).map_err(ForwardError::Protocol)?;
        match reply {
            Reply::Http(mut r) => {
                r.body = body;
                Ok(Reply::Http(r))
            }
            Reply::Failed { kind, message } => Err(match kind {
                FailKind::Rejected => RpcError::Rejected(message).into(),
                FailKind::NoLeader => RpcError::NoLeader.into(),
                FailKind::NotLeader => ForwardError::NotLeader(addr.to_string()),
                FailKind::Unknown => RpcError::OutcomeUnknown.into(),
                FailKind::Other => ForwardError::Protocol(message),
            }),
            other => Ok(other),
        }
    }

    /// Applies `cmd` as write `id` on the leader at `addr`. Sending it again with the same
    /// `id` (to this or a later leader) never applies it twice.
    pub async fn apply(
        &self,
        addr: &str,
        cmd: Command,
        id: RequestId,
        timeout: Duration,
    ) -> Result<(u64, Response), ForwardError> {
        match self.send(addr, Op::ApplyOnce { cmd, id }, timeout).await? {
            Reply::Applied { index, response } => Ok((index, response)),
            other => Err(ForwardError::Protocol(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// Asks the leader at `addr` for the index a read must see.
    pub async fn read_index(
        &self,
        addr: &str,
        consistent: bool,
        timeout: Duration,
    ) -> Result<u64, ForwardError> {
        match self
            .send(addr, Op::ReadIndex { consistent }, timeout)
            .await?
        {
            Reply::ReadIndex { index } => Ok(index),
            other => Err(ForwardError::Protocol(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// Whether the server at `addr` already has raft state.
    pub async fn raft_initialized(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<bool, ForwardError> {
        match self.send(addr, Op::RaftStatus, timeout).await? {
            Reply::RaftStatus { initialized } => Ok(initialized),
            other => Err(ForwardError::Protocol(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// Runs an HTTP API request on the server at `addr`.
    pub async fn http(
        &self,
        addr: &str,
        req: HttpRequest,
        timeout: Duration,
    ) -> Result<HttpResponse, ForwardError> {
        match self.send(addr, Op::Http(req), timeout).await? {
            Reply::Http(r) => Ok(r),
            other => Err(ForwardError::Protocol(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }
}

/// Answers forwarded requests on a server.
#[derive(Clone)]
pub struct ForwardService {
    datacenter: String,
    server: ServerHandle,
    http: Option<axum::Router>,
}

impl ForwardService {
    /// The tonic service; `http` is the server's API router (for client agents).
    pub fn server(
        datacenter: String,
        server: ServerHandle,
        http: Option<axum::Router>,
    ) -> ForwardServer<Self> {
        ForwardServer::new(Self {
            datacenter,
            server,
            http,
        })
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
    }

    async fn handle(&self, op: Op) -> Reply {
        let failed = |e: RpcError| {
            let kind = match &e {
                RpcError::Rejected(_) => FailKind::Rejected,
                RpcError::NoLeader => FailKind::NoLeader,
                RpcError::OutcomeUnknown => FailKind::Unknown,
                _ => FailKind::Other,
            };
            Reply::Failed {
                kind,
                message: e.to_string(),
            }
        };
        let not_leader = || Reply::Failed {
            kind: FailKind::NotLeader,
            message: String::new(),
        };
        match op {
            Op::Apply(_) | Op::ApplyOnce { .. } if !self.server.raft().is_leader() => not_leader(),
            Op::Apply(cmd) => match self.server.apply_local(cmd, None).await {
                Ok((index, response)) => Reply::Applied { index, response },
                Err(RpcError::Raft(e)) if e.is_not_leader() => not_leader(),
                Err(e) => failed(e),
            },
            Op::ApplyOnce { cmd, id } => match self.server.apply_local(cmd, Some(id)).await {
                Ok((index, response)) => Reply::Applied { index, response },
                Err(RpcError::Raft(e)) if e.is_not_leader() => not_leader(),
                Err(e) => failed(e),
            },
            Op::ReadIndex { consistent } => {
                if !self.server.raft().is_leader() {
                    return not_leader();
                }
                match self.server.leader_read_index(consistent).await {
                    Ok(index) => Reply::ReadIndex { index },
                    Err(e) => failed(e),
                }
            }
            Op::RaftStatus => match self.server.raft().is_initialized().await {
                Ok(initialized) => Reply::RaftStatus { initialized },
                Err(e) => failed(e.into()),
            },
            Op::Http(req) => match &self.http {
                Some(router) => Reply::Http(run_http(router.clone(), req).await),
                None => failed(RpcError::Rejected(
                    "this server does not serve forwarded HTTP requests".into(),
                )),
            },
        }
    }
}

/// Whether a failed call certainly never reached the server: the connection could not be
/// made (tonic maps a connect failure to `Unavailable` with hyper's "tcp connect error").
/// Anything else may have failed after the request was written.
fn never_sent(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && status.message().contains("connect error")
}

/// Runs `req` through the API router in-process.
async fn run_http(router: axum::Router, req: HttpRequest) -> HttpResponse {
    use tower::ServiceExt;
    let mut builder = axum::http::Request::builder()
        .method(req.method.as_str())
        .uri(req.uri.as_str());
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = match builder.body(axum::body::Body::from(req.body)) {
        Ok(r) => r,
        Err(e) => {
            return HttpResponse {
                status: 400,
                headers: Vec::new(),
                body: format!("invalid forwarded request: {e}").into_bytes(),
            };
        }
    };
    let resp = match router.oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = axum::body::to_bytes(resp.into_body(), MAX_MESSAGE)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    HttpResponse {
        status,
        headers,
        body,
    }
}

#[tonic::async_trait]
impl Forward for ForwardService {
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
        let (mut op, body): (Op, Vec<u8>) =
            unpack("forward request", &req.payload).map_err(tonic::Status::invalid_argument)?;
        if let Op::Http(r) = &mut op {
            r.body = body;
        }
        let reply = self.handle(op).await;
        let reply_body = match &reply {
            Reply::Http(r) => r.body.clone(),
            _ => Vec::new(),
        };
        let payload =
            pack("forward reply", &reply, &reply_body).map_err(tonic::Status::internal)?;
        Ok(tonic::Response::new(ForwardResponse {
            payload,
            ..Default::default()
        }))
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
