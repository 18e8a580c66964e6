//! How a client agent reaches its datacenter's servers (Consul's client `router`/`manager`):
//! it picks a server from the LAN pool (alive, `role=server`, same datacenter), keeps using
//! it while it answers, and moves to another when it fails or leaves the pool, so load
//! spreads as the pool changes. Requests travel over the forward RPC (`forward.rs`).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::seq::SliceRandom;

use super::Forwarder;
use super::coalesce::{Coalescer, is_blocking_read};
use super::forward::{ForwardError, HttpRequest, HttpResponse};
use crate::gossip::{GossipHandle, MemberStatus, Role};
use crate::rpc::RpcError;
use meridian_rpc::TransportError;

/// Longest wait for a forwarded blocking query (they wait up to 10 min + jitter).
const BLOCKING_TIMEOUT: Duration = Duration::from_secs(11 * 60);
/// Longest wait for any other forwarded request: well past a server's own hold timeout
/// for a leader, short enough that a hung (SIGSTOPped, partitioned) server is given up on
/// and the request tried on another.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// How long `req` may take: blocking queries (`?index=`) wait long by design.
fn timeout_for(req: &HttpRequest) -> Duration {
    let blocking = req
        .uri
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("index=")));
    if blocking {
        BLOCKING_TIMEOUT
    } else {
        REQUEST_TIMEOUT
    }
}

/// The servers a client agent talks to.
#[derive(Debug)]
pub struct RemoteServers {
    datacenter: String,
    gossip: GossipHandle,
    forwarder: Forwarder,
    preferred: Mutex<Option<String>>,
    /// Identical blocking reads in flight, shared (`coalesce.rs`).
    shared: Arc<Coalescer>,
}

impl RemoteServers {
    /// Servers of `datacenter` found through `gossip`, reached with `forwarder`.
    pub fn new(datacenter: String, gossip: GossipHandle, forwarder: Forwarder) -> Self {
        Self {
            datacenter,
            gossip,
            forwarder,
            preferred: Mutex::new(None),
            shared: Arc::default(),
        }
    }

    /// RPC addresses of the alive servers, the preferred one first, the rest shuffled.
    pub fn candidates(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .gossip
            .members()
            .into_iter()
            .filter(|m| {
                m.status == MemberStatus::Alive
                    && m.tags.role() == Some(Role::Server)
                    && m.tags.datacenter() == Some(self.datacenter.as_str())
            })
            .filter_map(|m| m.tags.rpc_addr().map(|a| a.to_string()))
            .collect();
        all.shuffle(&mut rand::rng());
        if let Some(p) = self.preferred.lock().clone()
            && let Some(pos) = all.iter().position(|a| *a == p)
        {
            all.swap(0, pos);
        }
        all
    }

    /// [`Self::http`] for a client's API request: a blocking read identical to one in
    /// flight waits for that one's answer instead of asking again.
    pub async fn http_shared(self: &Arc<Self>, req: HttpRequest) -> Result<HttpResponse, RpcError> {
        if !is_blocking_read(&req) {
            return self.http(req).await;
        }
        let this = Arc::clone(self);
        self.shared
            .share(req, move |req| async move { this.http(req).await })
            .await
    }

    /// Runs an HTTP API request on a server, trying the next one when a server cannot be
    /// reached or loses the answer. A write carries a request id (chosen here, once), so
    /// running it again on another server after its answer was lost applies it once; if no
    /// server answers it after one may have received it, its outcome is unknown. `No known
    /// Consul servers` when the pool has none.
    pub async fn http(&self, mut req: HttpRequest) -> Result<HttpResponse, RpcError> {
        let candidates = self.candidates();
        if candidates.is_empty() {
            return Err(RpcError::NoServers);
        }
        let read = matches!(req.method.as_str(), "GET" | "HEAD");
        if !read && req.request_id.is_none() {
            req.request_id = Some(crate::server::new_request_id().to_string());
        }
        let mut last = None;
        let mut maybe_sent = false;
        let timeout = timeout_for(&req);
        for addr in candidates {
            match self.forwarder.http(&addr, req.clone(), timeout).await {
                Ok(resp) => {
                    *self.preferred.lock() = Some(addr);
                    return Ok(resp);
                }
                Err(ForwardError::Remote(e)) => return Err(e),
                Err(e) => {
                    maybe_sent |= !read
                        && matches!(e, ForwardError::Transport(TransportError::NoAnswer { .. }));
                    tracing::debug!(server = %addr, cause = %e, "server failed; trying another");
                    last = Some(e);
                }
            }
        }
        if maybe_sent {
            *self.preferred.lock() = None;
            return Err(RpcError::OutcomeUnknown);
        }
        *self.preferred.lock() = None;
        Err(RpcError::Forward(last.map_or_else(
            || "no server answered".into(),
            |e| e.to_string(),
        )))
    }
}
