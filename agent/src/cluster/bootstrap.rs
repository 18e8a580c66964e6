//! `-bootstrap-expect N` (Consul's `maybeBootstrap`): a new server waits until N servers of
//! its datacenter, all expecting N, are alive in the LAN pool, asks each whether it already
//! has raft state, and — only if none does — forms the cluster with all of them as voters.
//! Every server of the set runs the same decision and proposes the same membership, so there
//! is no election before the N-th server arrives and never one with fewer than a quorum. If
//! any peer already belongs to a cluster, this server waits to be added by its leader
//! (autopilot) instead.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::Forwarder;
use crate::gossip::GossipHandle;
use crate::raft::RaftNode;
use crate::server::autopilot::pool_servers;

/// How long one peer status question may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the pool is looked at when nothing changes.
const RETRY: Duration = Duration::from_secs(1);

/// Runs until this server has raft state or `token` is cancelled.
pub async fn run(
    raft: RaftNode,
    gossip: GossipHandle,
    forwarder: Forwarder,
    datacenter: String,
    expect: usize,
    token: CancellationToken,
) {
    let mut members = gossip.members_watch();
    let mut announced = 0;
    loop {
        match raft.is_initialized().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => return warn!(cause = %e, "bootstrap: cannot read raft state"),
        }
        let list = gossip.members();
        let pool = pool_servers(&list, &datacenter);
        let alive: Vec<_> = pool
            .values()
            .filter(|s| s.status == crate::gossip::MemberStatus::Alive)
            .collect();
        let expects = |name: &str| {
            list.iter()
                .find(|m| m.name == name)
                .and_then(|m| m.tags.get("expect"))
                .and_then(|e| e.parse::<usize>().ok())
        };
        if alive.iter().any(|s| s.bootstrap) {
            error!("a server in bootstrap mode is in the pool; -bootstrap-expect is disabled");
            return;
        }
        let mismatched: Vec<&str> = alive
            .iter()
            .filter(|s| expects(&s.node.name) != Some(expect))
            .map(|s| s.node.name.as_str())
            .collect();
        if !mismatched.is_empty() {
            error!(
                ?mismatched,
                expect, "servers with a different -bootstrap-expect value; not bootstrapping"
            );
        } else if alive.len() < expect {
            if alive.len() != announced {
                announced = alive.len();
                info!(
                    found = alive.len(),
                    expect, "waiting for servers before bootstrapping"
                );
            }
        } else if decide(&raft, &forwarder, &alive).await {
            let voters: BTreeMap<u64, _> =
                alive.iter().map(|s| (s.raft_id, s.node.clone())).collect();
            let names: Vec<&str> = alive.iter().map(|s| s.node.name.as_str()).collect();
            match raft.initialize(voters).await {
                Ok(()) => {
                    info!(servers = ?names, "bootstrapped the raft cluster (bootstrap-expect)")
                }
                Err(e) => error!(cause = %e, "bootstrapping raft failed"),
            }
            return;
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = members.changed() => {}
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// True when no other server reports raft state; false (and logged) otherwise or when a
/// peer cannot be asked (tried again later).
async fn decide(
    raft: &RaftNode,
    forwarder: &Forwarder,
    servers: &[&crate::server::autopilot::PoolServer],
) -> bool {
    for s in servers.iter().filter(|s| s.raft_id != raft.id()) {
        match forwarder
            .raft_initialized(&s.node.rpc_addr, ASK_TIMEOUT)
            .await
        {
            Ok(false) => {}
            Ok(true) => {
                info!(peer = %s.node.name, "existing raft peers reported; waiting to be added instead of bootstrapping");
                return false;
            }
            Err(e) => {
                warn!(peer = %s.node.name, cause = %e, "could not confirm peer raft status; will retry");
                return false;
            }
        }
    }
    true
}
