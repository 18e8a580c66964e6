//! Autopilot (Consul's `autopilot` defaults): the leader keeps raft membership in step with
//! the servers in the LAN pool. A new server enters as a non-voter (raft learner) and is
//! promoted once it has been a healthy learner for `server_stabilization_time`; servers that
//! left, were reaped, or (with `cleanup_dead_servers`) failed are removed — but only while
//! the voters that remain alive keep a quorum, and dead voters only when that raises the
//! failure tolerance (as Consul's docs put it, once the replacement comes online), so
//! cleanup never costs availability.
//!
//! [`plan`] is pure; the leader loop executes its actions one at a time (each is a raft
//! membership change, which openraft serializes anyway).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use crate::gossip::{Member, MemberStatus, Role};
use crate::raft::{Configuration, ServerNode};

/// Autopilot settings (`/v1/operator/autopilot/configuration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutopilotConfig {
    /// Remove failed servers automatically.
    pub cleanup_dead_servers: bool,
    /// How long a new server must be healthy before it may vote.
    pub server_stabilization_time: Duration,
    /// Never remove voters below this count (0 = no floor).
    pub min_quorum: usize,
}

impl Default for AutopilotConfig {
    fn default() -> Self {
        Self {
            cleanup_dead_servers: true,
            server_stabilization_time: Duration::from_secs(10),
            min_quorum: 0,
        }
    }
}

impl From<&crate::catalog::AutopilotSettings> for AutopilotConfig {
    fn from(s: &crate::catalog::AutopilotSettings) -> Self {
        Self {
            cleanup_dead_servers: s.cleanup_dead_servers,
            server_stabilization_time: Duration::from_millis(s.server_stabilization_time_ms),
            min_quorum: s.min_quorum as usize,
        }
    }
}

/// One membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Add a server as a non-voter.
    AddLearner(u64, ServerNode),
    /// Make stable non-voters voters.
    Promote(BTreeSet<u64>),
    /// Remove a server (voter or not).
    Remove(u64, String),
}

/// A server of this datacenter as the pool shows it.
#[derive(Debug, Clone)]
pub(crate) struct PoolServer {
    pub raft_id: u64,
    pub node: ServerNode,
    pub status: MemberStatus,
    /// Started in bootstrap mode (`-bootstrap`, `-dev`, `-bootstrap-expect 1`).
    pub bootstrap: bool,
}

/// The servers of `datacenter` among `members` (members without raft tags are skipped).
pub(crate) fn pool_servers(members: &[Member], datacenter: &str) -> HashMap<u64, PoolServer> {
    members
        .iter()
        .filter(|m| m.tags.role() == Some(Role::Server) && m.tags.datacenter() == Some(datacenter))
        .filter_map(|m| {
            let raft_id = m.tags.raft_id()?;
            let rpc = m.tags.rpc_addr()?;
            Some((
                raft_id,
                PoolServer {
                    raft_id,
                    node: ServerNode {
                        rpc_addr: rpc.to_string(),
                        name: m.name.clone(),
                        node_id: m.tags.get("id").unwrap_or_default().to_string(),
                    },
                    status: m.status,
                    bootstrap: m.tags.get("bootstrap") == Some("1"),
                },
            ))
        })
        .collect()
}

/// Remembers since when each learner has been alive (for the stabilization time).
#[derive(Debug, Default)]
pub(crate) struct Stability {
    healthy_since: HashMap<u64, Instant>,
}

