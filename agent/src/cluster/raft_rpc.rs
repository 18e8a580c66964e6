//! The raft transport between servers over gRPC (`raft.proto`, port 8300): the sending side
//! [`GrpcTransport`] (openraft's network, through the `raft::network` seam) and the
//! receiving side [`RaftService`], which hands requests to the local [`RaftNode`].
//!
//! One lazily connected HTTP/2 channel per peer address is reused for every RPC. Every call
//! is bounded by openraft's hard TTL. Replication is pipelined over a bidirectional stream
//! (`StreamAppend`, see [`open_append_stream`]): the leader sends each batch of entries as
//! soon as it has them, the follower answers each batch, in order, once it is durable. A peer that cannot be reached is `Unreachable` (openraft
//! backs off); anything else that goes wrong is a `Network` error. Requests name their
//! datacenter, and a server refuses raft traffic meant for another one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use meridian_proto::v1::raft_client::RaftClient;
use meridian_proto::v1::raft_server::{Raft as RaftRpc, RaftServer};
use meridian_proto::v1::{RaftRequest, RaftResponse};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use super::peer_health::PeerHealth;
use super::wire::{self, WireError};
use crate::raft::network::{AppendResults, AppendStream, PeerStats, RaftTransport, RpcResult};
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

/// A gRPC status as openraft's RPC error: `Unavailable` is an unreachable peer.
fn status_error(target: u64, addr: &str, status: &tonic::Status) -> RPCError<TypeConfig> {
    if status.code() == tonic::Code::Unavailable {
        RPCError::Unreachable(Unreachable::from_string(format!(
            "raft peer {target} ({addr}) unavailable: {}",
            status.message()
        )))
    } else {
        RPCError::Network(NetworkError::from_string(format!(
            "raft rpc to {target} ({addr}): {status}"
        )))
    }
}

/// Opens a `StreamAppend` to `addr` and returns the answers to `input`, in order.
///
/// `input` is pulled as fast as HTTP/2 flow control allows (that is the pipelining). Opening
/// is bounded by `ttl`; after that, the answers fail with a timeout when requests are
/// outstanding and none was answered for two whole `ttl` windows (an idle stream, waiting for
/// the leader's next entries, never times out).
async fn open_append_stream(
    channel: Result<Channel, tonic::transport::Error>,
    datacenter: String,
    target: u64,
    addr: String,
    ttl: Duration,
    input: AppendStream,
) -> RpcResult<AppendResults> {
    let channel = channel.map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
    let mut client = RaftClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let sent = Arc::new(AtomicU64::new(0));
    // A task feeds the requests into a channel that tonic reads (a boxed stream handed to
    // tonic directly trips a higher-ranked lifetime error). It stops as soon as the call is
    // gone: openraft's request stream holds the replication session's lock while it waits for
    // entries, so it must be dropped with the session, not when the next entry comes.
    let (tx, rx) = tokio::sync::mpsc::channel::<RaftRequest>(PIPELINE_DEPTH);
    tokio::spawn(feed_append_stream(
        input,
        tx,
        datacenter,
        target,
        sent.clone(),
    ));
    let outbound = tokio_stream::wrappers::ReceiverStream::new(rx);
    let call = client.stream_append(tonic::Request::new(outbound));
    let inbound = match tokio::time::timeout(ttl, call).await {
        Err(_) => {
            return Err(RPCError::Network(NetworkError::from_string(format!(
                "raft append stream to {target} ({addr}) not opened after {ttl:?}"
            ))));
        }
        Ok(Err(status)) => return Err(status_error(target, &addr, &status)),
        Ok(Ok(r)) => r.into_inner(),
    };
    let state = AnswerState {
        inbound,
        sent,
        answered: 0,
        target,
        addr,
        ttl,
    };
    let answers: AppendResults =
        futures::stream::unfold(Some(state), |st| next_answer(st).boxed()).boxed();
    Ok(answers)
}

/// Requests queued for one append stream's HTTP/2 body beyond what is in flight.
const PIPELINE_DEPTH: usize = 64;

