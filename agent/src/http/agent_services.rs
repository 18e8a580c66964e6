//! Reads of what this agent owns: `GET /v1/agent/services`, `/v1/agent/checks` (both with
//! `?filter=`) and `/v1/agent/service/:id` (hash-blocking). Answered from local state, as
//! Consul's agent answers them without asking the servers.
//!
//! Under ACLs the lists keep what the token may read (a service on service:read, a check
//! on its service's service:read or this node's node:read) and say
//! `X-Consul-Results-Filtered-By-ACLs: true` when they pruned something for a named token
//! (the agent's `default` token counts); `service/:id` needs service:read (reference/acl.md
//! §5.3, §5.4).
//!
//! A service is shown as Consul's `buildAgentService` (`agent_endpoint.go`) shows it: the
//! registered fields, `Tags`/`Meta` never null, `Datacenter` added, and the empty ones
//! Consul omits (`Kind`, `TaggedAddresses`, `Proxy`, `Connect`, `Locality`, zero indexes)
//! left out.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use tokio::time::Instant;

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_filter_kv::mark_filtered;
use super::error::ApiError;
use super::filter::Filter;
use super::params::{DEFAULT_WAIT, MAX_WAIT, Params};
use super::read::{json_body, parse_filter};
use crate::catalog::{Check, Service};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/agent/services", get(services))
        .route("/v1/agent/checks", get(checks))
        .route("/v1/agent/service/{*id}", get(service))
}

/// One service as `/v1/agent/services` and `/v1/agent/service/:id` show it.
fn agent_service(s: &Service, dc: &str) -> Value {
    let Ok(Value::Object(mut m)) = serde_json::to_value(s) else {
        return Value::Null; // a struct of strings and maps always serializes to an object
    };
    for k in ["CreateIndex", "ModifyIndex"] {
        if m.get(k).and_then(Value::as_u64) == Some(0) {
            m.remove(k);
        }
    }
    m.insert("Datacenter".into(), Value::String(dc.to_string()));
    Value::Object(m)
}

/// Keeps the map values the filter accepts (Consul filters the values, not the keys).
fn filtered(rows: BTreeMap<String, Value>, f: Option<&Filter>) -> BTreeMap<String, Value> {
    match f {
        None => rows,
        Some(f) => rows.into_iter().filter(|(_, v)| f.matches(v)).collect(),
    }
}

/// `GET /v1/agent/services[?filter=]`: ID → service.
async fn services(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
) -> Result<Response, ApiError> {
    let f = parse_filter(&p)?;
    let dc = &st.agent.datacenter;
    let all = st.local.state.services();
    let rows: BTreeMap<String, Value> = all
        .iter()
        .filter(|s| authz.allowed(Resource::Service, &s.service, Need::Read))
        .map(|s| (s.id.clone(), agent_service(s, dc)))
        .collect();
    let pruned = rows.len() != all.len();
    let resp = json_body(&filtered(rows, f.as_ref())).into_response();
    Ok(mark_filtered(&authz, pruned, resp))
}

/// `GET /v1/agent/checks[?filter=]`: check ID → check, with its current status.
async fn checks(State(st): State<ApiState>, authz: Authz, p: Params) -> Result<Response, ApiError> {
    let f = parse_filter(&p)?;
    let all = st.local.state.checks();
    let total = all.len();
    let rows: BTreeMap<String, Value> = all
        .into_iter()
        .map(|c| {
            let mut check: Check = c.check;
            check.node = st.node_name.clone();
            if let Some(svc) = st.local.state.service(&check.service_id) {
                check.service_name = svc.service;
                check.service_tags = svc.tags;
            }
            check
        })
        .filter(|c| match c.service_name.as_str() {
            "" => authz.allowed(Resource::Node, &st.node_name, Need::Read),
            name => authz.allowed(Resource::Service, name, Need::Read),
        })
        .map(|check| {
            let row = serde_json::to_value(&check).unwrap_or(Value::Null);
            (check.check_id, row)
        })
        .collect();
    let pruned = rows.len() != total;
    let resp = json_body(&filtered(rows, f.as_ref())).into_response();
    Ok(mark_filtered(&authz, pruned, resp))
}

/// FNV-1a: a stable 64-bit hash of the response bytes. Consul hashes its struct with
/// `hashstructure`; clients only compare the value they got with the one they send back.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The service as shown, with its `ContentHash` (computed over everything else).
fn hashed(s: &Service, dc: &str) -> (String, Value) {
    let mut v = agent_service(s, dc);
    let hash = format!("{:x}", fnv1a(&serde_json::to_vec(&v).unwrap_or_default()));
    if let Value::Object(m) = &mut v {
        m.insert("ContentHash".into(), Value::String(hash.clone()));
    }
    (hash, v)
}

/// `GET /v1/agent/service/:id[?hash=&wait=]`: one local service with `ContentHash` and the
/// `X-Consul-ContentHash` header. With `hash`, waits (up to `wait`) until the service's hash
/// differs from it, as Consul's hash-based blocking does.
async fn service(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let wait = p.duration("wait")?.unwrap_or(DEFAULT_WAIT).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let mut changes = st.local.state.watch();
    loop {
        changes.borrow_and_update();
        let Some(svc) = st.local.state.service(&id) else {
            return Err(ApiError::not_found(format!("unknown service ID: {id}")));
        };
        authz.check(Resource::Service, &svc.service, Need::Read)?;
        let (hash, body) = hashed(&svc, &st.agent.datacenter);
        let unchanged = p.non_empty("hash") == Some(hash.as_str());
        let woke = unchanged
            && matches!(
                tokio::time::timeout_at(deadline, changes.changed()).await,
                Ok(Ok(()))
            );
        if !woke {
            let mut resp = json_body(&body).into_response();
            if let Ok(v) = hash.parse() {
                resp.headers_mut().insert("x-consul-contenthash", v);
            }
            return Ok(resp);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_plain_service_has_exactly_consuls_keys() {
        let s = Service {
            id: "foo".into(),
            service: "foo".into(),
            ..Service::default()
        };
        assert_eq!(
            agent_service(&s, "dc1"),
            json!({"Address": "", "Datacenter": "dc1", "EnableTagOverride": false, "ID": "foo",
                   "Meta": {}, "Port": 0, "Service": "foo", "Tags": [],
                   "Weights": {"Passing": 1, "Warning": 1}})
        );
    }

    #[test]
    fn the_content_hash_moves_with_the_service_only() {
        let mut s = Service {
            id: "web".into(),
            service: "web".into(),
            port: 80,
            ..Service::default()
        };
        let (h1, body) = hashed(&s, "dc1");
        assert_eq!(body["ContentHash"], h1.as_str());
        assert_eq!(hashed(&s, "dc1").0, h1, "stable");
        s.port = 81;
        assert_ne!(hashed(&s, "dc1").0, h1);
    }

    #[test]
    fn filters_apply_to_the_values() {
        let rows = BTreeMap::from([
            ("a".to_string(), json!({"Tags": ["keep-me"]})),
            ("b".to_string(), json!({"Tags": ["skip-me"]})),
        ]);
        let f = crate::http::filter::parse(r#""keep-me" in Tags"#).expect("parses");
        let kept: Vec<String> = filtered(rows, Some(&f)).into_keys().collect();
        assert_eq!(kept, ["a"]);
    }
}
