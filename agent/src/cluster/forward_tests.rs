//! The forwarding path end to end, in process: a real raft node behind a real gRPC listener
//! on 127.0.0.1:0. A write forwarded twice with the same request id (its first answer lost on
//! the way back, as when the leader dies after applying it) takes effect once; failures are
//! classified by whether the request can have been received.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::*;
use crate::catalog::{KvOp, KvVerb};
use crate::cluster::RpcListener;
use crate::cluster::raft_rpc::{Channels, RaftService};
use crate::raft::{RaftConfig, RaftNode, ServerNode};
use crate::server::{ClusterParts, SelfInfo, ServerHandle};
use meridian_rpc::TransportError;

const TIMEOUT: Duration = Duration::from_secs(5);

struct Leader {
    addr: String,
    server: ServerHandle,
    token: CancellationToken,
    _dir: tempfile::TempDir,
}

/// A one-server cluster serving raft and forwarding on a free port.
async fn leader() -> Leader {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = RpcListener::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let node = ServerNode {
        rpc_addr: addr.clone(),
        name: "s1".into(),
        node_id: "6e4f8f4a-0000-4000-8000-000000000001".into(),
    };
    let cfg = RaftConfig {
        heartbeat_interval: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(150),
        election_timeout_max: Duration::from_millis(300),
        ..RaftConfig::default()
    };
    let raft = RaftNode::open(dir.path(), 1, node, cfg)
        .await
        .expect("raft");
    raft.bootstrap_single().await.expect("bootstrap");
    raft.wait_for_leader(TIMEOUT).await.expect("leader");
    let me = SelfInfo {
        node: "s1".into(),
        node_id: "6e4f8f4a-0000-4000-8000-000000000001".into(),
        datacenter: "dc1".into(),
        address: "127.0.0.1".into(),
        rpc_port: 0,
        meta: Default::default(),
    };
    let (tracker, token) = (TaskTracker::new(), CancellationToken::new());
    let cluster = ClusterParts {
        hold: Duration::from_secs(2),
        ..ClusterParts::default()
    };
    let server = ServerHandle::start(raft.clone(), me, cluster, &tracker, token.child_token());
    let raft_svc = RaftService::server(raft, "dc1".into());
    let fwd_svc =
        crate::server::forward_handler::forward_service("dc1".into(), server.clone(), None);
    tokio::spawn(listener.serve(
        raft_svc,
        meridian_rpc::RequirePeer::anyone(),
        fwd_svc,
        token.child_token(),
    ));
    Leader {
        addr,
        server,
        token,
        _dir: dir,
    }
}

fn set(key: &str, value: &str) -> Command {
    Command::Kv(KvOp {
        value: Some(value.as_bytes().to_vec()),
        ..KvOp::new(KvVerb::Set, key)
    })
}

fn forwarder() -> Forwarder {
    Forwarder::new("dc1".into(), Arc::new(Channels::default()))
}

/// (value, modify index) of `key` on the leader.
fn value(l: &Leader, key: &str) -> Option<(String, u64)> {
    let state = l.server.raft().state();
    state.kv_get(key).map(|e| {
        let v = e.value.as_deref().unwrap_or_default();
        (String::from_utf8_lossy(v).into_owned(), e.modify_index)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_forwarded_twice_with_one_id_is_applied_once() {
    let l = leader().await;
    let fwd = forwarder();
    let id = crate::server::new_request_id();
    let (first, resp) = fwd
        .apply(&l.addr, set("k", "first"), id, TIMEOUT)
        .await
        .expect("first copy");
    assert_eq!(resp, Response::Bool(true));
    // The first answer is "lost"; meanwhile another client overwrites the key.
    let (second, _) = fwd
        .apply(
            &l.addr,
            set("k", "second"),
            crate::server::new_request_id(),
            TIMEOUT,
        )
        .await
        .expect("other write");
    assert!(second > first);
    // The retry with the same id answers like the first copy and changes nothing.
    let (_, again) = fwd
        .apply(&l.addr, set("k", "first"), id, TIMEOUT)
        .await
        .expect("retry");
    assert_eq!(again, Response::Bool(true));
    assert_eq!(value(&l, "k"), Some(("second".into(), second)));
    // The same through the server's own retry loop (a leader retrying locally).
    let (_, local) = l
        .server
        .apply_as(set("k", "first"), id)
        .await
        .expect("local retry");
    assert_eq!(local, Response::Bool(true));
    assert_eq!(value(&l, "k"), Some(("second".into(), second)));
    l.token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sent_from_outside_is_refused_and_changes_nothing() {
    let l = leader().await;
    let batch = Command::Batch(vec![crate::catalog::Request::new(1, set("k", "v"))]);
    let err = forwarder()
        .apply(&l.addr, batch, crate::server::new_request_id(), TIMEOUT)
        .await
        .expect_err("a forwarded batch");
    assert!(
        err.to_string().contains("proposed only by the leader"),
        "unexpected error: {err}"
    );
    assert_eq!(value(&l, "k"), None);
    l.token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_was_not_sent_but_a_silent_server_may_have_acted() {
    let fwd = forwarder();
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let id = crate::server::new_request_id();
    let err = fwd
        .apply(&refused, set("k", "v"), id, TIMEOUT)
        .await
        .expect_err("nobody listens");
    assert!(
        matches!(
            err,
            ForwardError::Transport(TransportError::Unreachable { .. })
        ),
        "refused connect is 'not sent': {err:?}"
    );
    // A server that accepts and never answers (hung, SIGSTOPped) may have applied the write.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("addr").to_string();
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    let err = fwd
        .apply(&silent_addr, set("k", "v"), id, Duration::from_millis(300))
        .await
        .expect_err("no answer");
    assert!(
        matches!(
            err,
            ForwardError::Transport(TransportError::NoAnswer { .. })
        ),
        "silence is 'may have been applied': {err:?}"
    );
    hold.abort();
    assert_eq!(
        RpcError::OutcomeUnknown.to_string(),
        "write outcome unknown: the leader was lost after the request was sent; it may or may not have been applied"
    );
}