/// Encodes `input` into `tx` until either ends; counts what it queued in `sent`.
async fn feed_append_stream(
    mut input: AppendStream,
    tx: tokio::sync::mpsc::Sender<RaftRequest>,
    datacenter: String,
    target: u64,
    sent: Arc<AtomicU64>,
) {
    loop {
        let req = tokio::select! {
            () = tx.closed() => return,
            req = input.next() => match req {
                Some(req) => req,
                None => return,
            },
        };
        let payload = match wire::encode("append entries", &req) {
            Ok(payload) => payload,
            // Cannot happen for these serde types. Ending the stream ends the session;
            // openraft starts another one from what the follower acknowledged.
            Err(e) => {
                tracing::error!(target, error = %e, "raft append not encodable");
                return;
            }
        };
        sent.fetch_add(1, Ordering::Relaxed);
        let msg = RaftRequest {
            datacenter: datacenter.clone(),
            payload,
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

/// What reading a `StreamAppend`'s answers needs between two of them.
struct AnswerState {
    inbound: tonic::Streaming<RaftResponse>,
    /// Requests handed to the stream so far.
    sent: Arc<AtomicU64>,
    answered: u64,
    target: u64,
    addr: String,
    ttl: Duration,
}

/// The next answer of an append stream; the stream ends after the first error.
async fn next_answer(
    state: Option<AnswerState>,
) -> Option<(
    RpcResult<StreamAppendResult<TypeConfig>>,
    Option<AnswerState>,
)> {
    let mut st = state?;
    let mut idle_windows = 0;
    let msg = loop {
        match tokio::time::timeout(st.ttl, st.inbound.message()).await {
            Ok(Ok(Some(msg))) => break msg,
            Ok(Ok(None)) => return None,
            Ok(Err(status)) => {
                return Some((Err(status_error(st.target, &st.addr, &status)), None));
            }
            Err(_) if st.sent.load(Ordering::Relaxed) > st.answered => {
                idle_windows += 1;
                if idle_windows >= 2 {
                    let err = NetworkError::from_string(format!(
                        "raft append stream to {} ({}): no answer for {:?}",
                        st.target,
                        st.addr,
                        st.ttl * 2
                    ));
                    return Some((Err(RPCError::Network(err)), None));
                }
            }
            Err(_) => idle_windows = 0,
        }
    };
    st.answered += 1;
    let item: RpcResult<StreamAppendResult<TypeConfig>> = if msg.error.is_empty() {
        wire::decode("append stream answer", &msg.payload)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))
    } else {
        Err(RPCError::Network(NetworkError::from_string(format!(
            "raft peer {} ({}): {}",
            st.target, st.addr, msg.error
        ))))
    };
    let go_on = matches!(item, Ok(Ok(_)));
    Some((item, go_on.then_some(st)))
}

impl RaftTransport for GrpcTransport {
    fn pipelines(&self) -> bool {
        true
    }

    fn stream_append(
        &self,
        target: u64,
        node: &ServerNode,
        input: AppendStream,
        option: RPCOption,
    ) -> BoxFuture<'static, RpcResult<AppendResults>> {
        let channel = self.channels.get(&node.rpc_addr);
        let datacenter = self.datacenter.clone();
        let addr = node.rpc_addr.clone();
        let health = self.health.clone();
        async move {
            let opened = open_append_stream(
                channel,
                datacenter,
                target,
                addr.clone(),
                option.hard_ttl(),
                input,
            )
            .await;
            match &opened {
                Ok(_) => health.succeeded(target, &addr),
                Err(e) => health.failed(target, &addr, e),
            }
            opened
        }
        .boxed()
    }

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
    tonic::Response::new(answer(what, r))
}

/// A handler's result as a response message: payload, or the error's text.
fn answer<T: Serialize, E: std::fmt::Display>(what: &'static str, r: Result<T, E>) -> RaftResponse {
    match r {
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
    }
}

fn bad_payload(e: impl std::fmt::Display) -> tonic::Status {
    tonic::Status::invalid_argument(e.to_string())
}

/// Why a follower stopped reading an append stream early (told to the leader as the last
/// answer).
type Refusal = Arc<parking_lot::Mutex<Option<String>>>;

#[tonic::async_trait]
impl RaftRpc for RaftService {
    type StreamAppendStream = BoxStream<'static, Result<RaftResponse, tonic::Status>>;

    async fn stream_append(
        &self,
        request: tonic::Request<tonic::Streaming<RaftRequest>>,
    ) -> Result<tonic::Response<Self::StreamAppendStream>, tonic::Status> {
        let datacenter = self.datacenter.clone();
        let refusal: Refusal = Arc::default();
        let refused = refusal.clone();
        // Requests are decoded in order; one for another datacenter, or one that does not
        // decode, ends the input: the ones before it are still answered, then the refusal.
        let input = request.into_inner().scan((), move |(), msg| {
            let req = match msg {
                Ok(m) if m.datacenter != datacenter => Err(format!(
                    "raft request for datacenter {:?} reached a server of {:?}",
                    m.datacenter, datacenter
                )),
                Ok(m) => {
                    wire::decode::<AppendEntriesRequest<TypeConfig>>("append entries", &m.payload)
                        .map_err(|e| e.to_string())
                }
                // The leader went away: nothing to tell it.
                Err(_) => return futures::future::ready(None),
            };
            futures::future::ready(match req {
                Ok(req) => Some(req),
                Err(why) => {
                    *refused.lock() = Some(why);
                    None
                }
            })
        });
        let answers = self
            .raft
            .handle_stream_append(input)
            .map(|r| Some(answer("append stream answer", r)))
            .chain(futures::stream::once(async move {
                refusal.lock().take().map(|error| RaftResponse {
                    payload: Vec::new(),
                    error,
                })
            }))
            .filter_map(|r| futures::future::ready(r.map(Ok)));
        Ok(tonic::Response::new(answers.boxed()))
    }

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
    use std::collections::BTreeMap;

