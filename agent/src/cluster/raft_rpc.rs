//! The raft transport between servers over gRPC (`raft.proto`, port 8300): the sending side
//! [`GrpcTransport`] (openraft's network, through the `raft::network` seam) and the
//! receiving side [`RaftService`], which hands requests to the local [`RaftNode`].
//!
//! One lazily connected HTTP/2 channel per peer address is reused for every RPC. Every call
//! is bounded by openraft's hard TTL. A peer that cannot be reached is `Unreachable` (openraft
//! backs off); anything else that goes wrong is a `Network` error. Requests name their
//! datacenter, and a server refuses raft traffic meant for another one.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use meridian_proto::v1::raft_client::RaftClient;
use meridian_proto::v1::raft_server::{Raft as RaftRpc, RaftServer};
use meridian_proto::v1::{RaftRequest, RaftResponse};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use super::peer_health::PeerHealth;
use super::wire::{self, WireError};
use crate::raft::network::{PeerStats, RaftTransport, RpcResult};
use crate::raft::type_config::{Snapshot, SnapshotMeta, Vote};
use crate::raft::{RaftNode, ServerNode, TypeConfig};

pub use meridian_rpc::{Channels, MAX_MESSAGE};

/// A vote request plus which round it is.
#[derive(Serialize, Deserialize)]
pub(crate) struct VoteEnvelope {
    req: VoteRequest<TypeConfig>,
    pre_vote: bool,
}

/// A snapshot's metadata; its bytes follow the JSON header raw (see [`pack_snapshot`]).
#[derive(Serialize, Deserialize)]
struct SnapshotHeader {
    vote: Vote,
    meta: SnapshotMeta,
}

/// `[u32 header length][header JSON][snapshot bytes]`: snapshot bytes are not JSON-escaped.
fn pack_snapshot(vote: &Vote, snapshot: &Snapshot) -> Result<Vec<u8>, WireError> {
    let header = wire::encode(
        "snapshot header",
        &SnapshotHeader {
            vote: *vote,
            meta: snapshot.meta.clone(),
        },
    )?;
    let len = u32::try_from(header.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + header.len() + snapshot.snapshot.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&snapshot.snapshot);
    Ok(out)
}

pub(crate) fn unpack_snapshot(bytes: &[u8]) -> Result<(Vote, Snapshot), String> {
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or("snapshot message too short")?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err("snapshot header truncated".into());
    }
    let (header, data) = rest.split_at(len);
    let h: SnapshotHeader = wire::decode("snapshot header", header).map_err(|e| e.to_string())?;
    Ok((
        h.vote,
        Snapshot {
            meta: h.meta,
            snapshot: data.to_vec(),
        },
    ))
}

/// Sends raft RPCs to peers over gRPC.
#[derive(Debug)]
pub struct GrpcTransport {
    datacenter: String,
    channels: Arc<Channels>,
    /// Logs a peer's failure and recovery once each, counts the rest.
    health: Arc<PeerHealth>,
}

impl GrpcTransport {
    /// A transport for servers of `datacenter`, sharing `channels`.
    pub fn new(datacenter: String, channels: Arc<Channels>) -> Self {
        Self {
            datacenter,
            channels,
            health: Arc::default(),
        }
    }

    /// Sends one raft RPC; `call` picks the method.
    fn call<F, Fut>(
        &self,
        target: u64,
        node: &ServerNode,
        payload: Result<Vec<u8>, WireError>,
        ttl: Duration,
        call: F,
    ) -> BoxFuture<'static, Result<Vec<u8>, RPCError<TypeConfig>>>
    where
        F: FnOnce(RaftClient<Channel>, RaftRequest) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<tonic::Response<RaftResponse>, tonic::Status>>
            + Send,
    {
        let channel = self.channels.get(&node.rpc_addr);
        let datacenter = self.datacenter.clone();
        let addr = node.rpc_addr.clone();
        let health = self.health.clone();
        async move {
            let payload = payload.map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
            let result = send(channel, datacenter, target, &addr, ttl, payload, call).await;
            match &result {
                Ok(_) => health.succeeded(target, &addr),
                Err(e) => health.failed(target, &addr, e),
            }
            result
        }
        .boxed()
    }
}

