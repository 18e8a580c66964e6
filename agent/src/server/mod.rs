//! The server role of an agent: the datacenter's replicated state behind raft, plus the
//! leader's duties (self-registration, session TTLs, tombstone reaping).
//!
//! Callers (HTTP, DNS, the RPC router) write with [`ServerHandle::apply`], which stamps the
//! leader's clock into the command, and read with [`ServerHandle::read`], which honours the
//! consistency mode and never holds a lock across an await.

mod leader;
mod sessions;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::sessions::SessionTimers;
use crate::catalog::{Command, Request, Response, State};
use crate::raft::RaftNode;
use crate::rpc::{Consistency, RpcError};

/// Identity of this server as it registers itself in the catalog.
#[derive(Debug, Clone)]
pub struct SelfInfo {
    /// Node name.
    pub node: String,
    /// Node ID (UUID).
    pub node_id: String,
    /// Datacenter.
    pub datacenter: String,
    /// Advertised address.
    pub address: String,
    /// Server RPC port (the `consul` service port).
    pub rpc_port: u16,
    /// Node metadata.
    pub meta: std::collections::BTreeMap<String, String>,
}

/// A consistent view for one read: the state and what the headers report about it.
#[derive(Clone)]
pub struct ReadView {
    /// The applied state (immutable snapshot).
    pub state: Arc<State>,
    /// `X-Consul-KnownLeader`.
    pub known_leader: bool,
    /// `X-Consul-LastContact` in milliseconds.
    pub last_contact_ms: u64,
}

struct Inner {
    raft: RaftNode,
    me: SelfInfo,
    sessions: SessionTimers,
    /// Becomes true once this server led and registered itself in the catalog.
    ready_tx: watch::Sender<bool>,
}

/// Cheap-clone handle to the local server.
#[derive(Clone)]
pub struct ServerHandle(Arc<Inner>);

/// Unix time in milliseconds (the leader's clock that commands carry).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ServerHandle {
    /// Wraps a raft node and starts the leader duties on `tracker`, stopping with `token`.
    pub fn start(
        raft: RaftNode,
        me: SelfInfo,
        tracker: &TaskTracker,
        token: CancellationToken,
    ) -> Self {
        let (ready_tx, _) = watch::channel(false);
        let handle = ServerHandle(Arc::new(Inner {
            raft,
            me,
            sessions: SessionTimers::default(),
            ready_tx,
        }));
        tracker.spawn(leader::run(handle.clone(), token));
        handle
    }

    /// Waits until this server has led its datacenter and registered itself (true), or the
    /// handle is dropped (false).
    pub async fn ready(&self) -> bool {
        let mut rx = self.0.ready_tx.subscribe();
        rx.wait_for(|r| *r).await.is_ok()
    }

    /// The raft node.
    pub fn raft(&self) -> &RaftNode {
        &self.0.raft
    }

    /// This server's identity.
    pub fn me(&self) -> &SelfInfo {
        &self.0.me
    }

    /// Session TTL timers (leader-side).
    pub fn session_timers(&self) -> &SessionTimers {
        &self.0.sessions
    }

    /// Proposes a command through raft and returns its log index and the state machine's
    /// answer. A `Rejected` answer is turned into [`RpcError::Rejected`].
    pub async fn apply(&self, cmd: Command) -> Result<(u64, Response), RpcError> {
        let (index, resp) = self
            .0
            .raft
            .write(Request {
                now_ms: unix_ms(),
                cmd,
            })
            .await?;
        match resp {
            Response::Rejected(msg) => Err(RpcError::Rejected(msg)),
            other => Ok((index, other)),
        }
    }

    /// A state snapshot fresh enough for `mode`.
    pub async fn read(&self, mode: Consistency) -> Result<ReadView, RpcError> {
        let raft = &self.0.raft;
        let leader = raft.leader();
        match mode {
            Consistency::Stale => {}
            Consistency::Default => {
                if leader.is_none() {
                    return Err(RpcError::NoLeader);
                }
            }
            Consistency::Consistent => raft.read_barrier().await?,
        }
        Ok(ReadView {
            state: raft.state(),
            known_leader: leader.is_some(),
            last_contact_ms: raft.last_contact().map_or(0, |d| d.as_millis() as u64),
        })
    }

    /// A receiver of the applied index; changes after every applied batch.
    pub fn applied_rx(&self) -> watch::Receiver<u64> {
        self.0.raft.applied_rx()
    }

    /// Renews a session's TTL on the leader. `Ok(None)` if the session does not exist.
    pub async fn session_renew(
        &self,
        id: &str,
    ) -> Result<Option<crate::catalog::Session>, RpcError> {
        let view = self.read(Consistency::Default).await?;
        let Some(s) = view.state.session(id).cloned() else {
            return Ok(None);
        };
        self.0.sessions.renew(&s, tokio::time::Instant::now());
        Ok(Some(s))
    }
}

/// Parses a session TTL ("" = none) for the timers; invalid values were refused at create.
pub(crate) fn session_ttl(ttl: &str) -> Option<Duration> {
    if ttl.is_empty() {
        return None;
    }
    meridian_config::duration::parse_go_duration(ttl)
        .ok()
        .filter(|d| !d.is_zero())
}
