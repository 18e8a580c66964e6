//! The raft network seam: how this node sends raft RPCs (append, vote, snapshot) to peers.
//!
//! openraft needs a [`RaftNetworkFactory`] even for a single voter, which never calls it.
//! The factory here delegates to an object-safe [`RaftTransport`], so clustering can plug in
//! the real transport (gRPC over tonic on the server RPC port, 8300) and tests an in-memory
//! router, without touching the raft wiring. Until clustering lands, the only implementation
//! is [`NoTransport`], which reports every peer as unreachable; it never pretends an RPC
//! succeeded.
//!
//! Replication is pipelined when the transport says it [streams](RaftTransport::pipelines)
//! (the gRPC transport does): openraft's replication stream then sends each new batch of
//! entries as soon as the leader has submitted it, while earlier batches are still in flight,
//! and the follower answers them in order. A transport that does not stream gets openraft's
//! one-request-at-a-time fallback.
//!
//! The receiving side is [`RaftNode::handle_append_entries`](super::RaftNode::handle_append_entries),
//! [`RaftNode::handle_stream_append`](super::RaftNode::handle_stream_append) and friends.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, stream_append_sequential};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult, VoteRequest,
    VoteResponse,
};
use openraft::{OptionalSend, RaftNetworkV2};

use super::type_config::{ServerNode, Snapshot, SnapshotData, TypeConfig, Vote};

/// Result of an RPC that the transport could not deliver or that failed remotely.
pub type RpcResult<T> = Result<T, RPCError<TypeConfig>>;

/// AppendEntries requests to one peer, in log order (see [`RaftTransport::stream_append`]).
pub type AppendStream = BoxStream<'static, AppendEntriesRequest<TypeConfig>>;

/// The answers to an [`AppendStream`]: one per request, in the same order. The stream ends
/// after the first error.
pub type AppendResults = BoxStream<'static, RpcResult<StreamAppendResult<TypeConfig>>>;

/// What a transport counts about one peer (`/v1/agent/metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStats {
    /// Raft id of the peer.
    pub id: u64,
    /// Its RPC address.
    pub addr: String,
    /// Whether its last RPC failed.
    pub failing: bool,
    /// Failed RPCs to it, ever.
    pub failures_total: u64,
    /// Times it came back after failing.
    pub recoveries_total: u64,
}

/// Object-safe raft transport to peers. One instance serves every peer; `target` and `node`
/// say where to send.
pub trait RaftTransport: Send + Sync + 'static {
    /// Sends an AppendEntries (or heartbeat) request.
    fn append_entries(
        &self,
        target: u64,
        node: &ServerNode,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> BoxFuture<'static, RpcResult<AppendEntriesResponse<TypeConfig>>>;

    /// Whether [`stream_append`](Self::stream_append) pipelines. When `false` (the default),
    /// replication sends one AppendEntries at a time through
    /// [`append_entries`](Self::append_entries) and waits for each answer.
    fn pipelines(&self) -> bool {
        false
    }

    /// Pipelined replication: sends every request of `input` as soon as raft yields it,
    /// without waiting for the answers to earlier ones, and returns the answers in order.
    /// Only called when [`pipelines`](Self::pipelines) says so.
    fn stream_append(
        &self,
        target: u64,
        node: &ServerNode,
        input: AppendStream,
        option: RPCOption,
    ) -> BoxFuture<'static, RpcResult<AppendResults>> {
        let _ = (input, option);
        let err = RPCError::Unreachable(Unreachable::from_string(format!(
            "the transport to node {target} ({node}) does not stream appends"
        )));
        async move { Err(err) }.boxed()
    }

    /// Sends a RequestVote (or pre-vote, when `pre_vote`) request.
    fn vote(
        &self,
        target: u64,
        node: &ServerNode,
        req: VoteRequest<TypeConfig>,
        pre_vote: bool,
        option: RPCOption,
    ) -> BoxFuture<'static, RpcResult<VoteResponse<TypeConfig>>>;

    /// Sends a complete snapshot. `cancel` resolves when replication to `target` is closed;
    /// the transport should stop streaming then.
    fn full_snapshot(
        &self,
        target: u64,
        node: &ServerNode,
        vote: Vote,
        snapshot: Snapshot,
        cancel: BoxFuture<'static, ReplicationClosed>,
        option: RPCOption,
    ) -> BoxFuture<'static, Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>>>;

    /// Per-peer failure counters, if the transport keeps them.
    fn peer_stats(&self) -> Vec<PeerStats> {
        Vec::new()
    }
}

