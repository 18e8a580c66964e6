//! Raft consensus for the catalog: openraft adapters and the [`RaftNode`] handle the rest of the
//! agent uses.
//!
//! Owns: the openraft type config, the state machine adapter, the network seam and the node
//! lifecycle (open, bootstrap, write, linearizable read barrier, shutdown). Persistence lives
//! in `crate::store`, command semantics in `crate::catalog`.
//!
//! ```text
//!   write(req) ─▶ openraft leader ─▶ LogStore::append (raft-log.db, fsync per batch)
//!                      │ committed
//!                      ▼
//!               StateMachine::apply ─▶ catalog::State + state.db ─▶ state() / applied_rx()
//! ```

mod batch;
mod error;
pub mod network;
pub mod state_machine;
#[cfg(test)]
mod tests;
pub mod type_config;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use openraft::async_runtime::WatchReceiver;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendError,
    StreamAppendResult, VoteRequest, VoteResponse,
};
use openraft::{ChangeMembers, Raft, ReadPolicy, SnapshotPolicy};
use tokio::sync::watch;
use tokio::time::Instant;

pub use error::RaftError;
pub use network::{NoTransport, RaftTransport};
pub use type_config::{ServerNode, TypeConfig};

use self::network::NetworkFactory;
use self::state_machine::StateMachine;
use self::type_config::{Snapshot, Vote};
use crate::catalog::{Request, Response, State};
use crate::store::{LOG_DB_FILE, LogStore, STATE_DB_FILE, StateStore, StoreError};

/// Timing and log-compaction settings of the raft node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftConfig {
    /// How often the leader sends heartbeats.
    pub heartbeat_interval: Duration,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// Build a snapshot after this many log entries since the last one (Consul's
    /// `raft_snapshot_threshold`).
    pub snapshot_threshold: u64,
    /// How often to check for [`snapshot_threshold`](Self::snapshot_threshold) (Consul's
    /// `raft_snapshot_interval`): each check waits a random time between this and twice
    /// this. Zero snapshots as soon as the threshold is crossed.
    pub snapshot_interval: Duration,
    /// Log entries kept behind a snapshot so slow followers can catch up without one (Consul's
    /// `raft_trailing_logs`).
    pub trailing_logs: u64,
}

impl Default for RaftConfig {
    /// Consul-like values for servers on ordinary VMs (openraft's own defaults are LAN-tight).
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(250),
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            snapshot_threshold: 16384,
            snapshot_interval: Duration::from_secs(30),
            trailing_logs: 10000,
        }
    }
}

impl RaftConfig {
    fn to_openraft(&self) -> Result<openraft::Config, RaftError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let cfg = openraft::Config {
            cluster_name: "meridian".to_string(),
            heartbeat_interval: ms(self.heartbeat_interval),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            // With an interval, `snapshot_schedule` decides when (see there).
            snapshot_policy: if self.snapshot_interval.is_zero() {
                SnapshotPolicy::LogsSinceLast(self.snapshot_threshold)
            } else {
                SnapshotPolicy::Never
            },
            max_in_snapshot_log_to_keep: self.trailing_logs,
            // A restarted leader runs an election like everyone else (standard Raft, as
            // Consul's raft does). openraft's default lets it resume leadership in its old
            // term without one. That is unsafe here: a leader replicates entries before its
            // own write of them is durable, so after `kill -9` it can come back without
            // entries its followers hold and append different ones at the same (term,
            // index); followers then keep theirs (same log id) and the logs diverge. The
            // Jepsen test found exactly that (seed 70: indexes 2060-2063 of term 6 differ
            // between s1 and s3, and a `?consistent` read missed an acknowledged write).
            // An election in a new term cannot be won without those entries.
            enable_leader_restore: Some(false),
            ..Default::default()
        };
        cfg.validate().map_err(|e| RaftError::Config(e.to_string()))
    }
}

/// The raft membership: voters and non-voters with their addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configuration {
    /// Log index of the membership entry this configuration comes from.
    pub index: u64,
    /// Voting members.
    pub voters: Vec<(u64, ServerNode)>,
    /// Non-voting members (learners).
    pub learners: Vec<(u64, ServerNode)>,
}

