//! `?dc=any` and `?dc=*` (#16), answered by a server agent (a client agent forwards them to
//! one whole, like any other `?dc=`).
//!
//! - `?dc=any` on `/v1/health/service/:name` and `/v1/catalog/service/:name`: the local
//!   answer when it has an instance (for health: one with every check passing); otherwise the
//!   nearest datacenter's (by WAN round trip) that has one, every other datacenter asked in
//!   parallel under one deadline. `X-Meridian-Datacenter` names the answering datacenter.
//! - `?dc=*` on catalog and health lists: every datacenter's answer merged (arrays joined,
//!   each object stamped with its `Datacenter`; `/v1/catalog/services` as the union of
//!   tags), within one deadline.
//!
//! Datacenters that failed or did not answer in time are named in
//! `X-Meridian-Datacenters-Missing`: never a hang, never silently dropped. Blocking
//! (`?index=`) does not apply to either: they answer at once.
//!
//! ACLs: every datacenter answers with the caller's token (the local handler gets the
//! request's headers and query, the others the forwarded ones) and prunes there; a merged
//! answer is `X-Consul-Results-Filtered-By-ACLs: true` when any part of it was.
//!
//! ```text
//!  ?dc=any ─ local (next.run) ─ has one? ─ yes ─▶ answer (X-Meridian-Datacenter: dc1)
//!                                └─ no ─▶ fanout::nearest(other DCs, relay) ─▶ nearest hit
//!  ?dc=*   ─ local (next.run) + fanout::all(other DCs, relay) ─▶ merged JSON
//! ```

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::time::Instant;

use super::ApiState;
use super::acl_filter_kv::FILTERED_HEADER;
use super::error::ApiError;
use crate::cluster::fanout;
use crate::cluster::federation::CROSS_DC_TIMEOUT;
use crate::cluster::forward::{HttpRequest, HttpResponse};
use crate::rpc::RpcError;

/// The datacenter that answered (`?dc=any`).
pub(super) const ANSWERED_BY: &str = "x-meridian-datacenter";
/// Datacenters that answered (`?dc=*`), nearest first.
pub(super) const ANSWERED: &str = "x-meridian-datacenters";
/// Datacenters that failed or did not answer within the deadline.
pub(super) const MISSING: &str = "x-meridian-datacenters-missing";
/// Largest body read back from a local handler.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Which of the two a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// `?dc=any`: the nearest datacenter with an instance.
    Nearest,
    /// `?dc=*`: every datacenter.
    Every,
}

impl Scope {
    /// The scope a `dc` value names.
    pub(super) fn of(dc: &str) -> Option<Scope> {
        match dc {
            "any" => Some(Scope::Nearest),
            "*" => Some(Scope::Every),
            _ => None,
        }
    }
}

/// Whether `path` takes `scope` (reads only).
fn supported(scope: Scope, method: &Method, path: &str) -> bool {
    if method != Method::GET {
        return false;
    }
    let named = |prefix: &str| path.strip_prefix(prefix).is_some_and(|n| !n.is_empty());
    let nearest = named("/v1/health/service/") || named("/v1/catalog/service/");
    match scope {
        Scope::Nearest => nearest,
        Scope::Every => {
            nearest
                || path == "/v1/catalog/services"
                || path == "/v1/catalog/nodes"
                || named("/v1/health/state/")
                || named("/v1/health/checks/")
                || named("/v1/health/node/")
        }
    }
}

/// `uri` with its `dc` parameter set to `dc` (`None`: removed) and `index`/`wait` dropped
/// (neither form blocks).
fn with_dc(uri: &Uri, dc: Option<&str>) -> String {
    let path = uri.path();
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if !matches!(k.as_ref(), "dc" | "index" | "wait") {
            out.append_pair(&k, &v);
        }
    }
    if let Some(dc) = dc {
        out.append_pair("dc", dc);
    }
    let query = out.finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// Whether an answer of `path` has what `?dc=any` looks for.
