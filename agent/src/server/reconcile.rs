//! Leader reconciliation (Consul's `leader.go` `reconcileMember`): the leader turns its view
//! of the LAN pool into the catalog. Every member of this datacenter is a node with the
//! `serfHealth` check — passing while alive, critical once failed (which invalidates the
//! sessions tied to it); a member that left, or that the pool no longer knows (reaped), is
//! deregistered. Servers also carry the `consul` service on their RPC port.
//!
//! Deciding is pure ([`plan`]); the leader loop applies the plan. Nothing is written when
//! the catalog already says what the pool says, so an idle cluster writes nothing.

use std::collections::BTreeSet;

use crate::catalog::{
    Check, Command, DeregisterOp, HealthStatus, Node, RegisterOp, SERF_HEALTH, Service, State,
};
use crate::gossip::{Member, MemberStatus, Role};

const ALIVE_OUTPUT: &str = "Agent alive and reachable";
const FAILED_OUTPUT: &str = "Agent not live or unreachable";

/// What the leader knows about itself that gossip does not carry.
#[derive(Debug, Clone)]
pub(crate) struct Local<'a> {
    /// This server's node name.
    pub node: &'a str,
    /// Its node metadata (`node_meta`).
    pub meta: &'a std::collections::BTreeMap<String, String>,
}

/// The catalog writes that make `state` agree with `members` for `datacenter`.
pub(crate) fn plan(
    state: &State,
    members: &[Member],
    datacenter: &str,
    local: &Local<'_>,
) -> Vec<Command> {
    let mut cmds = Vec::new();
    let mut known = BTreeSet::new();
    for m in members {
        if m.tags.datacenter() != Some(datacenter) {
            continue;
        }
        known.insert(m.name.as_str());
        match m.status {
            MemberStatus::Alive | MemberStatus::Leaving => {
                if let Some(op) = alive(state, m, local) {
                    cmds.push(Command::Register(Box::new(op)));
                }
            }
            MemberStatus::Failed => {
                if let Some(op) = failed(state, m) {
                    cmds.push(Command::Register(Box::new(op)));
                }
            }
            MemberStatus::Left => {
                if state.node(&m.name).is_some() && m.name != local.node {
                    cmds.push(deregister(&m.name));
                }
            }
        }
    }
    // Reaped: nodes that carry serfHealth but are no longer in the pool.
    for node in state.nodes() {
        let name = node.node.as_str();
        if name == local.node || known.contains(name) {
            continue;
        }
        if state
            .node_checks(name)
            .any(|c| c.check_id == SERF_HEALTH && c.service_id.is_empty())
        {
            cmds.push(deregister(name));
        }
    }
    cmds
}

fn deregister(node: &str) -> Command {
    Command::Deregister(DeregisterOp {
        node: node.to_string(),
        ..Default::default()
    })
}

fn serf_check(node: &str, status: HealthStatus, output: &str) -> Check {
    Check {
        node: node.to_string(),
        check_id: SERF_HEALTH.into(),
        name: "Serf Health Status".into(),
        status,
        output: output.into(),
        ..Check::default()
    }
}

/// The node as the catalog should hold it: the existing record (meta, tagged addresses set
/// by the agent's own sync) with the pool's address and ID.
fn desired_node(state: &State, m: &Member, local: &Local<'_>) -> Node {
    let address = m.addr.ip().to_string();
    let mut node = state.node(&m.name).cloned().unwrap_or_else(|| Node {
        node: m.name.clone(),
        ..Node::default()
    });
    node.address = address.clone();
    if let Some(id) = m.tags.get("id") {
        node.id = id.to_string();
    }
    if let Some(dc) = m.tags.datacenter() {
        node.datacenter = dc.to_string();
    }
    for k in ["lan", "lan_ipv4", "wan", "wan_ipv4"] {
        node.tagged_addresses
            .entry(k.to_string())
            .or_insert_with(|| address.clone());
    }
    if m.name == local.node {
        node.meta = local.meta.clone();
    }
    node
}

fn consul_service(m: &Member) -> Option<Service> {
    if m.tags.role() != Some(Role::Server) {
        return None;
    }
    let port = m.tags.rpc_addr().map_or(8300, |a| a.port());
    Some(Service {
        id: "consul".into(),
        service: "consul".into(),
        port,
        ..Service::default()
    })
}