/// The transport of a node that has no cluster transport yet: every peer is unreachable.
///
/// A single voter never sends raft RPCs, so this is only reached if a second member was added
/// before the gRPC transport (tonic, port 8300) exists. That must fail loudly, never succeed.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTransport;

impl NoTransport {
    fn unreachable(target: u64, node: &ServerNode) -> Unreachable<TypeConfig> {
        Unreachable::from_string(format!(
            "no raft transport to node {target} ({node}): clustering transport not available"
        ))
    }
}

impl RaftTransport for NoTransport {
    fn append_entries(
        &self,
        target: u64,
        node: &ServerNode,
        _req: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> BoxFuture<'static, RpcResult<AppendEntriesResponse<TypeConfig>>> {
        let err = RPCError::Unreachable(Self::unreachable(target, node));
        async move { Err(err) }.boxed()
    }

    fn vote(
        &self,
        target: u64,
        node: &ServerNode,
        _req: VoteRequest<TypeConfig>,
        _pre_vote: bool,
        _option: RPCOption,
    ) -> BoxFuture<'static, RpcResult<VoteResponse<TypeConfig>>> {
        let err = RPCError::Unreachable(Self::unreachable(target, node));
        async move { Err(err) }.boxed()
    }

    fn full_snapshot(
        &self,
        target: u64,
        node: &ServerNode,
        _vote: Vote,
        _snapshot: Snapshot,
        _cancel: BoxFuture<'static, ReplicationClosed>,
        _option: RPCOption,
    ) -> BoxFuture<'static, Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>>> {
        let err = StreamingError::Unreachable(Self::unreachable(target, node));
        async move { Err(err) }.boxed()
    }
}

/// openraft's network factory over a [`RaftTransport`].
#[derive(Clone)]
pub struct NetworkFactory {
    transport: Arc<dyn RaftTransport>,
}

impl NetworkFactory {
    /// A factory sending through `transport`.
    pub fn new(transport: Arc<dyn RaftTransport>) -> Self {
        Self { transport }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &ServerNode) -> PeerClient {
        PeerClient {
            target,
            node: node.clone(),
            transport: self.transport.clone(),
        }
    }
}

/// openraft's per-peer client: forwards to the transport with the peer's address.
pub struct PeerClient {
    target: u64,
    node: ServerNode,
    transport: Arc<dyn RaftTransport>,
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotData;

    /// Pipelined when the transport streams (openraft then keeps sending new entries while
    /// earlier ones are in flight), else one request at a time.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, RpcResult<BoxStream<'s, RpcResult<StreamAppendResult<TypeConfig>>>>>
    where
        S: futures::Stream<Item = AppendEntriesRequest<TypeConfig>>
            + OptionalSend
            + Unpin
            + 'static,
    {
        if !self.transport.pipelines() {
            return stream_append_sequential(self, input, option);
        }
        let sent = self
            .transport
            .stream_append(self.target, &self.node, input.boxed(), option);
        async move {
            let results: BoxStream<'s, _> = sent.await?;
            Ok(results)
        }
        .boxed()
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<TypeConfig>> {
        self.transport
            .append_entries(self.target, &self.node, rpc, option)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<TypeConfig>> {
        self.transport
            .vote(self.target, &self.node, rpc, false, option)
            .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<TypeConfig>> {
        self.transport
            .vote(self.target, &self.node, rpc, true, option)
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        self.transport
            .full_snapshot(
                self.target,
                &self.node,
                vote,
                snapshot,
                cancel.boxed(),
                option,
            )
            .await
    }
}
