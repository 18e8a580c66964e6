//! `/v1/operator/keyring`: list (GET), install (POST), use (PUT) and remove (DELETE) gossip
//! keys on every alive member of the LAN pool (consul.md §1.14, §2.12). The operation is a
//! pool-wide key query (`gossip::query`); the answer is Consul's list of
//! `KeyringResponse` blocks, one per pool: the LAN's, and on a server whose datacenter
//! has gateways the WAN pool's (asked through a gateway). Unlike Consul, which changes
//! both pools at once and so forces one key on every datacenter, the WAN keyring is
//! separate: `?wan=1` (CLI `-wan`) changes the WAN pool's keys, without it the LAN's.
//! As in Consul, a member that failed or did not answer makes the request a 500 naming it.
//! ACLs (reference/acl.md §5.3): listing needs keyring:read, every change keyring:write,
//! checked by the agent that receives the request, before any member is asked.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::body;
use super::error::ApiError;
use super::params::Params;
use super::read::json_body;
use crate::gossip::{GossipError, GossipKey, KeyOp, KeyringSummary};

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route(
        "/v1/operator/keyring",
        get(list).post(install).put(use_key).delete(remove),
    )
}

/// `{"Key": "..."}` (field names folded, see `body.rs`).
#[derive(Deserialize)]
struct KeyBody {
    #[serde(default)]
    key: String,
}

/// The `Key` of the request body, decoded.
fn key_of(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let b: KeyBody = body::decode(body, false)?;
    if b.key.is_empty() {
        return Err(ApiError::bad_request("field \"Key\" is required"));
    }
    let key = GossipKey::from_base64(&b.key)
        .map_err(|e| ApiError::bad_request(format!("field \"Key\": {e}")))?;
    Ok(key.as_bytes().to_vec())
}

/// One pool's block in Consul's shape.
fn block(st: &ApiState, s: &KeyringSummary, wan: bool) -> Value {
    json!({
        "WAN": wan,
        "Datacenter": st.agent.datacenter,
        "Segment": "",
        "Messages": s.messages,
        "Keys": s.keys,
        "PrimaryKeys": s.primary_keys,
        "NumNodes": s.num_nodes,
    })
}

/// Consul's `keyringErrorsOrNil`: the pool, serf's verdict, then each node's message.
fn check(st: &ApiState, s: &KeyringSummary, wan: bool) -> Result<(), ApiError> {
    let Some(verdict) = s.error() else {
        return Ok(());
    };
    let pool = if wan {
        "WAN".to_string()
    } else {
        format!("{} (LAN)", st.agent.datacenter)
    };
    let mut msg = format!("{pool} error: {verdict}");
    for (node, err) in &s.messages {
        msg.push_str(&format!("\n{node}: {err}"));
    }
    Err(ApiError::internal(msg))
}

fn gossip_err(e: GossipError) -> ApiError {
    match e {
        GossipError::Key(_) => ApiError::bad_request(e.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

async fn run(st: &ApiState, p: &Params, op: KeyOp) -> Result<KeyringSummary, ApiError> {
    if let Some(f) = p.non_empty("relay-factor") {
        match f.parse::<u8>() {
            Ok(0..=5) => {}
            _ => {
                return Err(ApiError::bad_request(
                    "relay-factor must be an integer from 0 to 5",
                ));
            }
        }
    }
    let wan = p.flag("wan");
    let summary = if wan {
        st.router
            .federation()
            .ok_or_else(|| {
                ApiError::bad_request(
                    "the WAN keyring is changed through a server (its datacenter's gateways)",
                )
            })?
            .wan_keys(op)
            .await?
    } else {
        st.gossip.key_query(op).await.map_err(gossip_err)?
    };
    check(st, &summary, wan)?;
    Ok(summary)
}

/// `GET`: the keys of every alive member, with how many hold each: the WAN pool's block
/// (where there is one) and the LAN's, or with `?wan=1` the WAN's alone. `?local-only`
/// reports this agent's LAN keyring without asking anyone.
async fn list(State(st): State<ApiState>, authz: Authz, p: Params) -> Result<Response, ApiError> {
    authz.check(Resource::Keyring, "", Need::Read)?;
    if p.flag("wan") {
        if p.flag("local-only") {
            return Err(ApiError::bad_request(
                "an agent holds no WAN keyring (its datacenter's gateways do); list the WAN keys without local-only",
            ));
        }
        // `run` asks the WAN pool: its answer is the WAN block, not this agent's LAN.
        let wan = run(&st, &p, KeyOp::List).await?;
        return Ok(json_body(&[block(&st, &wan, true)]));
    }
    let summary = if p.flag("local-only") {
        let mut s = KeyringSummary {
            num_nodes: 1,
            ..Default::default()
        };
        s.add(crate::gossip::query::KeyReply {
            id: 0,
            node: st.agent.node_name.clone(),
            keys: st
                .gossip
                .list_keys()
                .iter()
                .map(|k| k.to_base64())
                .collect(),
            error: None,
        });
        s
    } else {
        run(&st, &p, KeyOp::List).await?
    };
    let mut blocks = Vec::new();
    // The WAN pool first, as Consul lists it; only where there is one to ask.
    if !p.flag("local-only")
        && let Some(federation) = st.router.federation()
        && !federation.gateways().is_empty()
    {
        let wan = federation.wan_keys(KeyOp::List).await?;
        check(&st, &wan, true)?;
        blocks.push(block(&st, &wan, true));
    }
    blocks.push(block(&st, &summary, false));
    Ok(json_body(&blocks))
}

/// `POST {"Key"}`: installs the key everywhere (it decrypts at once, seals after `PUT`).
async fn install(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Keyring, "", Need::Write)?;
    run(&st, &p, KeyOp::Install(key_of(&body)?)).await?;
    Ok(().into_response())
}

/// `PUT {"Key"}`: makes an installed key the primary everywhere.
async fn use_key(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Keyring, "", Need::Write)?;
    run(&st, &p, KeyOp::Use(key_of(&body)?)).await?;
    Ok(().into_response())
}

/// `DELETE {"Key"}`: removes a key everywhere; the primary is refused.
async fn remove(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Keyring, "", Need::Write)?;
    run(&st, &p, KeyOp::Remove(key_of(&body)?)).await?;
    Ok(().into_response())
}