fn alive(state: &State, m: &Member, local: &Local<'_>) -> Option<RegisterOp> {
    let want = desired_node(state, m, local);
    let service = consul_service(m);
    let node_ok = state
        .node(&m.name)
        .is_some_and(|n| n.address == want.address && n.id == want.id && n.meta == want.meta);
    let check_ok = state
        .node_checks(&m.name)
        .any(|c| c.check_id == SERF_HEALTH && c.status == HealthStatus::Passing);
    let service_ok = service.as_ref().is_none_or(|s| {
        state
            .node_services(&m.name)
            .any(|have| have.id == s.id && have.port == s.port)
    });
    if node_ok && check_ok && service_ok {
        return None;
    }
    Some(RegisterOp {
        node: want,
        skip_node_update: false,
        service,
        checks: vec![serf_check(&m.name, HealthStatus::Passing, ALIVE_OUTPUT)],
    })
}

fn failed(state: &State, m: &Member) -> Option<RegisterOp> {
    let node = state.node(&m.name)?.clone();
    let critical = state
        .node_checks(&m.name)
        .any(|c| c.check_id == SERF_HEALTH && c.status == HealthStatus::Critical);
    if critical {
        return None;
    }
    Some(RegisterOp {
        node,
        skip_node_update: true,
        service: None,
        checks: vec![serf_check(&m.name, HealthStatus::Critical, FAILED_OUTPUT)],
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::catalog::Request;
    use crate::gossip::Tags;

    fn member(name: &str, port: u16, role: Role, status: MemberStatus) -> Member {
        let mut tags = Tags::new(role, "dc1")
            .with_rpc_addr(format!("10.0.0.{port}:8300").parse().expect("addr"));
        tags.set("id", format!("id-{name}"));
        Member {
            name: name.into(),
            addr: format!("10.0.0.{port}:8301").parse().expect("addr"),
            tags,
            status,
            incarnation: 0,
        }
    }

    /// Plans against `s` and applies the plan.
    fn reconcile(s: &mut State, members: &[Member], local: &Local<'_>) {
        for cmd in plan(s, members, "dc1", local) {
            let index = s.applied_index() + 1;
            s.apply(index, &Request::new(1, cmd));
        }
    }

    fn serf_status(s: &State, node: &str) -> Option<HealthStatus> {
        s.node_checks(node)
            .find(|c| c.check_id == SERF_HEALTH)
            .map(|c| c.status)
    }

    #[test]
    fn members_become_nodes_fail_leave_and_reap() {
        let meta = BTreeMap::new();
        let local = Local {
            node: "s1",
            meta: &meta,
        };
        let mut s = State::new();
        let mut members = vec![
            member("s1", 1, Role::Server, MemberStatus::Alive),
            member("c1", 2, Role::Client, MemberStatus::Alive),
        ];
        let mut other_dc = member("far", 3, Role::Server, MemberStatus::Alive);
        other_dc.tags = Tags::new(Role::Server, "dc2");
        members.push(other_dc);
        reconcile(&mut s, &members, &local);
        assert_eq!(serf_status(&s, "c1"), Some(HealthStatus::Passing));
        assert!(s.node("far").is_none());
        assert!(s.node_services("s1").any(|svc| svc.service == "consul"));
        assert!(!s.node_services("c1").any(|svc| svc.service == "consul"));
        assert_eq!(s.node("c1").map(|n| n.id.as_str()), Some("id-c1"));
        // Converged: nothing more to write.
        assert!(plan(&s, &members, "dc1", &local).is_empty());

        members[1].status = MemberStatus::Failed;
        reconcile(&mut s, &members, &local);
        assert_eq!(serf_status(&s, "c1"), Some(HealthStatus::Critical));
        assert!(plan(&s, &members, "dc1", &local).is_empty());

        members[1].status = MemberStatus::Alive;
        reconcile(&mut s, &members, &local);
        assert_eq!(serf_status(&s, "c1"), Some(HealthStatus::Passing));

        members[1].status = MemberStatus::Left;
        reconcile(&mut s, &members, &local);
        assert!(s.node("c1").is_none());

        // A node registered through the catalog API (no serfHealth) is left alone, one with
        // serfHealth that the pool forgot (reaped) is removed.
        members[1].status = MemberStatus::Alive;
        reconcile(&mut s, &members, &local);
        members.remove(1);
        reconcile(&mut s, &members, &local);
        assert!(s.node("c1").is_none());
    }
}