fn has_instance(path: &str, resp: &HttpResponse) -> bool {
    if resp.status != 200 {
        return false;
    }
    let Ok(Value::Array(rows)) = serde_json::from_slice::<Value>(&resp.body) else {
        return false;
    };
    if !path.starts_with("/v1/health/") {
        return !rows.is_empty();
    }
    rows.iter().any(|row| {
        row["Checks"]
            .as_array()
            .is_some_and(|cs| cs.iter().all(|c| c["Status"] == "passing"))
    })
}

/// Runs the local handler for `uri` and reads its answer.
async fn local(parts: &axum::http::request::Parts, uri: &str, next: Next) -> HttpResponse {
    let mut req = Request::new(Body::empty());
    *req.method_mut() = parts.method.clone();
    *req.headers_mut() = parts.headers.clone();
    // The route's path parameters travel in the extensions (routing ran before this layer).
    *req.extensions_mut() = parts.extensions.clone();
    *req.uri_mut() = uri.parse().unwrap_or_else(|_| parts.uri.clone());
    crate::cluster::forward::read_response(next.run(req).await, MAX_BODY).await
}

/// Answers a `?dc=any` or `?dc=*` request (server agents).
pub(super) async fn answer(st: &ApiState, scope: Scope, req: Request, next: Next) -> Response {
    let (parts, _body) = req.into_parts();
    if !supported(scope, &parts.method, parts.uri.path()) {
        let what = match scope {
            Scope::Nearest => {
                "dc=any is answered on GET /v1/health/service/:name and /v1/catalog/service/:name"
            }
            Scope::Every => {
                "dc=* is answered on GET catalog and health lists (/v1/catalog/service/:name, /v1/catalog/services, /v1/catalog/nodes, /v1/health/service/:name, /v1/health/state/:state, /v1/health/checks/:name, /v1/health/node/:node)"
            }
        };
        return ApiError::bad_request(what).into_response();
    }
    let local_dc = st.agent.datacenter.clone();
    let path = parts.uri.path().to_string();
    let deadline = Instant::now() + CROSS_DC_TIMEOUT;
    let here = local(&parts, &with_dc(&parts.uri, None), next).await;
    let others: Vec<String> = st
        .router
        .datacenters()
        .await
        .into_iter()
        .filter(|d| *d != local_dc)
        .collect();
    let ask = |dc: String| {
        let req = HttpRequest {
            method: "GET".into(),
            uri: with_dc(&parts.uri, Some(&dc)),
            headers: super::forward::forwarded_headers(st, &parts.uri, &parts.headers).collect(),
            body: Vec::new(),
            request_id: None,
        };
        let st = st.clone();
        async move {
            let Some(f) = st.router.federation() else {
                return Err(RpcError::NoPathToDatacenter(dc));
            };
            let left = deadline.saturating_duration_since(Instant::now());
            f.relay(&dc, req, left).await.and_then(|r| {
                if r.status == 200 {
                    Ok(r)
                } else {
                    Err(RpcError::Forward(format!("HTTP {}", r.status)))
                }
            })
        }
    };
    match scope {
        Scope::Nearest => {
            if has_instance(&path, &here) {
                return stamped(super::forward::into_response(here), &local_dc, &[]);
            }
            let got = fanout::nearest(&others, deadline, ask, |r| has_instance(&path, r)).await;
            match got.found {
                Some((dc, resp)) => stamped(super::forward::into_response(resp), &dc, &got.missing),
                None => stamped(super::forward::into_response(here), &local_dc, &got.missing),
            }
        }
        Scope::Every => {
            let got = fanout::all(&others, deadline, ask).await;
            let mut answers = Vec::new();
            let mut missing = Vec::new();
            if here.status == 200 {
                answers.push((local_dc.clone(), here));
            } else {
                missing.push(local_dc.clone());
            }
            answers.extend(got.answers);
            missing.extend(got.missing);
            merged(&answers, &missing)
        }
    }
}

/// `resp` with the answering datacenter and the missing ones named.
fn stamped(mut resp: Response, dc: &str, missing: &[String]) -> Response {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(dc) {
        h.insert(ANSWERED_BY, v);
    }
    if !missing.is_empty()
        && let Ok(v) = HeaderValue::from_str(&missing.join(","))
    {
        h.insert(MISSING, v);
    }
    resp
}