/// One raft RPC over `channel`, bounded by `ttl`.
async fn send<F, Fut>(
    channel: Result<Channel, tonic::transport::Error>,
    datacenter: String,
    target: u64,
    addr: &str,
    ttl: Duration,
    payload: Vec<u8>,
    call: F,
) -> Result<Vec<u8>, RPCError<TypeConfig>>
where
    F: FnOnce(RaftClient<Channel>, RaftRequest) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<tonic::Response<RaftResponse>, tonic::Status>> + Send,
{
    let channel = channel.map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
    let client = RaftClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let req = RaftRequest {
        datacenter,
        payload,
    };
    let resp = match tokio::time::timeout(ttl, call(client, req)).await {
        Err(_) => {
            return Err(RPCError::Network(NetworkError::from_string(format!(
                "raft rpc to {target} ({addr}) timed out after {ttl:?}"
            ))));
        }
        Ok(Err(status)) if status.code() == tonic::Code::Unavailable => {
            return Err(RPCError::Unreachable(Unreachable::from_string(format!(
                "raft peer {target} ({addr}) unavailable: {}",
                status.message()
            ))));
        }
        Ok(Err(status)) => {
            return Err(RPCError::Network(NetworkError::from_string(format!(
                "raft rpc to {target} ({addr}): {status}"
            ))));
        }
        Ok(Ok(r)) => r.into_inner(),
    };
    if !resp.error.is_empty() {
        return Err(RPCError::Network(NetworkError::from_string(format!(
            "raft peer {target} ({addr}): {}",
            resp.error
        ))));
    }
    Ok(resp.payload)
}

fn decoded<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: Result<Vec<u8>, RPCError<TypeConfig>>,
) -> RpcResult<T> {
    wire::decode(what, &bytes?).map_err(|e| RPCError::Network(NetworkError::new(&e)))
}

impl RaftTransport for GrpcTransport {
    fn append_entries(
        &self,
        target: u64,
        node: &ServerNode,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> BoxFuture<'static, RpcResult<AppendEntriesResponse<TypeConfig>>> {
        let payload = wire::encode("append entries", &req);
        let sent = self.call(
            target,
            node,
            payload,
            option.hard_ttl(),
            |mut c, r| async move { c.append_entries(r).await },
        );
        async move { decoded("append entries response", sent.await) }.boxed()
    }

    fn vote(
        &self,
        target: u64,
        node: &ServerNode,
        req: VoteRequest<TypeConfig>,
        pre_vote: bool,
        option: RPCOption,
    ) -> BoxFuture<'static, RpcResult<VoteResponse<TypeConfig>>> {
        let payload = wire::encode("vote", &VoteEnvelope { req, pre_vote });
        let sent = self.call(
            target,
            node,
            payload,
            option.hard_ttl(),
            |mut c, r| async move { c.vote(r).await },
        );
        async move { decoded("vote response", sent.await) }.boxed()
    }

    fn full_snapshot(
        &self,
        target: u64,
        node: &ServerNode,
        vote: Vote,
        snapshot: Snapshot,
        cancel: BoxFuture<'static, ReplicationClosed>,
        option: RPCOption,
    ) -> BoxFuture<'static, Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>>> {
        let payload = pack_snapshot(&vote, &snapshot);
        // A snapshot may be large: allow ten hard TTLs for it.
        let sent = self.call(
            target,
            node,
            payload,
            option.hard_ttl() * 10,
            |mut c, r| async move { c.install_snapshot(r).await },
        );
        async move {
            tokio::select! {
                closed = cancel => Err(StreamingError::Closed(closed)),
                r = sent => match decoded::<SnapshotResponse<TypeConfig>>("snapshot response", r) {
                    Ok(resp) => Ok(resp),
                    Err(RPCError::Unreachable(u)) => Err(StreamingError::Unreachable(u)),
                    Err(RPCError::Timeout(t)) => Err(StreamingError::Timeout(t)),
                    Err(other) => Err(StreamingError::Network(NetworkError::new(&other))),
                },
            }
        }
        .boxed()
    }

    fn peer_stats(&self) -> Vec<PeerStats> {
        self.health.stats()
    }
}

