//! `/v1/operator/usage[?global]`: counts of services, instances and nodes per datacenter,
//! computed from the catalog, in the shape of Consul's `structs.Usage`. Needs operator:read
//! (reference/acl.md §5.3).
//!
//! Consul's handler returns the whole RPC reply, so the query metadata travels twice: as the
//! usual `X-Consul-*` headers and, because `structs.QueryMeta` is embedded in the reply, as
//! body fields (`Index`, `LastContact` in nanoseconds, `KnownLeader`, `ConsistencyLevel`,
//! `NotModified`, `Backend`, `ResultsFilteredByACLs`).

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::error::ApiError;
use super::params::Params;
use super::read::blocking;
use crate::catalog::State as Catalog;

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/operator/usage", get(usage))
}

/// Service kinds Consul counts in `ConnectServiceInstances` (all present, zero or not).
const CONNECT_KINDS: [&str; 6] = [
    "api-gateway",
    "connect-native",
    "connect-proxy",
    "ingress-gateway",
    "mesh-gateway",
    "terminating-gateway",
];

/// One datacenter's counts (Consul's `structs.ServiceUsage` plus `Nodes`).
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
struct ServiceUsage {
    /// Distinct service names (the `consul` service included).
    services: usize,
    /// Every registered instance.
    service_instances: usize,
    /// Instances per mesh kind.
    connect_service_instances: BTreeMap<&'static str, usize>,
    /// Instances of typical (non-mesh) services, leaving out `consul`.
    billable_service_instances: usize,
    /// Registered nodes.
    nodes: usize,
}

/// The reply: usage by datacenter and the embedded query metadata.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Usage {
    usage: BTreeMap<String, ServiceUsage>,
    index: u64,
    /// Nanoseconds, as Go encodes a `time.Duration`.
    last_contact: u64,
    known_leader: bool,
    consistency_level: &'static str,
    not_modified: bool,
    /// Consul's `QueryBackend`: 0 is the blocking-query backend.
    backend: u8,
    #[serde(rename = "ResultsFilteredByACLs")]
    results_filtered_by_acls: bool,
}

fn count(s: &Catalog) -> ServiceUsage {
    let mut names = BTreeSet::new();
    let mut connect: BTreeMap<&'static str, usize> =
        CONNECT_KINDS.iter().map(|k| (*k, 0)).collect();
    let (mut instances, mut billable) = (0, 0);
    for svc in s.services() {
        names.insert(svc.service.as_str());
        instances += 1;
        match connect.get_mut(svc.kind.as_str()) {
            Some(n) => *n += 1,
            None if svc.service != "consul" => billable += 1,
            None => {}
        }
    }
    ServiceUsage {
        services: names.len(),
        service_instances: instances,
        connect_service_instances: connect,
        billable_service_instances: billable,
        nodes: s.nodes().count(),
    }
}

/// `?global` asks every known datacenter; until federation the local one is the only one
/// Meridian knows (`rpc::Router::datacenters`), so both forms answer with it.
async fn usage(State(st): State<ApiState>, authz: Authz, p: Params) -> Result<Response, ApiError> {
    authz.check(Resource::Operator, "", Need::Read)?;
    let opts = p.read_opts()?;
    let server = st.router.server(opts.dc.as_deref())?;
    let dc = opts
        .dc
        .clone()
        .unwrap_or_else(|| st.router.local_dc().to_string());
    let (meta, counts) =
        blocking(server, &opts, |s| (s.table_indexes().services, count(s))).await?;
    let body = Usage {
        usage: BTreeMap::from([(dc, counts)]),
        index: meta.index,
        last_contact: meta.last_contact_ms.saturating_mul(1_000_000),
        known_leader: meta.known_leader,
        consistency_level: meta.consistency.as_str(),
        not_modified: false,
        backend: 0,
        results_filtered_by_acls: false,
    };
    Ok(meta.json(&body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Command, Node, RegisterOp, Request, Service};

    fn register(s: &mut Catalog, index: u64, node: &str, name: &str, kind: &str) {
        let op = RegisterOp {
            node: Node {
                node: node.into(),
                address: "10.0.0.1".into(),
                ..Default::default()
            },
            service: Some(Service {
                id: format!("{name}-{node}"),
                service: name.into(),
                kind: kind.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let req = Request::new(1, Command::Register(Box::new(op)));
        s.apply(index, &req);
    }

    #[test]
    fn counts_names_instances_kinds_and_nodes() {
        let mut s = Catalog::new();
        register(&mut s, 1, "n1", "consul", "");
        register(&mut s, 2, "n1", "web", "");
        register(&mut s, 3, "n2", "web", "");
        register(&mut s, 4, "n2", "web-proxy", "connect-proxy");
        let u = count(&s);
        assert_eq!(u.services, 3);
        assert_eq!(u.service_instances, 4);
        assert_eq!(u.billable_service_instances, 2);
        assert_eq!(u.nodes, 2);
        assert_eq!(u.connect_service_instances["connect-proxy"], 1);
        assert_eq!(u.connect_service_instances.len(), CONNECT_KINDS.len());
    }
}
