//! `/v1/session/*`: create, destroy, renew, info, list, node. Bodies in Consul's shapes
//! (any key case, Go durations, `LockDelay` out as integer nanoseconds).
//!
//! ACLs (reference/acl.md §5.3): create, destroy and renew need session:write on the
//! session's node (a destroy or renew of an unknown session needs nothing: there is no
//! node to check); info, node and list keep only sessions whose node the token may read.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, put};
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::HeaderValue;
use meridian_acl::{Need, Resource};
use serde::Deserialize;

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_filter_kv::FILTERED_HEADER;
use super::body::{GoDuration, decode};
use super::error::ApiError;
use super::params::Params;
use super::read::{json_body, list};
use crate::catalog::{
    Command, Response as Applied, SERF_HEALTH, ServiceCheckRef, Session, SessionBehavior,
};

/// Consul's maximum session TTL.
const SESSION_TTL_MAX: Duration = Duration::from_secs(86_400);
/// Consul's default lock delay.
const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/session/create", put(create))
        .route("/v1/session/destroy/{id}", put(destroy))
        .route("/v1/session/renew/{id}", put(renew))
        .route("/v1/session/info/{id}", get(info))
        .route("/v1/session/node/{node}", get(by_node))
        .route("/v1/session/list", get(list_all))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateBody {
    name: String,
    node: String,
    checks: Option<Vec<String>>,
    nodechecks: Option<Vec<String>>,
    servicechecks: Vec<ServiceCheckBody>,
    lockdelay: Option<GoDuration>,
    behavior: String,
    ttl: Option<GoDuration>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ServiceCheckBody {
    id: String,
    namespace: String,
}

/// A `/v1/session/create` body as the session to propose (its ID fresh); `node` is this
/// agent's, used when the body names none, and `ttl_min` is `session_ttl_min`.
pub(super) fn new_session(body: &[u8], node: &str, ttl_min: Duration) -> Result<Session, ApiError> {
    let b: CreateBody = decode(body, true)?;
    let behavior = match b.behavior.as_str() {
        "" | "release" => SessionBehavior::Release,
        "delete" => SessionBehavior::Delete,
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid Behavior setting '{other}'"
            )));
        }
    };
    let ttl = b.ttl.map(|d| d.0).unwrap_or_default();
    if !ttl.is_zero() && (ttl < ttl_min || ttl > SESSION_TTL_MAX) {
        // Consul answers 500 here and clients match the text, then read SessionTTLMin.
        return Err(ApiError::internal(format!(
            "Invalid Session TTL '{}', must be between [{}={}]",
            ttl.as_nanos(),
            meridian_config::duration::format_go_duration(ttl_min),
            meridian_config::duration::format_go_duration(SESSION_TTL_MAX)
        )));
    }
    // Consul treats small LockDelay numbers as seconds (`lockDelayMinThreshold`).
    let lock_delay = match b.lockdelay {
        None => DEFAULT_LOCK_DELAY,
        Some(GoDuration(d)) if d.as_nanos() > 0 && d.as_nanos() < 1000 => {
            Duration::from_secs(d.as_nanos() as u64)
        }
        Some(GoDuration(d)) => d,
    };
    let node_checks = match (b.nodechecks, b.checks) {
        (Some(n), _) => n,
        (None, Some(c)) => c,
        (None, None) => vec![SERF_HEALTH.to_string()],
    };
    Ok(Session {
        id: crate::server::fresh_uuid().to_string(),
        name: b.name,
        node: if b.node.is_empty() {
            node.to_string()
        } else {
            b.node
        },
        lock_delay: lock_delay.as_nanos() as u64,
        behavior,
        ttl: if ttl.is_zero() {
            String::new()
        } else {
            meridian_config::duration::format_go_duration(ttl)
        },
        node_checks,
        service_checks: b
            .servicechecks
            .into_iter()
            .map(|c| ServiceCheckRef {
                id: c.id,
                namespace: c.namespace,
            })
            .collect(),
        ..Session::default()
    })
}

async fn create(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let session = new_session(&body, &st.node_name, st.session_ttl_min)?;
    authz.check(Resource::Session, &session.node, Need::Write)?;
    let server = st.router.server(p.dc())?;
    match server
        .apply(Command::SessionCreate(session.clone()))
        .await?
        .1
    {
        Applied::SessionCreated(id) => {
            // A retried request gets its first attempt's session back.
            let session = Session {
                id: id.clone(),
                ..session
            };
            server
                .session_timers()
                .renew(&session, tokio::time::Instant::now());
            Ok(json_body(&serde_json::json!({ "ID": id })))
        }
        other => Err(ApiError::internal(format!(
            "unexpected session result {other:?}"
        ))),
    }
}

/// session:write on the node of session `id`, when it exists.
async fn check_session_write(
    st: &ApiState,
    authz: &Authz,
    p: &Params,
    id: &str,
) -> Result<(), ApiError> {
    let opts = p.read_opts()?;
    let server = st.router.server(p.dc())?;
    let node = server
        .read(opts.consistency)
        .await?
        .state
        .session(id)
        .map(|s| s.node.clone());
    match node {
        Some(node) => authz.check(Resource::Session, &node, Need::Write),
        None => Ok(()),
    }
}

async fn destroy(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    check_session_write(&st, &authz, &p, &id).await?;
    let server = st.router.server(p.dc())?;
    server.apply(Command::SessionDestroy { id }).await?;
    Ok(json_body(&true))
}

async fn renew(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    check_session_write(&st, &authz, &p, &id).await?;
    let server = st.router.server(p.dc())?;
    match server.session_renew(&id).await? {
        Some(s) => Ok(json_body(&[s])),
        None => Err(ApiError::not_found(format!("Session id '{id}' not found"))),
    }
}

/// `list` over the sessions `query` picks, keeping those the token may read and marking a
/// pruned answer (§5.4). The token was resolved before any blocking wait (§5.7).
async fn readable(
    st: &ApiState,
    authz: &Authz,
    p: &Params,
    query: impl Fn(&crate::catalog::State) -> Vec<Session>,
) -> Result<Response, ApiError> {
    let pruned = AtomicBool::new(false);
    let mut resp = list(st, p, |s| {
        let all = query(s);
        let before = all.len();
        let kept: Vec<Session> = all
            .into_iter()
            .filter(|x| authz.allowed(Resource::Session, &x.node, Need::Read))
            .collect();
        pruned.store(kept.len() != before, Ordering::Relaxed);
        (s.table_indexes().sessions, kept)
    })
    .await?;
    if pruned.load(Ordering::Relaxed) && authz.token_given() {
        resp.headers_mut()
            .insert(FILTERED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(resp)
}

async fn info(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    readable(&st, &authz, &p, |s| {
        s.session(&id).cloned().into_iter().collect()
    })
    .await
}

async fn by_node(
    State(st): State<ApiState>,
    authz: Authz,
    Path(node): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    readable(&st, &authz, &p, |s| {
        s.sessions().filter(|x| x.node == node).cloned().collect()
    })
    .await
}

async fn list_all(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
) -> Result<Response, ApiError> {
    readable(&st, &authz, &p, |s| s.sessions().cloned().collect()).await
}