/// The leader's replication view (`/v1/operator/autopilot/health`).
#[derive(Debug, Clone, Default)]
pub struct LeaderView {
    /// Current term.
    pub term: u64,
    /// Leader's last log index.
    pub last_index: u64,
    /// Peer → (last matched index, time since its last ack).
    pub peers: BTreeMap<u64, (Option<u64>, Option<Duration>)>,
}

/// Raft progress as `/v1/agent/self` (`Stats.raft`) and `/v1/agent/metrics` report it.
#[derive(Debug, Clone, Default)]
pub struct RaftStats {
    /// Current term.
    pub term: u64,
    /// Index of the last entry in the log.
    pub last_log_index: u64,
    /// Index of the last entry known committed.
    pub commit_index: u64,
    /// Index of the last entry applied to the state machine.
    pub applied_index: u64,
    /// `Leader`, `Follower`, `Candidate` or `Learner`.
    pub state: String,
    /// Voters other than this node.
    pub num_peers: usize,
}

/// Handle on the local raft node. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RaftNode {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    raft: Raft<TypeConfig, StateMachine>,
    /// Client writes go through here: concurrent ones share a raft entry.
    batcher: Arc<batch::Batcher>,
    id: u64,
    node: ServerNode,
    state: Arc<arc_swap::ArcSwap<State>>,
    applied_rx: watch::Receiver<u64>,
    /// When the current leader last reached us (set by the RPC receive path).
    last_contact: parking_lot::Mutex<Option<Instant>>,
    /// A leader that has not heard from a quorum for this long does not count as one
    /// (raft's leader lease: the longest election timeout).
    lease: Duration,
    /// The transport to peers (for its per-peer counters).
    transport: Transport,
}

/// Consul's snapshot schedule (hashicorp/raft's `runSnapshots`): every `interval` to twice
/// that (random, so the servers do not all snapshot at once), a snapshot when at least
/// `threshold` entries were applied since the last one. openraft's own policy snapshots the
/// moment the threshold is crossed: under 15,000 writes/s that rewrote the whole state
/// every second (2.9 KiB written per write at 140,000 keys) and stalled writes behind it.
/// Ends when the node is dropped or raft stops.
async fn snapshot_schedule(inner: std::sync::Weak<Inner>, threshold: u64, interval: Duration) {
    let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    loop {
        let wait = interval + Duration::from_millis(rand::random_range(0..=ms));
        tokio::time::sleep(wait).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let due = {
            let m = inner.raft.metrics();
            let m = m.borrow_watched();
            if m.running_state.is_err() {
                return;
            }
            let applied = m.last_applied.as_ref().map_or(0, |l| l.index);
            let snapshot = m.snapshot.as_ref().map_or(0, |l| l.index);
            applied.saturating_sub(snapshot) >= threshold
        };
        if due && inner.raft.trigger().snapshot().await.is_err() {
            return; // raft stopped
        }
    }
}

/// The transport, opaque to `Debug`.
struct Transport(Arc<dyn RaftTransport>);

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RaftTransport")
    }
}

impl RaftNode {
    /// Opens (or creates) the raft stores in `dir` and starts raft with no cluster transport.
    /// Call [`bootstrap_single`](Self::bootstrap_single) to form a one-server cluster.
    pub async fn open(
        dir: &Path,
        node_id: u64,
        node: ServerNode,
        cfg: RaftConfig,
    ) -> Result<RaftNode, RaftError> {
        Self::open_with_transport(dir, node_id, node, cfg, Arc::new(NoTransport)).await
    }

