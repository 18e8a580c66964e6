//! `/v1/query`: prepared queries (reference/consul.md §1.10, §2.9). Create, list, read,
//! update and delete go through raft; execute and explain resolve the query (ID, name or
//! template prefix) on the state snapshot with the pure `catalog::prepared_query` module,
//! the same code the DNS server uses. ACL rules: [`super::acl_query`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_query::{check_write, filter_nodes, instance_readable, readable, shows_token};
use super::error::ApiError;
use super::params::Params;
use super::query_body::{ExecuteOut, QueryBody, QueryOut};
use super::read::{blocking, json_body};
use meridian_acl::{Need, Resource};

use crate::catalog::prepared_query::REDACTED_TOKEN;
use crate::catalog::{
    Command, ExecuteRequest, PreparedQuery, QueryError, State as CatalogState, execute_query,
};
use crate::cluster::federation::{CROSS_DC_TIMEOUT, REMOTE_QUERY_PATH};
use crate::rpc::{Consistency, RpcError};
use crate::server::ServerHandle;

/// Header a client agent adds when it forwards a request, naming itself, so that `_agent`
/// means the agent the client talked to and not the server answering.
pub(super) const AGENT_NODE_HEADER: &str = "x-meridian-agent-node";

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/query", get(list_all).post(create))
        .route("/v1/query/{id}", get(read_one).put(update).delete(delete))
        .route("/v1/query/{id}/execute", get(execute))
        .route("/v1/query/{id}/explain", get(explain))
        .route(REMOTE_QUERY_PATH, get(execute_given))
}

fn not_found() -> ApiError {
    ApiError::not_found(QueryError::NotFound.to_string())
}

/// Validation failures are the client's fault (400), an unknown ID is a 404.
fn query_error(e: QueryError) -> ApiError {
    if e.is_not_found() {
        not_found()
    } else {
        ApiError::bad_request(e.to_string())
    }
}

/// Validates on the current state, then proposes `cmd`. Apply validates again; what it
/// rejects (a racing write took the name) is reported the same way.
async fn propose(
    server: &ServerHandle,
    q: &PreparedQuery,
    update: bool,
    cmd: Command,
) -> Result<(), ApiError> {
    let view = server.read(Consistency::Default).await?;
    crate::catalog::prepared_query::validate(&view.state, q, update).map_err(query_error)?;
    apply(server, cmd).await
}

async fn apply(server: &ServerHandle, cmd: Command) -> Result<(), ApiError> {
    match server.apply(cmd).await {
        Ok(_) => Ok(()),
        Err(RpcError::Rejected(msg)) if msg == QueryError::NotFound.to_string() => Err(not_found()),
        Err(RpcError::Rejected(msg)) => Err(ApiError::bad_request(msg)),
        Err(e) => Err(e.into()),
    }
}

async fn create(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b = QueryBody::decode(&body)?;
    if !b.id.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid prepared query: bad ID: must be empty when creating a new prepared query",
        ));
    }
    let server = st.router.server(p.dc())?;
    let q = b.into_query(crate::server::fresh_uuid().to_string())?;
    check_write(&authz, &q)?;
    let id = q.id.clone();
    propose(
        server,
        &q,
        false,
        Command::PreparedQueryCreate(Box::new(q.clone())),
    )
    .await?;
    Ok(json_body(&serde_json::json!({ "ID": id })))
}

async fn update(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let server = st.router.server(p.dc())?;
    let mut q = QueryBody::decode(&body)?.into_query(id)?;
    // Write on the stored query's name and on the new one.
    let view = server.read(Consistency::Default).await?;
    if let Some(stored) = view.state.prepared_query(&q.id) {
        check_write(&authz, stored)?;
    }
    check_write(&authz, &q)?;
    if q.token == REDACTED_TOKEN {
        // A GET → edit → PUT round trip sends the redacted token back: keep the stored one.
        let stored = view.state.prepared_query(&q.id).ok_or_else(not_found)?;
        q.token = stored.token.clone();
    }
    propose(
        server,
        &q,
        true,
        Command::PreparedQueryUpdate(Box::new(q.clone())),
    )
    .await?;
    Ok(().into_response())
}

async fn delete(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let server = st.router.server(p.dc())?;
    let view = server.read(Consistency::Default).await?;
    if let Some(stored) = view.state.prepared_query(&id) {
        check_write(&authz, stored)?;
    }
    apply(server, Command::PreparedQueryDelete { id }).await?;
    Ok(().into_response())
}

async fn list_all(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
) -> Result<Response, ApiError> {
    let opts = p.read_opts()?;
    let server = st.router.server(opts.dc.as_deref())?;
    let a = &authz.authorizer;
    let show = token_shown(&st, &authz);
    let (meta, (rows, pruned)) = blocking(server, &opts, |s| {
        let all: Vec<&PreparedQuery> = s.prepared_queries().collect();
        let rows: Vec<QueryOut> = all
            .iter()
            .filter(|q| readable(a, q))
            .map(|q| QueryOut::shown(q, show))
            .collect();
        let pruned = rows.len() != all.len();
        (s.table_indexes().prepared_queries, (rows, pruned))
    })
    .await?;
    Ok(super::acl_filter_kv::mark_filtered(
        &authz,
        pruned,
        meta.json(&rows),
    ))
}