/// The next membership changes, most urgent first.
pub(crate) fn plan(
    cfg: &AutopilotConfig,
    raft: &Configuration,
    pool: &HashMap<u64, PoolServer>,
    me: u64,
    stability: &mut Stability,
    now: Instant,
) -> Vec<Action> {
    let alive = |id: &u64| {
        *id == me
            || pool
                .get(id)
                .is_some_and(|s| matches!(s.status, MemberStatus::Alive))
    };
    let mut actions = Vec::new();
    let members: BTreeSet<u64> = raft
        .voters
        .iter()
        .chain(&raft.learners)
        .map(|(id, _)| *id)
        .collect();

    // Removals: left always (quorum permitting); dead ones below.
    let mut voters: BTreeSet<u64> = raft.voters.iter().map(|(id, _)| *id).collect();
    let status = |id: &u64| pool.get(id).map(|s| s.status);
    let mut remove = |id: u64, name: &str, voters: &mut BTreeSet<u64>| {
        if voters.contains(&id) {
            let after: BTreeSet<u64> = voters.iter().copied().filter(|v| *v != id).collect();
            let alive_after = after.iter().filter(|v| alive(v)).count();
            if alive_after < after.len() / 2 + 1 || after.len() < cfg.min_quorum {
                return; // removing it would leave the rest without a quorum
            }
            *voters = after;
        }
        actions.push(Action::Remove(id, name.to_string()));
    };
    let others = || {
        raft.voters
            .iter()
            .chain(&raft.learners)
            .filter(|(id, _)| *id != me)
    };
    for (id, node) in others() {
        if status(id) == Some(MemberStatus::Left) {
            remove(*id, &node.name, &mut voters);
        }
    }
    // Dead: failed (with cleanup), or not in the pool at all — reaped after
    // `reconnect_timeout`, or not learned yet (a new leader whose gossip has not heard a
    // server's tags), so absence alone never removes a voter that could still vote.
    let (dead_voters, dead_learners): (Vec<_>, Vec<_>) = others()
        .filter(|(id, _)| match status(id) {
            None => true,
            Some(MemberStatus::Failed) => cfg.cleanup_dead_servers,
            Some(MemberStatus::Alive | MemberStatus::Leaving | MemberStatus::Left) => false,
        })
        .partition(|(id, _)| voters.contains(id));
    for (id, node) in dead_learners {
        remove(*id, &node.name, &mut voters);
    }
    // A dead voter goes only with the others, and only when that raises the failure
    // tolerance (alive voters minus quorum): the quorum shrinks only when the voter count
    // drops past an even number. Otherwise removing it gains nothing and costs a lot: when
    // it comes back it waits out the stabilization time as a non-voter, and a failure in
    // that window leaves the rest without a quorum. A replacement that is promoted makes
    // the count even, and then the dead server goes (Consul: "once the replacement comes
    // online").
    let n = voters.len();
    let k = dead_voters.len().min(n.saturating_sub(cfg.min_quorum));
    if (n - k) / 2 < n / 2 {
        for (id, node) in dead_voters.into_iter().take(k) {
            remove(*id, &node.name, &mut voters);
        }
    }

    // New servers enter as non-voters. Two servers in bootstrap mode each lead their own
    // cluster: joining them would merge two histories, so (as Consul) they are not joined.
    for (id, s) in pool {
        if members.contains(id) || s.status != MemberStatus::Alive {
            continue;
        }
        if s.bootstrap && pool.values().any(|o| o.raft_id != *id && o.bootstrap) {
            continue;
        }
        actions.push(Action::AddLearner(*id, s.node.clone()));
    }

    // Stable non-voters are promoted.
    stability
        .healthy_since
        .retain(|id, _| raft.learners.iter().any(|(l, _)| l == id) && alive(id));
    let mut promote = BTreeSet::new();
    for (id, _) in &raft.learners {
        if !alive(id) {
            continue;
        }
        let since = *stability.healthy_since.entry(*id).or_insert(now);
        if now.duration_since(since) >= cfg.server_stabilization_time {
            promote.insert(*id);
        }
    }
    if !promote.is_empty() {
        actions.push(Action::Promote(promote));
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64) -> ServerNode {
        ServerNode {
            rpc_addr: format!("10.0.0.{id}:8300"),
            name: format!("s{id}"),
            node_id: String::new(),
        }
    }

    fn pool(entries: &[(u64, MemberStatus)]) -> HashMap<u64, PoolServer> {
        entries
            .iter()
            .map(|(id, status)| {
                (
                    *id,
                    PoolServer {
                        raft_id: *id,
                        node: node(*id),
                        status: *status,
                        bootstrap: false,
                    },
                )
            })
            .collect()
    }

    fn config(voters: &[u64], learners: &[u64]) -> Configuration {
        Configuration {
            index: 1,
            voters: voters.iter().map(|id| (*id, node(*id))).collect(),
            learners: learners.iter().map(|id| (*id, node(*id))).collect(),
        }
    }

    use MemberStatus::{Alive, Failed, Left};

    #[test]
    fn new_servers_join_as_learners_and_are_promoted_after_stabilizing() {
        let cfg = AutopilotConfig::default();
        let mut st = Stability::default();
        let t0 = Instant::now();
        let p = pool(&[(1, Alive), (2, Alive), (3, Alive), (4, Alive)]);
        let acts = plan(&cfg, &config(&[1, 2, 3], &[]), &p, 1, &mut st, t0);
        assert_eq!(acts, vec![Action::AddLearner(4, node(4))]);
        let c = config(&[1, 2, 3], &[4]);
        assert!(plan(&cfg, &c, &p, 1, &mut st, t0).is_empty());
        let later = t0 + cfg.server_stabilization_time;
        assert_eq!(
            plan(&cfg, &c, &p, 1, &mut st, later),
            vec![Action::Promote(BTreeSet::from([4]))]
        );
    }

    #[test]
    fn dead_servers_are_removed_only_while_quorum_holds() {
        let cfg = AutopilotConfig::default();
        let mut st = Stability::default();
        let now = Instant::now();
        // 3 voters, two failed: removing one would leave {1, x} with only 1 alive of 2.
        let p = pool(&[(1, Alive), (2, Failed), (3, Failed)]);
        assert!(plan(&cfg, &config(&[1, 2, 3], &[]), &p, 1, &mut st, now).is_empty());
        // A server that left gracefully goes; without cleanup a failed one stays.
        let p = pool(&[(1, Alive), (2, Alive), (3, Left), (4, Failed), (5, Alive)]);
        let manual = AutopilotConfig {
            cleanup_dead_servers: false,
            ..cfg
        };
        assert_eq!(
            plan(&manual, &config(&[1, 2, 3, 4, 5], &[]), &p, 1, &mut st, now),
            vec![Action::Remove(3, "s3".into())]
        );
    }

    #[test]
    fn a_failed_voter_stays_until_removing_it_raises_the_failure_tolerance() {
        let cfg = AutopilotConfig::default();
        let mut st = Stability::default();
        let now = Instant::now();
        let remove = |ids: &[u64]| -> Vec<Action> {
            ids.iter()
                .map(|id| Action::Remove(*id, format!("s{id}")))
                .collect()
        };
        // Three voters, one failed: two of three or two of two both tolerate no further
        // failure, and a removed s3 would come back as a non-voter. It stays.
        let p = pool(&[(1, Alive), (2, Alive), (3, Failed)]);
        assert!(plan(&cfg, &config(&[1, 2, 3], &[]), &p, 1, &mut st, now).is_empty());
        // Nor does a voter the pool does not know (a new leader that has not heard its
        // tags yet, or one reaped long ago), with or without cleanup.
        let p = pool(&[(1, Alive), (2, Alive)]);
        assert!(plan(&cfg, &config(&[1, 2, 3], &[]), &p, 1, &mut st, now).is_empty());
        let manual = AutopilotConfig {
            cleanup_dead_servers: false,
            ..cfg.clone()
        };
        let p4 = pool(&[(1, Alive), (2, Alive), (4, Alive)]);
        assert_eq!(
            plan(&manual, &config(&[1, 2, 3, 4], &[]), &p4, 1, &mut st, now),
            remove(&[3])
        );
        // Five voters, one failed: tolerance 1 either way. It stays.
        let one_failed = pool(&[(1, Alive), (2, Alive), (3, Alive), (4, Alive), (5, Failed)]);
        let c5 = config(&[1, 2, 3, 4, 5], &[]);
        assert!(plan(&cfg, &c5, &one_failed, 1, &mut st, now).is_empty());
        // Two failed of five: both go (three of three tolerate one failure, three of five
        // none) — unless min_quorum keeps five.
        let five = pool(&[(1, Alive), (2, Alive), (3, Alive), (4, Failed), (5, Failed)]);
        assert_eq!(plan(&cfg, &c5, &five, 1, &mut st, now), remove(&[4, 5]));
        let floor = AutopilotConfig {
            min_quorum: 5,
            ..cfg.clone()
        };
        assert!(plan(&floor, &c5, &five, 1, &mut st, now).is_empty());
        // A replacement promoted next to the failed s3 makes four voters: now s3 goes.
        let p = pool(&[(1, Alive), (2, Alive), (3, Failed), (4, Alive)]);
        assert_eq!(
            plan(&cfg, &config(&[1, 2, 3, 4], &[]), &p, 1, &mut st, now),
            remove(&[3])
        );
        // A failed non-voter costs no quorum: it goes at once.
        let p = pool(&[(1, Alive), (2, Alive), (3, Alive), (4, Failed)]);
        assert_eq!(
            plan(&cfg, &config(&[1, 2, 3], &[4]), &p, 1, &mut st, now),
            remove(&[4])
        );
    }

    #[test]
    fn two_bootstrap_servers_are_never_joined() {
        let cfg = AutopilotConfig::default();
        let mut st = Stability::default();
        let mut p = pool(&[(1, Alive), (2, Alive)]);
        for s in p.values_mut() {
            s.bootstrap = true;
        }
        assert!(plan(&cfg, &config(&[1], &[]), &p, 1, &mut st, Instant::now()).is_empty());
    }
}
