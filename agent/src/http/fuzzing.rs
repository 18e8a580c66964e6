//! The request-body step of the main write endpoints, by name, for the fuzz targets
//! (`fuzz/fuzz_targets/http_bodies.rs`, reached through [`crate::fuzzing`]). Each arm runs
//! what the endpoint's handler runs between reading the body and touching state: the
//! case-folding JSON decoder and the conversion to the typed request. Nothing here reads
//! state, applies through raft or answers HTTP.

use std::time::Duration;

use super::agent::{local_check, service_with_checks};
use super::body::decode;
use super::catalog::DeregisterBody;
use super::dto::{CheckBody, RegisterBody};
use super::error::ApiError;
use super::query_body::QueryBody;

/// An endpoint whose body the fuzz target feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `PUT /v1/catalog/register`.
    CatalogRegister,
    /// `PUT /v1/catalog/deregister`.
    CatalogDeregister,
    /// `PUT /v1/agent/service/register`.
    AgentServiceRegister,
    /// `PUT /v1/agent/check/register`.
    AgentCheckRegister,
    /// `PUT /v1/txn`.
    Txn,
    /// `PUT /v1/session/create`.
    SessionCreate,
    /// `POST /v1/query`.
    QueryCreate,
    /// `PUT /v1/config`.
    ConfigEntry,
    /// `PUT /v1/coordinate/update`.
    CoordinateUpdate,
}

impl Endpoint {
    /// Every endpoint, in a fixed order (the fuzz target picks one by index).
    pub const ALL: [Endpoint; 9] = [
        Endpoint::CatalogRegister,
        Endpoint::CatalogDeregister,
        Endpoint::AgentServiceRegister,
        Endpoint::AgentCheckRegister,
        Endpoint::Txn,
        Endpoint::SessionCreate,
        Endpoint::QueryCreate,
        Endpoint::ConfigEntry,
        Endpoint::CoordinateUpdate,
    ];
}

/// Decodes `body` as `endpoint`'s handler does (node `fuzz-node`, datacenter `dc1`,
/// script checks refused, `session_ttl_min` 10 s). `Ok` means the handler would go on to
/// apply the request.
pub fn decode_body(endpoint: Endpoint, body: &[u8]) -> Result<(), ApiError> {
    const NODE: &str = "fuzz-node";
    match endpoint {
        Endpoint::CatalogRegister => {
            let b: RegisterBody = decode(body, false)?;
            b.into_op("dc1").map(drop)
        }
        Endpoint::CatalogDeregister => decode::<DeregisterBody>(body, false).map(drop),
        Endpoint::AgentServiceRegister => service_with_checks(body, NODE, false).map(drop),
        Endpoint::AgentCheckRegister => {
            // `check_register` minus its lookup of the check's service in local state.
            let b: CheckBody = decode(body, false)?;
            if b.name.is_empty() {
                return Err(ApiError::bad_request("Missing check name"));
            }
            let check = b.to_check(NODE, "")?;
            local_check(&b, check, false).map(drop)
        }
        Endpoint::Txn => super::txn::decode_ops(body).map(drop),
        Endpoint::SessionCreate => {
            super::session::new_session(body, NODE, Duration::from_secs(10)).map(drop)
        }
        Endpoint::QueryCreate => {
            let b = QueryBody::decode(body)?;
            if !b.id.is_empty() {
                return Err(ApiError::bad_request("Invalid prepared query: bad ID"));
            }
            b.into_query("00000000-0000-4000-8000-000000000000".into())
                .map(drop)
        }
        Endpoint::ConfigEntry => super::config_entry::decode_entry(body).map(drop),
        Endpoint::CoordinateUpdate => super::coordinate::decode_update(body).map(drop),
    }
}
