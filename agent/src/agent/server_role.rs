//! The server role's wiring: raft settings from the agent's config (Consul's timings and
//! snapshot schedule), `-bootstrap-expect`, and the server handle with its leader duties.

use std::sync::Arc;
use std::time::Duration;

use meridian_config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info_span};

use crate::cluster::Forwarder;
use crate::gossip::GossipHandle;
use crate::raft::{RaftConfig, RaftNode};
use crate::server::acl_primary::{self, PrimaryCell};
use crate::server::autopilot::AutopilotConfig;
use crate::server::{AclDuties, ClusterParts, SelfInfo, ServerHandle};

/// Raft timings from Consul's (`raft_multiplier`-scaled, or `-dev`) election timeout t: the
/// randomized election timeout spans [t/2, t] and the leader heartbeats ten times per t.
///
/// Not Consul's [t, 2t]: openraft's followers refuse votes for a leader lease of
/// `election_timeout_max` after the last heartbeat, so the first candidate after a leader
/// dies is usually refused and a failover cost about max + another timeout (16 s at the
/// default multiplier in bench/kv). With max = t a failover takes about what Consul's does.
/// Log compaction follows `raft_snapshot_interval`, `raft_snapshot_threshold` and
/// `raft_trailing_logs`.
pub(super) fn raft_config(cfg: &Config) -> RaftConfig {
    let t = cfg.raft_timing().election_timeout;
    RaftConfig {
        heartbeat_interval: (t / 10).max(Duration::from_millis(10)),
        election_timeout_min: t / 2,
        election_timeout_max: t,
        snapshot_threshold: cfg.raft_snapshot_threshold,
        snapshot_interval: cfg.raft_snapshot_interval,
        trailing_logs: cfg.raft_trailing_logs,
    }
}

/// What [`start_server`] wires together.
pub(super) struct ServerParts<'a> {
    pub(super) raft: &'a RaftNode,
    pub(super) forwarder: &'a Forwarder,
    pub(super) gossip: &'a GossipHandle,
    /// The ACL primary in effect (the leader's ACL duties follow it).
    pub(super) primary: &'a Arc<PrimaryCell>,
}

/// Starts the server role: `-bootstrap-expect`, the server handle with its leader duties.
pub(super) fn start_server(
    cfg: &Config,
    me: &SelfInfo,
    parts: ServerParts<'_>,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> ServerHandle {
    let ServerParts {
        raft,
        forwarder,
        gossip,
        primary,
    } = parts;
    if cfg.bootstrap_expect > 1 {
        tracker.spawn(
            crate::cluster::bootstrap::run(
                raft.clone(),
                gossip.clone(),
                forwarder.clone(),
                cfg.datacenter.clone(),
                cfg.bootstrap_expect as usize,
                token.child_token(),
            )
            .instrument(info_span!("bootstrap")),
        );
    }
    let cluster = ClusterParts {
        forwarder: Some(forwarder.clone()),
        hold: rpc_hold_timeout(cfg),
        gossip: Some(gossip.clone()),
        autopilot: autopilot_config(cfg),
        acl: cfg.acl.enabled.then(|| AclDuties {
            initial_management: cfg.acl.tokens.initial_management.clone(),
            primary: Arc::clone(primary),
        }),
    };
    let server = ServerHandle::start(
        raft.clone(),
        me.clone(),
        cluster,
        tracker,
        token.child_token(),
    );
    if cfg.acl.enabled {
        tracker.spawn(
            acl_primary::follow_state(server.clone(), Arc::clone(primary), token.child_token())
                .instrument(info_span!("acl-primary")),
        );
    }
    server
}

/// How long a request waits for a leader: two maximal election timeouts, between 1 s and
/// Consul's `rpc_hold_timeout` (7 s), so a datacenter without quorum answers quickly.
fn rpc_hold_timeout(cfg: &Config) -> Duration {
    (raft_config(cfg).election_timeout_max * 2)
        .clamp(Duration::from_secs(1), Duration::from_secs(7))
}

/// Consul's autopilot defaults; `-dev` agents promote new servers after 1 s.
fn autopilot_config(cfg: &Config) -> AutopilotConfig {
    let mut ap = AutopilotConfig::default();
    if cfg.dev_mode {
        ap.server_stabilization_time = Duration::from_secs(1);
    }
    ap
}