    /// Like [`open`](Self::open), sending raft RPCs to peers through `transport`.
    pub async fn open_with_transport(
        dir: &Path,
        node_id: u64,
        node: ServerNode,
        cfg: RaftConfig,
        transport: Arc<dyn RaftTransport>,
    ) -> Result<RaftNode, RaftError> {
        let config = Arc::new(cfg.to_openraft()?);
        let (threshold, interval) = (cfg.snapshot_threshold, cfg.snapshot_interval);
        let lease = cfg.election_timeout_max;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(StoreError::from)?;
        let log = LogStore::open(&dir.join(LOG_DB_FILE)).await?;
        let store = StateStore::open(&dir.join(STATE_DB_FILE)).await?;
        let (sm, published) = StateMachine::open(store).await?;
        let factory = NetworkFactory::new(transport.clone());
        let raft = Raft::new(node_id, config, factory, log, sm).await?;
        tracing::info!(node_id, %node, dir = %dir.display(), "raft started");
        let node = RaftNode {
            inner: Arc::new(Inner {
                batcher: batch::Batcher::new(raft.clone()),
                raft,
                id: node_id,
                node,
                state: published.state,
                applied_rx: published.applied_rx,
                last_contact: parking_lot::Mutex::new(None),
                lease,
                transport: Transport(transport),
            }),
        };
        if !interval.is_zero() {
            let inner = Arc::downgrade(&node.inner);
            tokio::spawn(snapshot_schedule(inner, threshold, interval));
        }
        Ok(node)
    }

    /// This node's raft id.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Makes this node the only voter of a new cluster, unless raft state already exists
    /// (then it does nothing, so it is safe on every start).
    pub async fn bootstrap_single(&self) -> Result<(), RaftError> {
        let raft = &self.inner.raft;
        if raft.is_initialized().await? {
            // A restarted sole voter need not sit out an election timeout: nobody else can
            // win, so campaign now (a server that joined others keeps normal elections).
            let cfg = self.configuration();
            if cfg.voters.len() == 1 && cfg.voters[0].0 == self.inner.id && cfg.learners.is_empty()
            {
                raft.trigger()
                    .elect(false)
                    .await
                    .map_err(|e| RaftError::Fatal(e.to_string()))?;
            }
            return Ok(());
        }
        let members = BTreeMap::from([(self.inner.id, self.inner.node.clone())]);
        match raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(
                    node_id = self.inner.id,
                    "bootstrapped single-server raft cluster"
                );
                Ok(())
            }
            // Lost a race with another initialize or with log replication: already initialized.
            Err(openraft::errors::RaftError::APIError(
                openraft::errors::InitializeError::NotAllowed(_),
            )) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Proposes `req` and returns its log index and the state machine's response once it is
    /// committed and applied (and so visible through [`state`](Self::state)). Concurrent
    /// writes may share one entry, and so one index (see `raft::batch`).
    pub async fn write(&self, req: Request) -> Result<(u64, Response), RaftError> {
        let started = std::time::Instant::now();
        let answer = self.inner.batcher.write(req).await?;
        // Only a leader's write succeeds: Consul's leader-side commit time.
        crate::telemetry::sample_since("consul.raft.commitTime", &[], started);
        Ok(answer)
    }

    /// Linearizable read barrier (ReadIndex): confirms leadership with a quorum and waits until
    /// everything committed before the call is applied. Reads of [`state`](Self::state) after
    /// it returns see at least that state.
    pub async fn read_barrier(&self) -> Result<(), RaftError> {
        self.inner
            .raft
            .ensure_linearizable(ReadPolicy::ReadIndex)
            .await?;
        Ok(())
    }

    /// On the leader: the default-mode read fence. While the leader's lease holds (a quorum
    /// acknowledged it within the election timeout) no round trip: openraft takes the read
    /// index from its commit index (at least its own term's first entry) and waits until it
    /// is applied. Without a valid lease, the ReadIndex round trip of [`read_barrier`].
    ///
    /// The commit index, not the applied index, matters: a follower can apply an entry the
    /// leader has committed but not yet applied, and a leader that answered from its applied
    /// index could then return a value older than one a client just read from the follower.
    ///
    /// [`read_barrier`]: Self::read_barrier
    pub async fn lease_read_barrier(&self) -> Result<(), RaftError> {
        match self
            .inner
            .raft
            .ensure_linearizable(ReadPolicy::LeaseRead)
            .await
        {
            Ok(_) => Ok(()),
            Err(openraft::errors::RaftError::APIError(
                openraft::errors::LinearizableReadError::QuorumNotEnough(_),
            )) => self.read_barrier().await,
            Err(e) => Err(e.into()),
        }
    }

