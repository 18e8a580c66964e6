//! The agent's LAN gossip pool: its [`GossipConfig`] and keyring from the agent config
//! (Consul's `serf/local.keyring` rule: a persisted keyring wins over `-encrypt`), join
//! address parsing, the `-join` / `-retry-join` background task, and serf's snapshot
//! (`serf/local.snapshot`): kept current while running, and on start used to resume the
//! event clock and to rejoin the previous peers (not after a graceful leave, unless
//! `-rejoin` / `rejoin_after_leave`).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use meridian_config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

use super::AgentError;
use crate::gossip::join::{self, JoinAddrError, RetryJoin};
use crate::gossip::{BoundGossip, GossipConfig, GossipHandle, Role, Snapshot, Tags, snapshot};

/// The snapshot is rewritten at most this often (serf's snapshot flush interval).
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(500);

/// Consul's default LAN gossip port, used when a join address has none.
pub const DEFAULT_SERF_LAN_PORT: u16 = 8301;

/// What the pool needs from the agent besides its config.
pub(super) struct LanIdentity<'a> {
    pub data_dir: &'a Path,
    pub node_id: &'a str,
    pub raft_id: u64,
    pub advertise: IpAddr,
    pub rpc_port: u16,
}

/// Binds the LAN pool on `bind_addr:ports.serf_lan`, resuming the event clock of
/// `previous` (the last run's snapshot).
pub(super) async fn bind(
    cfg: &Config,
    id: &LanIdentity<'_>,
    previous: &Snapshot,
) -> Result<BoundGossip, AgentError> {
    let port = cfg
        .ports
        .serf_lan_port()
        .ok_or_else(|| AgentError::Config("ports.serf_lan must be enabled".into()))?;
    let bind_addr = SocketAddr::new(cfg.bind_addr, port);
    let mut gc = if cfg.dev_mode {
        GossipConfig::dev(cfg.node_name.clone(), bind_addr)
    } else {
        let mut gc = GossipConfig::lan(cfg.node_name.clone(), bind_addr);
        gc.reconnect_timeout = cfg.reconnect_timeout;
        gc
    };
    // The bound address is advertised unless another address must be.
    if id.advertise != cfg.bind_addr {
        if port == 0 {
            return Err(AgentError::Config(
                "ports.serf_lan 0 needs advertise_addr equal to a specific bind_addr".into(),
            ));
        }
        gc.advertise_addr = Some(SocketAddr::new(id.advertise, port));
    }
    // Servers advertise where their raft and RPC listen; clients have neither.
    let mut tags = if cfg.server {
        Tags::new(Role::Server, cfg.datacenter.clone())
            .with_rpc_addr(SocketAddr::new(id.advertise, id.rpc_port))
            .with_raft_id(id.raft_id)
    } else {
        Tags::new(Role::Client, cfg.datacenter.clone())
    }
    .with_build(env!("CARGO_PKG_VERSION"));
    // Consul's tags that its CLI and API clients read (`vsn` is the members "Protocol").
    for (k, v) in [
        ("id", id.node_id),
        ("vsn", "2"),
        ("vsn_min", "2"),
        ("vsn_max", "3"),
        ("raft_vsn", "3"),
    ] {
        tags.set(k, v);
    }
    // Consul's tags: `-bootstrap-expect 1` is bootstrap mode, as `-bootstrap` and `-dev`.
    if cfg.bootstrap || cfg.bootstrap_expect == 1 || cfg.dev_mode {
        tags.set("bootstrap", "1");
    } else if cfg.bootstrap_expect > 1 {
        tags.set("expect", cfg.bootstrap_expect.to_string());
    }
    gc.tags = tags;
    gc.restored_event_ltime = previous.event_ltime;
    gc.verify_incoming = cfg.encrypt_verify_incoming;
    gc.verify_outgoing = cfg.encrypt_verify_outgoing;
    let path = crate::gossip::keyring::local_keyring_path(id.data_dir);
    let keyring = join::load_or_create_keyring(cfg.encrypt.as_deref(), &path, "encrypt")
        .map_err(|e| AgentError::Config(e.to_string()))?;
    if !keyring.is_empty() {
        gc.keyring_file = Some(path);
    }
    Ok(BoundGossip::bind(gc, keyring).await?)
}

/// The previous run's snapshot at `path`; none (or an unreadable one, which is logged: it
/// is only a cache) is the empty snapshot.
pub(super) fn previous_snapshot(path: &Path) -> Snapshot {
    match Snapshot::load(path) {
        Ok(snap) => snap.unwrap_or_default(),
        Err(e) => {
            warn!(cause = %e, "ignoring the unreadable gossip snapshot");
            Snapshot::default()
        }
    }
}

/// Starts the task that keeps the snapshot at `path` current (if any), and, if `previous`
/// says so, a background rejoin of the previous peers (logged; a failure is not fatal).
pub(super) fn spawn_snapshot_and_rejoin(
    cfg: &Config,
    path: Option<PathBuf>,
    previous: Snapshot,
    gossip: &GossipHandle,
    tracker: &TaskTracker,
    token: CancellationToken,
) {
    let targets = previous.rejoin_targets(cfg.rejoin_after_leave);
    if previous.left && targets.is_empty() && !previous.alive.is_empty() {
        info!(
            "left the LAN pool gracefully last time; not rejoining the previous members (-rejoin / rejoin_after_leave would)"
        );
    }
    if let Some(path) = path {
        tracker.spawn(
            snapshot::run(
                path,
                previous,
                SNAPSHOT_INTERVAL,
                gossip.members_watch(),
                gossip.subscribe(),
            )
            .instrument(info_span!("snapshot")),
        );
    }
    if targets.is_empty() {
        return;
    }
    let gossip = gossip.clone();
    tracker.spawn(
        async move {
            info!(peers = targets.len(), "rejoining the previous LAN members");
            let joined = tokio::select! {
                _ = token.cancelled() => return,
                joined = gossip.join(&targets) => joined,
            };
            match joined {
                Ok(n) => info!(nodes = n, "rejoined the LAN pool"),
                Err(e) if e.is_stopped() => {}
                Err(e) => warn!(cause = %e, "rejoin failed; running alone until joined"),
            }
        }
        .instrument(info_span!("rejoin")),
    );
}

/// Resolves `host[:port]` (port defaults to 8301; IPv6 as `[::1]:8301` or bare).
pub async fn resolve_join_addr(addr: &str) -> Result<Vec<SocketAddr>, JoinAddrError> {
    crate::gossip::join::resolve_join_addr(addr, DEFAULT_SERF_LAN_PORT).await
}

/// `-join` (once; failure is fatal) then `-retry-join` (every `retry_interval`, fatal after
/// `retry_max` failed attempts when it is not 0). Returns the fatal reason, if any.
pub(super) async fn join_at_start(
    cfg: &Config,
    gossip: &GossipHandle,
    token: &CancellationToken,
) -> Option<String> {
    if !cfg.start_join.is_empty() {
        match join::join(gossip, &cfg.start_join, DEFAULT_SERF_LAN_PORT).await {
            Ok(n) => info!(nodes = n, "join completed"),
            Err(e) if e.is_stopped() => return None,
            Err(e) => return Some(format!("failed to join {:?}: {e}", cfg.start_join)),
        }
    }
    let how = RetryJoin {
        default_port: DEFAULT_SERF_LAN_PORT,
        interval: cfg.retry_interval,
        max: cfg.retry_max,
    };
    join::retry_join(gossip, &cfg.retry_join, how, token).await
}
