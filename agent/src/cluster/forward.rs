//! Request forwarding over gRPC (`rpc.proto`, port 8300): a follower sends writes to the
//! leader and asks it for a read index; a client agent sends its HTTP API requests to a
//! server. [`Forwarder`] is the sending side; the receiving one is the server's
//! `server::forward_handler`, behind meridian-rpc's `ForwardEndpoint`. This file owns the
//! server protocol (what a request asks, what comes back); the transport is the seam's.
//!
//! Reads are never shipped as results: a follower asks the leader for the index a read must
//! see (`ReadIndex`, with a quorum check for `?consistent`), waits until it has applied that
//! far and answers from its own state. Client agents, which hold no state, forward the whole
//! HTTP request; the server runs it through its own API router, so every endpoint,
//! blocking query and filter behaves the same on a client as on a server.

use std::sync::Arc;
use std::time::Duration;

use meridian_rpc::frame::{pack, unpack};
use meridian_rpc::{Channels, TransportError};
pub use meridian_rpc::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::catalog::{Command, RequestId, Response};
use crate::rpc::RpcError;

/// Marks an HTTP API request that arrived over the forward RPC (from a WAN gateway or a
/// client agent of this datacenter) rather than on the HTTP listener. Only the catalog
/// copy a gateway streams trusts it (`http/copy_read.rs`); client agents never forward
/// that path, and `?dc=` does not relay it.
#[derive(Debug, Clone, Copy)]
pub struct ViaCluster;

/// An answer of the agent's own API router as an [`HttpResponse`] (for a forwarded request,
/// or a local one whose body must be read): status, the headers that are text, and the
/// body up to `max` bytes (an unreadable body is empty).
pub async fn read_response(resp: axum::response::Response, max: usize) -> HttpResponse {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = axum::body::to_bytes(resp.into_body(), max)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// What a forwarded request asks.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Op {
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
pub(crate) enum Reply {
    Applied { index: u64, response: Response },
    ReadIndex { index: u64 },
    Http(HttpResponse),
    RaftStatus { initialized: bool },
    Failed { kind: FailKind, message: String },
}

/// Failure kinds that must survive the hop, so the caller sees the same [`RpcError`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum FailKind {
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
    /// The transport failed: never sent (`Unreachable`), or sent with no answer
    /// (`NoAnswer`: the server may have acted on it; a write must not be retried without
    /// its request id), or the envelope was refused.
    #[error(transparent)]
    Transport(#[from] TransportError),
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

pub(crate) fn body_of(op: &Op) -> &[u8] {
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
        let payload = pack("forward request", &op, body_of(&op)).map_err(ForwardError::Protocol)?;
        let reply = meridian_rpc::call(&self.channels, addr, &self.datacenter, payload, timeout)
            .await
            .map_err(ForwardError::from)?;
        let (reply, body): (Reply, Vec<u8>) =
            unpack("forward reply", &reply).map_err(ForwardError::Protocol)?;
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

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