/// Serves raft RPCs from peers to the local raft node.
#[derive(Clone)]
pub struct RaftService {
    raft: RaftNode,
    datacenter: String,
}

impl RaftService {
    /// The tonic service for `raft`.
    pub fn server(raft: RaftNode, datacenter: String) -> RaftServer<Self> {
        RaftServer::new(Self { raft, datacenter })
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn check_dc(&self, req: &RaftRequest) -> Result<(), tonic::Status> {
        if req.datacenter == self.datacenter {
            Ok(())
        } else {
            Err(tonic::Status::failed_precondition(format!(
                "raft request for datacenter {:?} reached a server of {:?}",
                req.datacenter, self.datacenter
            )))
        }
    }
}

/// Wraps a handler's result into a response: payload, or the error's text.
fn respond<T: Serialize, E: std::fmt::Display>(
    what: &'static str,
    r: Result<T, E>,
) -> tonic::Response<RaftResponse> {
    let resp = match r {
        Ok(v) => match wire::encode(what, &v) {
            Ok(payload) => RaftResponse {
                payload,
                error: String::new(),
            },
            Err(e) => RaftResponse {
                payload: Vec::new(),
                error: e.to_string(),
            },
        },
        Err(e) => RaftResponse {
            payload: Vec::new(),
            error: e.to_string(),
        },
    };
    tonic::Response::new(resp)
}

fn bad_payload(e: impl std::fmt::Display) -> tonic::Status {
    tonic::Status::invalid_argument(e.to_string())
}

#[tonic::async_trait]
impl RaftRpc for RaftService {
    async fn append_entries(
        &self,
        request: tonic::Request<RaftRequest>,
    ) -> Result<tonic::Response<RaftResponse>, tonic::Status> {
        let req = request.into_inner();
        self.check_dc(&req)?;
        let ae: AppendEntriesRequest<TypeConfig> =
            wire::decode("append entries", &req.payload).map_err(bad_payload)?;
        Ok(respond(
            "append entries response",
            self.raft.handle_append_entries(ae).await,
        ))
    }

    async fn vote(
        &self,
        request: tonic::Request<RaftRequest>,
    ) -> Result<tonic::Response<RaftResponse>, tonic::Status> {
        let req = request.into_inner();
        self.check_dc(&req)?;
        let v: VoteEnvelope = wire::decode("vote", &req.payload).map_err(bad_payload)?;
        Ok(respond(
            "vote response",
            self.raft.handle_vote(v.req, v.pre_vote).await,
        ))
    }

    async fn install_snapshot(
        &self,
        request: tonic::Request<RaftRequest>,
    ) -> Result<tonic::Response<RaftResponse>, tonic::Status> {
        let req = request.into_inner();
        self.check_dc(&req)?;
        let (vote, snapshot) = unpack_snapshot(&req.payload).map_err(bad_payload)?;
        Ok(respond(
            "snapshot response",
            self.raft.handle_full_snapshot(vote, snapshot).await,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_packing_round_trips_and_rejects_garbage() {
        assert!(unpack_snapshot(b"").is_err());
        assert!(unpack_snapshot(&[0, 0, 0, 9, b'{']).is_err());
        assert!(unpack_snapshot(&[0, 0, 0, 1, b'x']).is_err());
    }
}
