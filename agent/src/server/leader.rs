//! The leader loop: while this server leads, reconcile the LAN pool into the catalog
//! (`reconcile.rs`; without a pool, just this server's own registration) and into raft
//! membership (`autopilot.rs`), expire sessions whose TTL lapsed, and reap old KV
//! tombstones. While its datacenter is the ACL primary in effect (ACLs on) it also
//! initializes the ACL system once per leadership and once per move of the primary to here
//! (built-in policies, anonymous token, `initial_management`; `acl_primary.rs`) and reaps
//! expired tokens. It wakes on its tick, on session deadlines and on member changes.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::ServerHandle;
use super::autopilot::{self, Action, Stability};
use super::reconcile::{self, Local};
use crate::catalog::acl::{AclToken, AclWrite};
use crate::catalog::{Check, Command, HealthStatus, Node, RegisterOp, SERF_HEALTH, Service};
use crate::gossip::Member;

/// KV tombstones are kept this long so blocking queries see deletes (Consul's TombstoneTTL).
const TOMBSTONE_TTL: Duration = Duration::from_secs(15 * 60);
/// How often the leader looks at its duties when nothing wakes it sooner.
const TICK: Duration = Duration::from_millis(500);

pub(super) async fn run(server: ServerHandle, token: CancellationToken) {
    let mut was_leader = false;
    let mut last_reap = Instant::now();
    let mut registered = false;
    let mut stability = Stability::default();
    let mut members_rx = server.gossip().map(|g| g.members_watch());
    // The primary record the ACL system was initialized under in this leadership.
    let mut acl_initialized: Option<crate::catalog::acl::AclPrimary> = None;
    loop {
        let now = Instant::now();
        // Until this server is registered, look again soon: clients create sessions on it
        // (which need its node and serfHealth) right after it reports ready.
        let tick = if registered {
            TICK
        } else {
            Duration::from_millis(10)
        };
        let wake = super::sessions::next_wake(server.session_timers(), now, tick);
        let members_changed = async {
            match members_rx.as_mut() {
                Some(rx) => {
                    if rx.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            _ = tokio::time::sleep_until(wake) => {}
            _ = members_changed => {}
        }
        let is_leader = server.raft().is_leader();
        if is_leader != was_leader {
            info!(leader = is_leader, "leadership changed");
            if is_leader {
                crate::telemetry::incr("consul.raft.state.leader", &[]);
            }
            server.session_timers().clear();
            was_leader = is_leader;
            acl_initialized = None;
        }
        if !is_leader {
            continue;
        }
        if let Some(since) = server.raft().last_quorum_contact() {
            crate::telemetry::sample_ms("consul.raft.leader.lastContact", &[], since);
        }
        if let Some(gossip) = server.gossip() {
            let members = gossip.members();
            reconcile_members(&server, &members).await;
            run_autopilot(&server, &members, &mut stability).await;
        }
        match ensure_self_registered(&server).await {
            Ok(()) if !registered => {
                registered = true;
                let me = server.me();
                info!(node = %me.node, datacenter = %me.datacenter, "cluster leadership acquired; node registered");
            }
            Ok(()) => {}
            Err(e) => warn!(cause = %e, "failed to register this server in the catalog"),
        }
        expire_sessions(&server).await;
        if let Some(duties) = server.acl_duties()
            && duties.primary.is_me()
        {
            let primary = duties.primary.get();
            if acl_initialized.as_ref() != Some(&primary) && init_acls(&server, duties).await {
                acl_initialized = Some(primary);
            }
            reap_expired_tokens(&server).await;
        }
        if last_reap.elapsed() >= Duration::from_secs(30) {
            last_reap = Instant::now();
            reap_tombstones(&server).await;
        }
    }
}

fn self_registration(server: &ServerHandle) -> RegisterOp {
    let me = server.me();
    let node = Node {
        id: me.node_id.clone(),
        node: me.node.clone(),
        address: me.address.clone(),
        datacenter: me.datacenter.clone(),
        tagged_addresses: [
            ("lan", &me.address),
            ("lan_ipv4", &me.address),
            ("wan", &me.address),
            ("wan_ipv4", &me.address),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect(),
        meta: me.meta.clone(),
        ..Node::default()
    };
    let service = Service {
        id: "consul".into(),
        service: "consul".into(),
        port: me.rpc_port,
        ..Service::default()
    };
    let check = Check {
        node: me.node.clone(),
        check_id: SERF_HEALTH.into(),
        name: "Serf Health Status".into(),
        status: HealthStatus::Passing,
        output: "Agent alive and reachable".into(),
        check_type: String::new(),
        ..Check::default()
    };
    RegisterOp {
        node,
        skip_node_update: false,
        service: Some(service),
        checks: vec![check],
    }
}

async fn ensure_self_registered(server: &ServerHandle) -> Result<(), crate::rpc::RpcError> {
    let want = self_registration(server);
    let state = server.raft().state();
    let me = &server.me().node;
    let registered = state.node(me).is_some_and(|n| {
        n.address == want.node.address && n.id == want.node.id && n.meta == want.node.meta
    }) && state
        .node_services(me)
        .any(|s| s.id == "consul" && s.port == server.me().rpc_port)
        && state
            .node_checks(me)
            .any(|c| c.check_id == SERF_HEALTH && c.status == HealthStatus::Passing);
    if !registered {
        server.apply(Command::Register(Box::new(want))).await?;
        debug!("registered this server in the catalog");
    }
    Ok(())
}

async fn reconcile_members(server: &ServerHandle, members: &[Member]) {
    let me = server.me();
    let local = Local {
        node: &me.node,
        meta: &me.meta,
    };
    let state = server.raft().state();
    for cmd in reconcile::plan(&state, members, &me.datacenter, &local) {
        let what = cmd.name();
        if let Err(e) = server.apply_local(cmd, None).await {
            warn!(cause = %e, what, "reconciling a member into the catalog failed");
            return;
        }
    }
}

async fn run_autopilot(server: &ServerHandle, members: &[Member], stability: &mut Stability) {
    let raft = server.raft();
    let pool = autopilot::pool_servers(members, &server.me().datacenter);
    let config = raft.configuration();
    let actions = autopilot::plan(
        &server.autopilot(),
        &config,
        &pool,
        raft.id(),
        stability,
        Instant::now(),
    );
    // One membership change at a time: raft allows one in flight.
    let Some(action) = actions.into_iter().next() else {
        return;
    };
    let result = match &action {
        Action::AddLearner(id, node) => {
            info!(id, %node, "adding server as a non-voter");
            raft.add_learner(*id, node.clone()).await
        }
        Action::Promote(ids) => {
            info!(?ids, "promoting stable non-voters to voters");
            raft.promote(ids.clone()).await
        }
        Action::Remove(id, name) => {
            let status = pool.get(id).map(|s| s.status);
            info!(id, node = %name, ?status, "removing server that left or failed from raft");
            raft.remove_peer(*id).await
        }
    };
    if let Err(e) = result {
        warn!(?action, cause = %e, "autopilot change failed");
    }
}

async fn expire_sessions(server: &ServerHandle) {
    let state = server.raft().state();
    for id in server.session_timers().expired(&state, Instant::now()) {
        info!(session = %id, "session TTL expired, invalidating");
        if let Err(e) = server
            .apply(Command::SessionDestroy { id: id.clone() })
            .await
        {
            warn!(session = %id, cause = %e, "failed to invalidate expired session");
        }
    }
}

async fn reap_tombstones(server: &ServerHandle) {
    let cutoff = super::unix_ms().saturating_sub(TOMBSTONE_TTL.as_millis() as u64);
    if server.raft().state().has_tombstones_before(cutoff)
        && let Err(e) = server
            .apply(Command::ReapTombstones { before_ms: cutoff })
            .await
    {
        warn!(cause = %e, "failed to reap KV tombstones");
    }
}

/// Proposes `AclWrite::Init` (idempotent in apply); true once it is applied.
async fn init_acls(server: &ServerHandle, duties: &super::AclDuties) -> bool {
    let initial_management = duties
        .initial_management
        .as_ref()
        .filter(|s| !s.is_empty())
        .map(|secret| {
            Box::new(AclToken {
                accessor_id: super::fresh_uuid().to_string(),
                secret_id: secret.clone(),
                ..AclToken::default()
            })
        });
    let cmd = Command::Acl(AclWrite::Init { initial_management });
    match server.apply_local(cmd, None).await {
        Ok(_) => {
            info!("ACL system initialized");
            true
        }
        Err(e) => {
            warn!(cause = %e, "failed to initialize the ACL system");
            false
        }
    }
}

/// Deletes tokens whose expiration time passed (only when there are some).
async fn reap_expired_tokens(server: &ServerHandle) {
    let now = super::unix_ms();
    if server.raft().state().acl_tokens().any(|t| t.expired(now))
        && let Err(e) = server
            .apply_local(Command::Acl(AclWrite::ReapExpired { before_ms: now }), None)
            .await
    {
        warn!(cause = %e, "failed to reap expired ACL tokens");
    }
}