/// Every answer's JSON merged: arrays joined with each object stamped with its
/// `Datacenter`; objects of arrays (`/v1/catalog/services`) as the union per key.
fn merged(answers: &[(String, HttpResponse)], missing: &[String]) -> Response {
    let mut rows: Vec<Value> = Vec::new();
    let mut map = serde_json::Map::new();
    let mut is_map = false;
    for (dc, resp) in answers {
        match serde_json::from_slice::<Value>(&resp.body) {
            Ok(Value::Array(items)) => rows.extend(items.into_iter().map(|mut v| {
                if let Value::Object(o) = &mut v {
                    o.entry("Datacenter")
                        .or_insert_with(|| Value::String(dc.clone()));
                }
                v
            })),
            Ok(Value::Object(o)) => {
                is_map = true;
                for (k, v) in o {
                    let slot = map.entry(k).or_insert_with(|| Value::Array(Vec::new()));
                    if let (Value::Array(have), Value::Array(more)) = (slot, v) {
                        for t in more {
                            if !have.contains(&t) {
                                have.push(t);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let body = if is_map {
        Value::Object(map)
    } else {
        Value::Array(rows)
    };
    let names: Vec<&str> = answers.iter().map(|(d, _)| d.as_str()).collect();
    let filtered = answers.iter().any(|(_, r)| {
        r.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(FILTERED_HEADER) && v == "true")
    });
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    if filtered {
        h.insert(FILTERED_HEADER, HeaderValue::from_static("true"));
    }
    h.insert("x-consul-knownleader", HeaderValue::from_static("true"));
    h.insert("x-consul-lastcontact", HeaderValue::from_static("0"));
    if let Ok(v) = HeaderValue::from_str(&names.join(",")) {
        h.insert(ANSWERED, v);
    }
    if !missing.is_empty()
        && let Ok(v) = HeaderValue::from_str(&missing.join(","))
    {
        h.insert(MISSING, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(body: &str) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn scopes_and_endpoints() {
        assert_eq!(Scope::of("any"), Some(Scope::Nearest));
        assert_eq!(Scope::of("*"), Some(Scope::Every));
        assert_eq!(Scope::of("dc2"), None);
        let get = Method::GET;
        assert!(supported(Scope::Nearest, &get, "/v1/health/service/web"));
        assert!(!supported(Scope::Nearest, &get, "/v1/catalog/services"));
        assert!(supported(Scope::Every, &get, "/v1/catalog/services"));
        assert!(!supported(
            Scope::Every,
            &Method::PUT,
            "/v1/catalog/services"
        ));
        assert!(!supported(Scope::Every, &get, "/v1/kv/x"));
        assert!(!supported(Scope::Nearest, &get, "/v1/health/service/"));
    }

    #[test]
    fn the_dc_parameter_is_replaced_and_blocking_dropped() {
        let uri: Uri = "/v1/health/service/web?dc=any&passing&index=5&tag=a"
            .parse()
            .unwrap();
        assert_eq!(
            with_dc(&uri, Some("dc2")),
            "/v1/health/service/web?passing=&tag=a&dc=dc2"
        );
        assert_eq!(with_dc(&uri, None), "/v1/health/service/web?passing=&tag=a");
    }

    #[test]
    fn healthy_means_every_check_passing_for_health_and_any_row_for_the_catalog() {
        let failing = r#"[{"Checks":[{"Status":"passing"},{"Status":"critical"}]}]"#;
        let passing = r#"[{"Checks":[{"Status":"critical"}]},{"Checks":[{"Status":"passing"}]}]"#;
        assert!(!has_instance("/v1/health/service/web", &resp(failing)));
        assert!(has_instance("/v1/health/service/web", &resp(passing)));
        assert!(!has_instance("/v1/health/service/web", &resp("[]")));
        assert!(has_instance(
            "/v1/catalog/service/web",
            &resp(r#"[{"Node":"n"}]"#)
        ));
        assert!(!has_instance("/v1/catalog/service/web", &resp("[]")));
    }
}
