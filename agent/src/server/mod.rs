//! The server role of an agent: the datacenter's replicated state behind raft, plus the
//! leader's duties (self-registration, session TTLs, tombstone reaping).
//!
//! Callers (HTTP, DNS, the RPC router) write with [`ServerHandle::apply`], which stamps the
//! leader's clock into the command, and read with [`ServerHandle::read`], which honours the
//! consistency mode and never holds a lock across an await.

pub mod acl_primary;
pub mod acl_replication;
pub mod autopilot;
pub mod forward_handler;
mod leader;
mod reconcile;
pub mod replication;
mod sessions;
pub(crate) mod write;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::autopilot::AutopilotConfig;
pub use self::sessions::SessionTimers;
pub use self::write::fresh_uuid;
pub(crate) use self::write::new_request_id;
use crate::catalog::State;
use crate::cluster::{ForwardError, Forwarder};
use crate::gossip::GossipHandle;
use crate::raft::RaftNode;
use crate::rpc::{Consistency, RpcError};
use meridian_rpc::TransportError;

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

/// What a server needs to take part in a cluster; all optional for a lone server.
#[derive(Debug, Default)]
pub struct ClusterParts {
    /// Sends writes and read-index requests to the leader.
    pub forwarder: Option<Forwarder>,
    /// How long a request waits for a leader.
    pub hold: Duration,
    /// The LAN pool (servers, members to reconcile).
    pub gossip: Option<GossipHandle>,
    /// Autopilot settings.
    pub autopilot: AutopilotConfig,
    /// ACL duties of the leader while its datacenter is the ACL primary (`None`: ACLs off).
    pub acl: Option<AclDuties>,
}

/// What the leader does for ACLs while its datacenter is the primary in effect (see
/// `leader.rs`).
#[derive(Clone)]
pub struct AclDuties {
    /// `acl.tokens.initial_management`, created as a management token when missing.
    pub initial_management: Option<String>,
    /// The ACL primary in effect (it can move at runtime: `acl_primary.rs`).
    pub primary: Arc<acl_primary::PrimaryCell>,
}

impl std::fmt::Debug for AclDuties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.initial_management.as_ref().map(|_| "<set>");
        f.debug_struct("AclDuties")
            .field("initial_management", &set)
            .field("primary", &self.primary.get())
            .finish()
    }
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
    /// Sends writes and read-index requests to the leader when this server follows.
    forwarder: Option<Forwarder>,
    /// How long a request waits for a leader to be known (Consul's `rpc_hold_timeout`,
    /// kept short so a leaderless datacenter answers `No cluster leader` quickly).
    hold: Duration,
    /// The LAN pool the leader reconciles into the catalog and raft membership.
    gossip: Option<GossipHandle>,
    autopilot: AutopilotConfig,
    sessions: SessionTimers,
    acl: Option<AclDuties>,
}

/// Cheap-clone handle to the local server.
#[derive(Clone)]
pub struct ServerHandle(Arc<Inner>);

/// Pause between attempts while a leader is being found.
const RETRY: Duration = Duration::from_millis(25);