    /// The state after the last applied batch. Never waits on raft.
    pub fn state(&self) -> Arc<State> {
        self.inner.state.load_full()
    }

    /// The term of the last applied entry when it is `index` (a snapshot's `Term`),
    /// else the current term: the metrics and the published state move in separate steps.
    pub fn term_at_applied(&self, index: u64) -> u64 {
        let m = self.inner.raft.metrics();
        let m = m.borrow_watched();
        match &m.last_applied {
            Some(l) if l.index == index => l.leader_id.term,
            _ => m.current_term,
        }
    }

    /// Watches the raft index of the last applied entry.
    pub fn applied_rx(&self) -> watch::Receiver<u64> {
        self.inner.applied_rx.clone()
    }

    /// Waits until the entry at `index` is applied. Bound it with `tokio::time::timeout`.
    pub async fn wait_applied(&self, index: u64) -> Result<(), RaftError> {
        let mut rx = self.applied_rx();
        rx.wait_for(|&applied| applied >= index)
            .await
            .map_err(|_| RaftError::Shutdown)?;
        Ok(())
    }

    /// Whether this node leads and has heard from a quorum within the lease (a leader cut
    /// off from its quorum stops counting as one, as Consul's raft steps down).
    pub fn is_leader(&self) -> bool {
        let m = self.inner.raft.metrics();
        let m = m.borrow_watched();
        m.current_leader == Some(self.inner.id) && self.quorum_fresh(&m)
    }

    /// On a leader with followers: how long ago a quorum last acknowledged it (Consul's
    /// `raft.leader.lastContact`). `None` alone or when no quorum answered yet.
    pub fn last_quorum_contact(&self) -> Option<std::time::Duration> {
        let m = self.inner.raft.metrics();
        let m = m.borrow_watched();
        if m.current_leader != Some(self.inner.id)
            || m.membership_config.membership().voter_ids().count() <= 1
        {
            return None;
        }
        m.last_quorum_acked
            .as_ref()
            .map(|at| openraft::Instant::elapsed(&**at))
    }

    fn quorum_fresh(&self, m: &openraft::RaftMetrics<TypeConfig>) -> bool {
        if m.membership_config.membership().voter_ids().count() <= 1 {
            return true;
        }
        m.last_quorum_acked
            .as_ref()
            .is_some_and(|at| openraft::Instant::elapsed(&**at) <= self.inner.lease)
    }

