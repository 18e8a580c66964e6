//! `/v1/event/{fire,list}`: Consul user events over LAN gossip (consul.md §1.17). Events are
//! best-effort and not persisted; each agent lists the last 256 it received and accepted
//! (the node / service / tag regex filters are applied by each receiving agent).
//!
//! ACLs (reference/acl.md §5.3): firing needs event:write on the name; the list keeps only
//! events the token may read (resolved once, before a blocking wait, §5.7).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use base64::Engine;
use serde_json::{Value, json};

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_filter_kv::FILTERED_HEADER;
use super::error::ApiError;
use super::params::Params;
use super::read::json_body;
use crate::agent::events::ConsulEvent;
use crate::gossip::GossipError;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/event/fire/{name}", put(fire))
        .route("/v1/event/list", get(list))
}

fn event_json(e: &ConsulEvent) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    json!({
        "ID": e.id,
        "Name": e.name,
        "Payload": e.payload.as_ref().map(|p| b64.encode(p)),
        "NodeFilter": e.node_filter,
        "ServiceFilter": e.service_filter,
        "TagFilter": e.tag_filter,
        "Version": 1,
        "LTime": e.ltime,
    })
}

/// A filter parameter, checked to be a valid regular expression.
fn filter(p: &Params, name: &str) -> Result<String, ApiError> {
    let value = p.get(name).unwrap_or("").to_string();
    if !value.is_empty() {
        regex::Regex::new(&value)
            .map_err(|e| ApiError::bad_request(format!("Invalid {name} filter: {e}")))?;
    }
    Ok(value)
}

/// `PUT /v1/event/fire/:name?node=&service=&tag=`; the body is the payload.
async fn fire(
    State(st): State<ApiState>,
    authz: Authz,
    Path(name): Path<String>,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Event, &name, Need::Write)?;
    let payload = (!body.is_empty()).then(|| body.to_vec());
    let mut ev = ConsulEvent::new(name, payload);
    ev.node_filter = filter(&p, "node")?;
    ev.service_filter = filter(&p, "service")?;
    ev.tag_filter = filter(&p, "tag")?;
    if !ev.tag_filter.is_empty() && ev.service_filter.is_empty() {
        return Err(ApiError::bad_request(
            "Cannot provide tag filter without service filter",
        ));
    }
    let bytes = ev.encode().map_err(|e| ApiError::internal(e.to_string()))?;
    match st.gossip.fire_user_event(&ev.name, &bytes).await {
        Ok(()) => Ok(json_body(&event_json(&ev))),
        Err(e @ (GossipError::UserEventTooLarge { .. } | GossipError::EmptyEventName)) => {
            Err(ApiError::bad_request(e.to_string()))
        }
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

/// `GET /v1/event/list?name=&index=&wait=`: received events, oldest first. As Consul's,
/// `X-Consul-Index` is derived from the newest listed event's ID (1 when there is none); it
/// is not monotonic, so a blocking read waits while the index *equals* `?index`.
async fn list(State(st): State<ApiState>, authz: Authz, p: Params) -> Result<Response, ApiError> {
    let opts = p.read_opts()?;
    let deadline = tokio::time::Instant::now() + opts.wait;
    let mut pushed = st.events.watch();
    let (events, index) = loop {
        pushed.borrow_and_update();
        let events = st.events.list(p.non_empty("name"));
        let index = events.last().map_or(1, ConsulEvent::index).max(1);
        if opts.index == 0 || index != opts.index {
            break (events, index);
        }
        tokio::select! {
            changed = pushed.changed() => {
                if changed.is_err() {
                    break (events, index);
                }
            }
            _ = tokio::time::sleep_until(deadline) => break (events, index),
        }
    };
    let body: Vec<Value> = events
        .iter()
        .filter(|e| authz.allowed(Resource::Event, &e.name, Need::Read))
        .map(event_json)
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert("X-Consul-Index", HeaderValue::from(index));
    if body.len() != events.len() && authz.token_given() {
        headers.insert(FILTERED_HEADER, HeaderValue::from_static("true"));
    }
    Ok((headers, json_body(&body)).into_response())
}