/// Unix time in milliseconds (the leader's clock that commands carry).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ServerHandle {
    /// Wraps a raft node and starts the leader duties on `tracker`, stopping with `token`.
    /// Without a `forwarder` this server can only answer while it leads (a single server).
    pub fn start(
        raft: RaftNode,
        me: SelfInfo,
        cluster: ClusterParts,
        tracker: &TaskTracker,
        token: CancellationToken,
    ) -> Self {
        let handle = ServerHandle(Arc::new(Inner {
            raft,
            me,
            forwarder: cluster.forwarder,
            hold: cluster.hold,
            gossip: cluster.gossip,
            autopilot: cluster.autopilot,
            sessions: SessionTimers::default(),
            acl: cluster.acl,
        }));
        tracker.spawn(leader::run(handle.clone(), token));
        handle
    }

    /// The ACL duties of this server when it leads, if any.
    pub fn acl_duties(&self) -> Option<&AclDuties> {
        self.0.acl.as_ref()
    }

    /// Waits until this server's state shows it registered with a passing `serfHealth` (the
    /// leader did it, here or on another server) — true — or raft stopped — false.
    pub async fn ready(&self) -> bool {
        let mut rx = self.applied_rx();
        loop {
            let state = self.0.raft.state();
            let me = &self.0.me.node;
            if state.node_checks(me).any(|c| {
                c.check_id == crate::catalog::SERF_HEALTH
                    && c.status == crate::catalog::HealthStatus::Passing
            }) {
                return true;
            }
            if rx.changed().await.is_err() {
                return false;
            }
        }
    }

    /// The raft node.
    pub fn raft(&self) -> &RaftNode {
        &self.0.raft
    }

    /// This server's identity.
    pub fn me(&self) -> &SelfInfo {
        &self.0.me
    }

    /// The LAN pool, if this server is in one.
    pub fn gossip(&self) -> Option<&GossipHandle> {
        self.0.gossip.as_ref()
    }

    /// Effective autopilot settings: those stored through the API, else this server's
    /// defaults (Consul's, with a short stabilization time in `-dev`).
    pub fn autopilot(&self) -> AutopilotConfig {
        match self.0.raft.state().stored_autopilot() {
            Some(stored) => AutopilotConfig::from(stored),
            None => self.0.autopilot.clone(),
        }
    }

    /// Session TTL timers (leader-side).
    pub fn session_timers(&self) -> &SessionTimers {
        &self.0.sessions
    }

    /// On the leader: the index a read must see (the guarantees per mode are tabled at
    /// [`Consistency`]). `consistent` confirms leadership with a quorum first (ReadIndex: a
    /// heartbeat round sent after the read arrived; openraft coalesces the rounds of
    /// concurrent reads, so many reads share one round trip); otherwise the leader trusts its
    /// lease (Consul's default mode: no round trip) and reads at its commit index — which is at least the first
    /// entry of its own term, so a just-elected leader never answers from before a write
    /// its predecessor acknowledged, and at least what any follower may have applied. Both
    /// wait until this server applied that far.
    pub async fn leader_read_index(&self, consistent: bool) -> Result<u64, RpcError> {
        let raft = &self.0.raft;
        if consistent {
            raft.read_barrier().await?;
        } else {
            raft.lease_read_barrier().await?;
        }
        Ok(*raft.applied_rx().borrow())
    }

    /// `None` when this server leads; otherwise the leader's raft id and RPC address and the
    /// forwarder. Waits until `deadline` for a leader to be known.
    async fn leader_or_wait(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<Option<(u64, String, &Forwarder)>, RpcError> {
        let raft = &self.0.raft;
        loop {
            if raft.is_leader() {
                return Ok(None);
            }
            if let (Some((id, node)), Some(fwd)) = (raft.leader(), &self.0.forwarder) {
                return Ok(Some((id, node.rpc_addr, fwd)));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RpcError::NoLeader);
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Runs an HTTP API request on the leader (for leader-only operations reached on a
    /// follower). `None` when this server leads and should answer itself.
    pub async fn forward_http_to_leader(
        &self,
        req: crate::cluster::forward::HttpRequest,
    ) -> Result<Option<crate::cluster::forward::HttpResponse>, RpcError> {
        let deadline = tokio::time::Instant::now() + self.0.hold;
        let read = matches!(req.method.as_str(), "GET" | "HEAD");
        match self.leader_or_wait(deadline).await? {
            None => Ok(None),
            Some((_, addr, fwd)) => match fwd.http(&addr, req, self.0.hold).await {
                Ok(resp) => Ok(Some(resp)),
                // A read that got no answer changed nothing.
                Err(ForwardError::Transport(TransportError::NoAnswer { .. })) if read => {
                    Err(RpcError::NoLeader)
                }
                Err(e) => Err(self.forward_failed(e)),
            },
        }
    }

    fn forward_failed(&self, e: ForwardError) -> RpcError {
        match e {
            ForwardError::Remote(e) => e,
            ForwardError::NotLeader(_)
            | ForwardError::Transport(TransportError::Unreachable { .. }) => {
                tracing::debug!(cause = %e, "forward to leader failed before sending");
                RpcError::NoLeader
            }
            ForwardError::Transport(TransportError::NoAnswer { .. }) => {
                tracing::debug!(cause = %e, "forwarded request unanswered");
                RpcError::OutcomeUnknown
            }
            ForwardError::Protocol(msg)
            | ForwardError::Transport(TransportError::Protocol(msg)) => RpcError::Forward(msg),
            ForwardError::Transport(other) => RpcError::Forward(other.to_string()),
        }
    }

    /// A state snapshot fresh enough for `mode`. On a follower, default and consistent reads
    /// first learn the leader's read index and wait until this server applied that far.
    pub async fn read(&self, mode: Consistency) -> Result<ReadView, RpcError> {
        let raft = &self.0.raft;
        if mode != Consistency::Stale {
            self.catch_up(mode == Consistency::Consistent).await?;
        }
        let leader = raft.leader();
        Ok(ReadView {
            state: raft.state(),
            known_leader: leader.is_some(),
            last_contact_ms: raft.last_contact().map_or(0, |d| d.as_millis() as u64),
        })
    }

    /// Makes the local state at least as fresh as the leader's read index.
    async fn catch_up(&self, consistent: bool) -> Result<(), RpcError> {
        let deadline = tokio::time::Instant::now() + self.0.hold;
        loop {
            let attempt = match self.leader_or_wait(deadline).await? {
                None => self.leader_read_index(consistent).await,
                Some((_, addr, fwd)) => fwd
                    .read_index(&addr, consistent, self.0.hold)
                    .await
                    .map_err(|e| self.forward_failed(e)),
            };
            match attempt {
                Ok(index) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let wait = self.0.raft.wait_applied(index);
                    return match tokio::time::timeout(left.max(RETRY), wait).await {
                        Ok(r) => r.map_err(RpcError::from),
                        Err(_) => Err(RpcError::NoLeader),
                    };
                }
                Err(RpcError::Raft(e)) if e.is_not_leader() => {}
                // A read that got no answer changed nothing: ask again.
                Err(RpcError::NoLeader | RpcError::OutcomeUnknown) => {}
                Err(other) => return Err(other),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RpcError::NoLeader);
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// The index of the state a stale read sees now (no wait, no lock).
    pub fn applied_now(&self) -> u64 {
        self.0.raft.state().applied_index()
    }

    /// Milliseconds since the leader was last heard from (0 on the leader, and before any
    /// contact), as [`ReadView::last_contact_ms`].
    pub fn last_contact_ms(&self) -> u64 {
        self.0
            .raft
            .last_contact()
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
