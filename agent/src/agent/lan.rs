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
use crate::gossip::{
    BoundGossip, GossipConfig, GossipError, GossipHandle, GossipKey, Keyring, Role, Snapshot, Tags,
    snapshot,
};

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
    let keyring = keyring(cfg.encrypt.as_deref(), &path)?;
    if !keyring.is_empty() {
        gc.keyring_file = Some(path);
    }
    Ok(BoundGossip::bind(gc, keyring).await?)
}

/// The persisted keyring if there is one (a given `encrypt` is then ignored, as Consul),
/// else `encrypt` (persisted for the next start), else none (plaintext gossip).
fn keyring(encrypt: Option<&str>, path: &Path) -> Result<Keyring, AgentError> {
    if let Some(ring) = Keyring::load(path).map_err(GossipError::from)? {
        if encrypt.is_some() {
            warn!(
                keyring = %path.display(),
                "loaded the persisted keyring; ignoring the encrypt option"
            );
        }
        return Ok(ring);
    }
    let Some(text) = encrypt else {
        return Ok(Keyring::default());
    };
    let key =
        GossipKey::from_base64(text).map_err(|e| AgentError::Config(format!("encrypt: {e}")))?;
    let ring = Keyring::new(key).map_err(GossipError::from)?;
    ring.save(path).map_err(GossipError::from)?;
    Ok(ring)
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

/// Why a join address could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinAddrError {
    /// Cloud auto-join (`provider=...`) needs go-discover, which Meridian does not have.
    #[error("cloud auto-join {0:?} is not supported; give host[:port] addresses")]
    CloudAutoJoin(String),
    /// The host did not resolve.
    #[error("failed to resolve {addr:?}: {source}")]
    Resolve {
        /// The address as given.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Resolves `host[:port]` (port defaults to 8301; IPv6 as `[::1]:8301` or bare).
pub async fn resolve_join_addr(addr: &str) -> Result<Vec<SocketAddr>, JoinAddrError> {
    let addr = addr.trim();
    if addr.contains("provider=") {
        return Err(JoinAddrError::CloudAutoJoin(addr.to_owned()));
    }
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return Ok(vec![sa]);
    }
    let bare = addr.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, DEFAULT_SERF_LAN_PORT)]);
    }
    let resolved = if addr.contains(':') {
        tokio::net::lookup_host(addr).await.map(Iterator::collect)
    } else {
        tokio::net::lookup_host((addr, DEFAULT_SERF_LAN_PORT))
            .await
            .map(Iterator::collect)
    };
    resolved.map_err(|source| JoinAddrError::Resolve {
        addr: addr.to_owned(),
        source,
    })
}

/// Resolves every address (unresolvable ones are logged and skipped) and joins them.
pub async fn join(gossip: &GossipHandle, addrs: &[String]) -> Result<usize, GossipError> {
    let mut targets = Vec::new();
    for a in addrs {
        match resolve_join_addr(a).await {
            Ok(list) => targets.extend(list),
            Err(e) => warn!(address = %a, cause = %e, "skipping join address"),
        }
    }
    gossip.join(&targets).await
}

/// `-join` (once; failure is fatal) then `-retry-join` (every `retry_interval`, fatal after
/// `retry_max` failed attempts when it is not 0). Returns the fatal reason, if any.
pub(super) async fn join_at_start(
    cfg: &Config,
    gossip: &GossipHandle,
    token: &CancellationToken,
) -> Option<String> {
    if !cfg.start_join.is_empty() {
        match join(gossip, &cfg.start_join).await {
            Ok(n) => info!(nodes = n, "join completed"),
            Err(e) if e.is_stopped() => return None,
            Err(e) => return Some(format!("failed to join {:?}: {e}", cfg.start_join)),
        }
    }
    if cfg.retry_join.is_empty() {
        return None;
    }
    let mut attempt: u32 = 0;
    loop {
        match join(gossip, &cfg.retry_join).await {
            Ok(n) => {
                info!(nodes = n, "retry join completed");
                return None;
            }
            Err(e) if e.is_stopped() => return None,
            Err(e) => {
                attempt = attempt.saturating_add(1);
                if cfg.retry_max > 0 && attempt >= cfg.retry_max {
                    return Some(format!(
                        "max join retry exhausted ({attempt} attempts): {e}"
                    ));
                }
                warn!(cause = %e, retry_interval = ?cfg.retry_interval, "join failed, retrying");
            }
        }
        tokio::select! {
            _ = token.cancelled() => return None,
            _ = tokio::time::sleep(cfg.retry_interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn join_addresses_default_to_8301() {
        let one = |s: &'static str| async move { resolve_join_addr(s).await.expect(s) };
        assert_eq!(
            one("10.0.0.1").await,
            vec!["10.0.0.1:8301".parse().expect("addr")]
        );
        assert_eq!(
            one("10.0.0.1:9").await,
            vec!["10.0.0.1:9".parse().expect("addr")]
        );
        assert_eq!(one("::1").await, vec!["[::1]:8301".parse().expect("addr")]);
        assert_eq!(one("[::1]:7").await, vec!["[::1]:7".parse().expect("addr")]);
        assert!(matches!(
            resolve_join_addr("provider=aws tag_key=x").await,
            Err(JoinAddrError::CloudAutoJoin(_))
        ));
    }

    #[test]
    fn persisted_keyring_wins_over_encrypt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("serf").join("local.keyring");
        assert!(keyring(None, &path).expect("none").is_empty());
        let first = GossipKey::generate();
        let ring = keyring(Some(&first.to_base64()), &path).expect("encrypt");
        assert_eq!(ring.keys(), vec![first.clone()]);
        let other = GossipKey::generate().to_base64();
        let again = keyring(Some(&other), &path).expect("persisted");
        assert_eq!(again.keys(), vec![first]);
        assert!(keyring(Some("bad"), &dir.path().join("x")).is_err());
    }
}
