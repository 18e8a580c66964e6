//! `GET /v1/agent/self`: this agent's description, with exactly the top-level keys of
//! Consul's `Self` struct (`agent_endpoint.go`): `Config`, `DebugConfig`, `Coord`, `Member`,
//! `Stats`, `Meta` and `xDS`. Client agents answer it themselves. With TLS on, `Stats` has
//! a `tls` section of Meridian's own (the certificates in use, by fingerprint). Needs
//! `agent:read` on this node when ACLs are on.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use meridian_acl::{Need, Resource};

use super::acl_authz::Authz;
use super::error::ApiError;
use super::read::json_body;
use super::{ApiState, CONSUL_API_VERSION};
use crate::gossip::MemberStatus;

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/agent/self", get(self_info))
}

/// `xDS` as Consul reports it when its gRPC ports are off: Meridian serves no xDS, so no
/// proxy versions are supported and every port is -1.
fn xds() -> Value {
    json!({
        "SupportedProxies": { "envoy": [] },
        "Port": -1,
        "Ports": { "Plaintext": -1, "TLS": -1 },
    })
}

/// Go's names for the build target, as Consul's `Stats.runtime` shows them.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// `Stats`: the sections Consul's `Agent.Stats` has that Meridian can fill honestly.
fn stats(st: &ApiState) -> Value {
    let a = &st.agent;
    let server = st.router.local();
    let leader = server
        .and_then(|s| s.raft().leader())
        .map(|(_, n)| n.rpc_addr)
        .unwrap_or_default();
    let is_leader = server.is_some_and(|s| s.raft().is_leader());
    let members = st.gossip.members();
    let count = |status: MemberStatus| members.iter().filter(|m| m.status == status).count();
    let local = st.local.state.services().len();
    let mut stats = json!({
        "agent": {
            "checks": st.local.state.checks().len().to_string(),
            "services": local.to_string(),
        },
        "build": {
            "prerelease": "", "revision": "", "version": CONSUL_API_VERSION,
            "version_metadata": "", "meridian_version": a.version,
        },
        "consul": {
            "server": a.server.to_string(), "leader": is_leader.to_string(),
            "leader_addr": leader, "known_datacenters": "1",
        },
        "runtime": {
            "arch": go_arch(), "os": std::env::consts::OS,
            "cpu_count": std::thread::available_parallelism().map_or(1, |n| n.get()).to_string(),
        },
        "serf_lan": {
            "members": members.len().to_string(),
            "failed": count(MemberStatus::Failed).to_string(),
            "left": count(MemberStatus::Left).to_string(),
        },
    });
    if let Some(tls) = &st.tls {
        stats["tls"] = tls_stats(tls);
    }
    if let Some(s) = server {
        let r = s.raft().stats();
        stats["raft"] = json!({
            "applied_index": r.applied_index.to_string(),
            "commit_index": r.commit_index.to_string(),
            "last_log_index": r.last_log_index.to_string(),
            "term": r.term.to_string(),
            "state": r.state,
            "num_peers": r.num_peers.to_string(),
        });
    }
    stats
}

/// `Stats.tls` (Meridian's; Consul has no such section): the SHA-256 fingerprints of the
/// certificate and of each CA in use since the last (re)load, as `openssl x509 -noout
/// -fingerprint -sha256` prints them (CAs comma-separated, in file order), the reloads
/// and the refused handshakes. After a rotation and a SIGHUP, an operator compares these
/// with the new files; a client agent has no listener to shake hands with.
fn tls_stats(tls: &meridian_tls::TlsContext) -> Value {
    let f = tls.fingerprints();
    json!({
        "cert_sha256": f.cert.unwrap_or_default(),
        "ca_sha256": f.cas.join(","),
        "reloads": tls.reloads().to_string(),
        "handshake_failures": tls.handshake_failures().to_string(),
    })
}

async fn self_info(State(st): State<ApiState>, authz: Authz) -> Result<Response, ApiError> {
    // The first §5.3 check, here because a client agent answers it itself (so it exercises
    // the client's resolution through its servers) and the recovery token is for it.
    authz.check(Resource::Agent, &st.agent.node_name, Need::Read)?;
    let a = &st.agent;
    let meta = st
        .router
        .local()
        .map(|s| s.me().meta.clone())
        .unwrap_or_default();
    let ttl_min = st.session_ttl_min.as_nanos() as u64;
    let config = json!({
        "Datacenter": a.datacenter,
        // The ACL primary in effect (it can move at runtime: `server::acl_primary`).
        "PrimaryDatacenter": st.acl.settings().primary_datacenter(),
        "NodeName": a.node_name,
        "NodeID": a.node_id,
        "Server": a.server,
        "Revision": "",
        // The Consul API level Meridian implements (clients gate features on it); Meridian's
        // own version is beside it.
        "Version": CONSUL_API_VERSION,
        "BuildDate": "",
        "MeridianVersion": a.version,
        "AdvertiseAddr": a.advertise_addr,
        "SessionTTLMin": ttl_min,
    });
    Ok(json_body(&json!({
        "Config": config,
        "DebugConfig": {
            "SessionTTLMin": ttl_min, "Datacenter": a.datacenter,
            "NodeName": a.node_name, "DNSDomain": a.domain,
        },
        "Coord": st.gossip.coordinate(),
        "Member": super::members::local_member(&st),
        "Stats": stats(&st),
        "Meta": meta,
        "xDS": xds(),
    })))
}
