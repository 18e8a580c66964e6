//! Moving the ACL primary datacenter at runtime (Meridian's own endpoints; rules in
//! `server::acl_primary`):
//!
//! - `PUT /v1/operator/federation/primary` `{"Datacenter": "dc2"}` (CLI `operator
//!   federation promote-primary dc2`; `acl:write`, an ACL authority move): this datacenter
//!   writes the record with the next epoch and announces it to every federated datacenter
//!   through the gateways. Answer: `{"Datacenter", "Epoch", "Acknowledged": [dc...],
//!   "NotReached": {dc: why}, "Unknown": {dc: why}, "Superseded": {dc: record}}` —
//!   `Unknown` when a request may have been applied, `Superseded` when a datacenter holds
//!   a record that beats this one. An unknown datacenter is a 400 naming `Datacenter`.
//! - `GET /v1/internal/acl/primary`: the record in effect here (`Epoch` 0: the configured
//!   value); open, as `PrimaryDatacenter` in `/v1/agent/self` is for any agent reader.
//! - `PUT /v1/internal/acl/primary` `{"Datacenter", "Epoch"}`: an announcement; kept if it
//!   beats the record held (`acl:write`); the answer is the record held afterwards.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, put};
use meridian_acl::{Need, Resource};
use serde::Deserialize;
use serde_json::json;

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_write::server;
use super::error::ApiError;
use super::read::json_body;
use crate::catalog::Command;
use crate::catalog::Response as Applied;
use crate::catalog::acl::{AclPrimary, AclWrite};
use crate::server::acl_primary::{self, Ack, PRIMARY_PATH};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/operator/federation/primary", put(promote))
        .route(PRIMARY_PATH, get(held).put(offered))
}

/// Body keys are folded to lower case by `body::decode`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PromoteBody {
    datacenter: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OfferBody {
    datacenter: String,
    epoch: u64,
}

/// A datacenter name as Consul accepts it (letters, digits, `-` and `_`), else the 400
/// naming the field.
fn check_dc(dc: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&dc.len())
        && dc
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Datacenter: {dc:?} is not a valid datacenter name"
        )))
    }
}

fn acl_on(st: &ApiState) -> Result<(), ApiError> {
    if st.acl.settings().enabled {
        Ok(())
    } else {
        Err(ApiError::unauthorized(crate::acl::ACL_DISABLED))
    }
}

async fn promote(
    State(st): State<ApiState>,
    authz: Authz,
    body: Bytes,
) -> Result<Response, ApiError> {
    acl_on(&st)?;
    authz.check(Resource::Acl, "", Need::Write)?;
    let req: PromoteBody = super::body::decode(&body, false)?;
    let dc = req.datacenter;
    check_dc(&dc)?;
    let srv = server(&st)?;
    let me = st.agent.datacenter.clone();
    let federation = st.router.federation();
    let others: Vec<String> = match federation {
        Some(f) => f
            .view()
            .await
            .unwrap_or_default()
            .datacenters
            .into_iter()
            .map(|d| d.name)
            .filter(|n| *n != me)
            .collect(),
        None => Vec::new(),
    };
    if dc != me && !others.contains(&dc) {
        return Err(ApiError::bad_request(format!(
            "Datacenter: unknown datacenter {dc:?} (known: {})",
            std::iter::once(me.clone())
                .chain(others.iter().cloned())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let cell = &st.acl.settings().primary;
    let record = match acl_primary::promote(srv, cell, &dc).await? {
        Some(r) => r,
        // Already the primary by record: announce it again (reaches who missed it).
        None => cell.get(),
    };
    let acks = match federation {
        Some(f) => acl_primary::announce(f, &record, &authz.secret, &others).await,
        None => Vec::new(),
    };
    let mut acknowledged = vec![me];
    let mut not_reached = BTreeMap::new();
    let mut unknown = BTreeMap::new();
    let mut superseded = BTreeMap::new();
    for (dc, ack) in acks {
        match ack {
            Ack::Acknowledged => acknowledged.push(dc),
            Ack::Failed(why) => {
                not_reached.insert(dc, why);
            }
            Ack::Unknown(why) => {
                unknown.insert(dc, why);
            }
            Ack::Superseded(held) => {
                superseded.insert(dc, held);
            }
        }
    }
    Ok(json_body(&json!({
        "Datacenter": record.datacenter,
        "Epoch": record.epoch,
        "Acknowledged": acknowledged,
        "NotReached": not_reached,
        "Unknown": unknown,
        "Superseded": superseded,
    })))
}

/// `GET`: the record in effect here.
async fn held(State(st): State<ApiState>) -> Result<Response, ApiError> {
    acl_on(&st)?;
    Ok(json_body(&st.acl.settings().primary.get()))
}

/// `PUT`: an announcement from another datacenter (or an operator).
async fn offered(
    State(st): State<ApiState>,
    authz: Authz,
    body: Bytes,
) -> Result<Response, ApiError> {
    acl_on(&st)?;
    authz.check(Resource::Acl, "", Need::Write)?;
    let req: OfferBody = super::body::decode(&body, false)?;
    check_dc(&req.datacenter)?;
    if req.epoch == 0 {
        return Err(ApiError::bad_request("Epoch: must be at least 1"));
    }
    let offer = AclPrimary {
        datacenter: req.datacenter,
        epoch: req.epoch,
    };
    let srv = server(&st)?;
    let (_, applied) = srv
        .apply(Command::Acl(AclWrite::SetPrimary(offer.clone())))
        .await?;
    let held = match applied {
        Applied::Bool(true) => offer,
        // Kept another: the one this server's state shows (at least as new as the one
        // that beat the offer, once applied here).
        _ => srv
            .raft()
            .state()
            .acl_primary()
            .cloned()
            .unwrap_or_else(|| st.acl.settings().primary.get()),
    };
    Ok(json_body(&held))
}