    use crate::catalog::{Command, KvOp, KvVerb, Request};
    use crate::raft::{RaftConfig, RaftNode};

    const DEADLINE: Duration = Duration::from_secs(20);

    fn fast() -> RaftConfig {
        RaftConfig {
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            ..RaftConfig::default()
        }
    }

    /// A raft node with the gRPC transport, serving raft RPCs on a real loopback port.
    async fn node(id: u64, dir: &std::path::Path) -> (RaftNode, ServerNode) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let me = ServerNode {
            rpc_addr: listener.local_addr().expect("addr").to_string(),
            name: format!("s{id}"),
            node_id: String::new(),
        };
        let transport = Arc::new(GrpcTransport::new("dc1".into(), Arc::new(Channels::new())));
        let raft = RaftNode::open_with_transport(dir, id, me.clone(), fast(), transport)
            .await
            .expect("open raft");
        let router = tonic::transport::Server::builder()
            .add_service(RaftService::server(raft.clone(), "dc1".into()));
        let token = tokio_util::sync::CancellationToken::new();
        tokio::spawn(meridian_rpc::serve(router, listener, None, token.clone()));
        // The server stops with the test's runtime.
        std::mem::forget(token);
        (raft, me)
    }

    /// Replication runs over the pipelined `StreamAppend`: a burst of concurrent writes on
    /// the leader reaches a second server, in order and all of it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_replicate_over_the_append_stream() {
        let (d1, d2) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let (n1, s1) = node(1, d1.path()).await;
        let (n2, s2) = node(2, d2.path()).await;
        // Two voters: no write commits without the other server's acks on the stream.
        n1.initialize(BTreeMap::from([(1, s1), (2, s2)]))
            .await
            .expect("initialize");
        let (leader_id, _) = n1.wait_for_leader(DEADLINE).await.expect("leader");
        let (leader, follower) = if leader_id == 1 { (n1, n2) } else { (n2, n1) };
        let writes = (0..64).map(|i| {
            let leader = leader.clone();
            tokio::spawn(async move {
                let mut op = KvOp::new(KvVerb::Set, format!("k/{i}"));
                op.value = Some(b"v".to_vec());
                let cmd = Command::Kv(op);
                leader.write(Request::new(1, cmd)).await.expect("write")
            })
        });
        let mut last = 0;
        for w in writes {
            last = last.max(w.await.expect("task").0);
        }
        tokio::time::timeout(DEADLINE, follower.wait_applied(last))
            .await
            .expect("the follower applied every write in time")
            .expect("applied");
        let state = follower.state();
        for i in 0..64 {
            assert!(
                state.kv_get(&format!("k/{i}")).is_some(),
                "k/{i} replicated"
            );
        }
        assert!(
            follower.last_contact().is_some(),
            "the stream counts as contact"
        );
    }

    /// A stream whose requests name another datacenter is answered with a refusal naming
    /// it, and nothing of it reaches raft.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_stream_for_another_datacenter_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let (raft, me) = node(2, dir.path()).await;
        let req = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries: vec![],
        };
        let msg = RaftRequest {
            datacenter: "dc2".into(),
            payload: wire::encode("append entries", &req).expect("encode"),
        };
        let channel = Channels::new().get(&me.rpc_addr).expect("channel");
        let mut client = RaftClient::new(channel);
        let mut answers = client
            .stream_append(tonic::Request::new(futures::stream::iter(vec![msg])))
            .await
            .expect("stream opened")
            .into_inner();
        let first = answers.message().await.expect("an answer").expect("one");
        assert!(first.payload.is_empty());
        assert!(first.error.contains("\"dc2\""), "{}", first.error);
        assert!(answers.message().await.expect("end").is_none());
        assert_eq!(raft.stats().term, 0, "the leader's vote never reached raft");
        assert!(raft.last_contact().is_none());
    }

    #[test]
    fn snapshot_packing_round_trips_and_rejects_garbage() {
        assert!(unpack_snapshot(b"").is_err());
        assert!(unpack_snapshot(&[0, 0, 0, 9, b'{']).is_err());
        assert!(unpack_snapshot(&[0, 0, 0, 1, b'x']).is_err());
    }
}