/// `GET /v1/query/:id`: by ID only (as in Consul), as a one-element list.
async fn read_one(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let opts = p.read_opts()?;
    let server = st.router.server(opts.dc.as_deref())?;
    let a = &authz.authorizer;
    let show = token_shown(&st, &authz);
    let (meta, row) = blocking(server, &opts, |s| {
        let row = s
            .prepared_query(&id)
            .map(|q| (readable(a, q), q.name.clone(), QueryOut::shown(q, show)));
        (s.table_indexes().prepared_queries, row)
    })
    .await?;
    match row {
        // A single read of a query the token may not see is denied, not hidden.
        Some((false, name, _)) => {
            Err(crate::acl::AclError::Denied(a.denied(Resource::Query, &name, Need::Read)).into())
        }
        Some((true, _, r)) => Ok(meta.json(&[r])),
        None => Err(not_found()),
    }
}

/// Whether a query's captured token is shown: only with ACLs on and acl:write (with ACLs
/// off it stays `<hidden>`, as before enforcement).
fn token_shown(st: &ApiState, authz: &Authz) -> bool {
    st.acl.settings().enabled && shows_token(&authz.authorizer)
}

/// The index of an execute or explain answer: the queries table and the service read.
fn answer_index(s: &CatalogState, q: &PreparedQuery) -> u64 {
    s.table_indexes()
        .prepared_queries
        .max(s.service_index(&q.service.service))
}

async fn execute(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id_or_name): Path<String>,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let mut opts = p.read_opts()?;
    // Consul's execute never blocks.
    opts.index = 0;
    let limit = usize::try_from(p.u64("limit")?.unwrap_or(0)).unwrap_or(usize::MAX);
    let agent_node = headers
        .get(AGENT_NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or(&st.agent.node_name)
        .to_string();
    let connect = p.flag("connect");
    let near = p.non_empty("near").map(str::to_string);
    let server = st.router.server(opts.dc.as_deref())?;
    let datacenter = st.router.local_dc().to_string();
    let seed: u64 = rand::random();
    let (meta, out) = blocking(server, &opts, |s| {
        let Some(mut q) = s.resolve_query(&id_or_name) else {
            return (s.table_indexes().prepared_queries, None);
        };
        q.service.connect |= connect;
        let req = ExecuteRequest {
            datacenter: &datacenter,
            agent_node: &agent_node,
            near: near.as_deref(),
            limit,
            shuffle_seed: seed,
        };
        let result = execute_query(s, &q, &req);
        (answer_index(s, &q), Some((q, result)))
    })
    .await?;
    let Some((q, mut result)) = out else {
        return Err(not_found());
    };
    // Results are filtered with the query's captured token if it has one, else the caller's;
    // so are the failover datacenters' answers (there and here).
    let (filter_with, filter_token) = if q.token.is_empty() {
        (
            std::sync::Arc::clone(&authz.authorizer),
            authz.secret.as_str(),
        )
    } else {
        (
            st.acl.resolve(&st.router, &q.token).await?,
            q.token.as_str(),
        )
    };
    filter_nodes(&filter_with, &mut result.nodes);
    // No instance here (or SkipLocal): the query's failover datacenters, in Consul's order.
    if (result.nodes.is_empty() || q.service.failover.skips_local())
        && q.service.failover.is_set()
        && let Some(federation) = st.router.federation()
    {
        let by_rtt = st.router.datacenters().await;
        let dcs = q.service.failover.datacenters_to_try(&datacenter, &by_rtt);
        match federation
            .execute_query_elsewhere(
                &q,
                &dcs,
                limit,
                CROSS_DC_TIMEOUT,
                filter_token,
                |node, service| instance_readable(&filter_with, node, service),
            )
            .await
        {
            Ok(answer) => {
                let mut body = answer.body;
                body["Failovers"] = answer.tried.into();
                return Ok(meta.json(&body));
            }
            Err(tried) => {
                result.failovers = tried;
                if q.service.failover.skips_local() {
                    result.nodes.clear();
                }
            }
        }
    }
    Ok(meta.json(&ExecuteOut::from(result)))
}

/// `GET /v1/internal/query/execute` with a query definition as the body: runs a query this
/// datacenter does not store (the failover hop of another datacenter's prepared query).
/// The instances are filtered with the request's token (the asking datacenter sends the
/// query's captured token, else its caller's), so the path is no way around node and
/// service rules.
async fn execute_given(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let q: PreparedQuery = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid prepared query definition: {e}")))?;
    let mut opts = p.read_opts()?;
    opts.index = 0;
    let limit = usize::try_from(p.u64("limit")?.unwrap_or(0)).unwrap_or(usize::MAX);
    let server = st.router.server(None)?;
    let datacenter = st.router.local_dc().to_string();
    let seed: u64 = rand::random();
    let (meta, result) = blocking(server, &opts, |s| {
        let req = ExecuteRequest {
            datacenter: &datacenter,
            agent_node: &st.agent.node_name,
            near: None,
            limit,
            shuffle_seed: seed,
        };
        (answer_index(s, &q), execute_query(s, &q, &req))
    })
    .await?;
    let mut result = result;
    filter_nodes(&authz.authorizer, &mut result.nodes);
    Ok(meta.json(&ExecuteOut::from(result)))
}

async fn explain(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id_or_name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let mut opts = p.read_opts()?;
    opts.index = 0;
    let server = st.router.server(opts.dc.as_deref())?;
    let (meta, q) = blocking(server, &opts, |s| {
        let q = s.resolve_query(&id_or_name);
        let index = q
            .as_ref()
            .map_or(s.table_indexes().prepared_queries, |q| answer_index(s, q));
        (index, q)
    })
    .await?;
    match q {
        Some(q) => {
            authz.check(Resource::Query, &q.name, Need::Read)?;
            let shown = QueryOut::shown(&q, token_shown(&st, &authz));
            Ok(meta.json(&serde_json::json!({ "Query": shown })))
        }
        None => Err(not_found()),
    }
}