    /// The current leader and its address, if known: not ourselves while our quorum is out
    /// of reach, and not another server that has not reached us within the lease. Without
    /// that, a server that cannot elect (a non-voter, or one whose peers are all gone) would
    /// name a dead leader for as long as it runs; hashicorp/raft, under Consul, forgets the
    /// leader on its follower heartbeat timeout, and `/v1/status/leader` then answers `""`.
    pub fn leader(&self) -> Option<(u64, ServerNode)> {
        let m = self.inner.raft.metrics();
        let m = m.borrow_watched();
        let id = m.current_leader?;
        let fresh = if id == self.inner.id {
            self.quorum_fresh(&m)
        } else {
            // Not `last_contact()`: it borrows the metrics again, under this borrow.
            let at = *self.inner.last_contact.lock();
            at.is_some_and(|at| at.elapsed() <= self.inner.lease)
        };
        if !fresh {
            return None;
        }
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, node))
    }

    /// Resolves once a leader other than `leader` is known (this node, or another). Never
    /// resolves after raft stopped; race it against the work it should interrupt.
    pub async fn leader_changed_from(&self, leader: u64) {
        let waited = self
            .inner
            .raft
            .wait(None)
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != leader),
                "a different leader is known",
            )
            .await;
        if waited.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Waits up to `timeout` until a leader is known and returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<(u64, ServerNode), RaftError> {
        // `leader()`, not the metrics' `current_leader`: right after an election the leader
        // may not yet have a fresh quorum, nor a follower a contact within the lease. A
        // follower's contact is no metrics change, so the loop also looks again every 20 ms.
        let deadline = tokio::time::Instant::now() + timeout;
        let mut metrics = self.inner.raft.metrics();
        loop {
            if let Some(leader) = self.leader() {
                return Ok(leader);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(RaftError::NoLeader);
            }
            let wake = deadline.min(now + Duration::from_millis(20));
            if let Ok(Err(_)) = tokio::time::timeout_at(wake, metrics.changed()).await {
                return Err(RaftError::Shutdown);
            }
        }
    }

    /// Time since the leader last contacted this node: zero on the leader, `None` if no leader
    /// has been heard from since start.
    pub fn last_contact(&self) -> Option<Duration> {
        if self.is_leader() {
            return Some(Duration::ZERO);
        }
        self.inner.last_contact.lock().map(|at| at.elapsed())
    }

    /// What the leader knows about replication (`None` on followers): its term and last
    /// log index, and per peer the last matched index and the age of its last ack.
    pub fn leader_view(&self) -> Option<LeaderView> {
        let m = self.inner.raft.metrics();
        let m = m.borrow_watched();
        if m.current_leader != Some(self.inner.id) {
            return None;
        }
        let replication = m.replication.clone().unwrap_or_default();
        let heartbeat = m.heartbeat.clone().unwrap_or_default();
        let peers = replication
            .into_iter()
            .map(|(id, matched)| {
                let ack = heartbeat
                    .get(&id)
                    .and_then(|t| t.as_ref())
                    .map(|t| openraft::Instant::elapsed(&**t));
                (id, (matched.map(|l| l.index), ack))
            })
            .collect();
        Some(LeaderView {
            term: m.current_term,
            last_index: m.last_log_index.unwrap_or(0),
            peers,
        })
    }

    /// This node's raft progress, read from openraft's metrics (no I/O).
    pub fn stats(&self) -> RaftStats {
        let m = self.inner.raft.metrics();
        let m = m.borrow_watched();
        let index = |l: &Option<type_config::LogId>| l.as_ref().map_or(0, |l| l.index);
        RaftStats {
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            commit_index: index(&m.cluster_committed),
            applied_index: index(&m.last_applied),
            state: format!("{:?}", m.state),
            num_peers: m
                .membership_config
                .membership()
                .voter_ids()
                .filter(|id| *id != self.inner.id)
                .count(),
        }
    }

    /// Per-peer RPC failure counters of the transport (empty for a lone server).
    pub fn peer_stats(&self) -> Vec<network::PeerStats> {
        self.inner.transport.0.peer_stats()
    }

    /// The latest membership configuration (possibly not yet committed).
    pub fn configuration(&self) -> Configuration {
        let m = self.inner.raft.metrics();
        let m = m.borrow_watched();
        let stored = &m.membership_config;
        let membership = stored.membership();
        let node = |id: u64| membership.get_node(&id).map(|n| (id, n.clone()));
        Configuration {
            index: stored.log_id().as_ref().map_or(0, |l| l.index),
            voters: membership.voter_ids().filter_map(node).collect(),
            learners: membership.learner_ids().filter_map(node).collect(),
        }
    }

    /// Removes server `id` from the cluster (voter or learner); a no-op if it is not a member.
    /// Leader only: elsewhere it fails with [`RaftError::NotLeader`].
    pub async fn remove_peer(&self, id: u64) -> Result<(), RaftError> {
        let cfg = self.configuration();
        let ids = BTreeSet::from([id]);
        let change = if cfg.voters.iter().any(|(v, _)| *v == id) {
            ChangeMembers::RemoveVoters(ids)
        } else if cfg.learners.iter().any(|(l, _)| *l == id) {
            ChangeMembers::RemoveNodes(ids)
        } else {
            return Ok(());
        };
        // retain = false: a removed voter is dropped from the node list, not kept as learner.
        self.inner.raft.change_membership(change, false).await?;
        Ok(())
    }

    /// Whether this node has raft state (it bootstrapped, or a leader replicated to it).
    pub async fn is_initialized(&self) -> Result<bool, RaftError> {
        Ok(self.inner.raft.is_initialized().await?)
    }

    /// Forms a new cluster whose voters are `members` (every server of a `-bootstrap-expect`
    /// set calls this with the same set). Does nothing if raft state already exists.
    pub async fn initialize(&self, members: BTreeMap<u64, ServerNode>) -> Result<(), RaftError> {
        if self.inner.raft.is_initialized().await? {
            return Ok(());
        }
        match self.inner.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(openraft::errors::RaftError::APIError(
                openraft::errors::InitializeError::NotAllowed(_),
            )) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds a non-voter (leader only). Returns once the change is committed, without
    /// waiting for the learner to catch up.
    pub async fn add_learner(&self, id: u64, node: ServerNode) -> Result<(), RaftError> {
        self.inner.raft.add_learner(id, node, false).await?;
        Ok(())
    }

    /// Makes learners voters (leader only).
    pub async fn promote(&self, ids: BTreeSet<u64>) -> Result<(), RaftError> {
        self.inner
            .raft
            .change_membership(ChangeMembers::AddVoterIds(ids), false)
            .await?;
        Ok(())
    }

    /// Hands leadership to voter `id` (leader only; returns once requested).
    pub async fn transfer_leader(&self, id: u64) -> Result<(), RaftError> {
        self.inner.raft.trigger().transfer_leader(id).await?;
        Ok(())
    }

    /// Asks raft to build a snapshot now (and purge logs behind it per `trailing_logs`).
    /// Returns once requested, not when done.
    pub async fn trigger_snapshot(&self) -> Result<(), RaftError> {
        self.inner.raft.trigger().snapshot().await?;
        Ok(())
    }

    /// Stops raft. Later calls on any clone fail with [`RaftError::Shutdown`].
    pub async fn shutdown(&self) -> Result<(), RaftError> {
        self.inner
            .raft
            .shutdown()
            .await
            .map_err(|e| RaftError::Fatal(format!("raft task failed: {e}")))
    }

    // === receive side of the network seam (used by the RPC server) ===

    /// Handles an AppendEntries RPC from the leader.
    pub async fn handle_append_entries(
        &self,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RaftError> {
        let resp = self.inner.raft.append_entries(req).await?;
        // Any answer but "higher vote" means the sender is our current leader (a log conflict
        // is still contact), matching what Consul counts as last contact.
        if !matches!(resp, AppendEntriesResponse::HigherVote(_)) {
            *self.inner.last_contact.lock() = Some(Instant::now());
        }
        Ok(resp)
    }

    /// Handles a pipelined stream of AppendEntries RPCs from the leader: hands them to raft in
    /// order without waiting for earlier answers, and yields one answer per request, in order,
    /// each once its entries are durable. The stream ends after the first error or when
    /// `input` ends.
    pub fn handle_stream_append<S>(
        &self,
        input: S,
    ) -> impl futures::Stream<Item = Result<StreamAppendResult<TypeConfig>, RaftError>> + Send + 'static
    where
        S: futures::Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + 'static,
    {
        let node = self.clone();
        self.inner.raft.stream_append(input).map(move |r| {
            // As for a single AppendEntries: anything but "higher vote" is contact with the
            // current leader.
            if !matches!(r, Ok(Err(StreamAppendError::HigherVote(_)))) {
                *node.inner.last_contact.lock() = Some(Instant::now());
            }
            r.map_err(RaftError::from)
        })
    }

    /// Handles a RequestVote RPC (`pre_vote` for the pre-vote round).
    pub async fn handle_vote(
        &self,
        req: VoteRequest<TypeConfig>,
        pre_vote: bool,
    ) -> Result<VoteResponse<TypeConfig>, RaftError> {
        let resp = if pre_vote {
            self.inner.raft.pre_vote(req).await?
        } else {
            self.inner.raft.vote(req).await?
        };
        Ok(resp)
    }

    /// Handles a complete snapshot sent by the leader.
    pub async fn handle_full_snapshot(
        &self,
        vote: Vote,
        snapshot: Snapshot,
    ) -> Result<SnapshotResponse<TypeConfig>, RaftError> {
        let resp = self
            .inner
            .raft
            .install_full_snapshot(vote, snapshot)
            .await?;
        *self.inner.last_contact.lock() = Some(Instant::now());
        Ok(resp)
    }
}
