//! The HTTP API on 8500 (and HTTPS on `ports.https`, `https.rs`), in Consul's shapes
//! (reference/consul.md §1–2, §7).
//!
//! ```text
//!   axum Router ── handlers (one file per endpoint family)
//!        │             │ parse: params.rs (query), body.rs (case-folded JSON)
//!        │             ▼
//!        │        rpc::Router::server(dc) ──▶ ServerHandle::{apply, read}
//!        │             │
//!        └── read.rs: blocking queries + X-Consul-* headers; error.rs: ApiError → response
//! ```
//!
//! Handlers never hold a lock across an await and never touch SQLite: reads use the
//! applied state snapshot, writes go through raft.

mod acl;
mod acl_authz;
mod acl_catalog_write;
mod acl_config;
mod acl_dto;
mod acl_filter_catalog;
mod acl_filter_kv;
mod acl_policy;
mod acl_primary;
mod acl_query;
mod acl_replicate;
mod acl_route;
mod acl_templated;
mod acl_token;
mod acl_write;
mod agent;
mod agent_acl;
mod agent_host;
mod agent_self;
mod agent_services;
mod agent_token;
mod autopilot;
mod body;
mod catalog;
mod config_entry;
mod connect;
mod coordinate;
mod copy_read;
mod cross_dc;
mod dto;
mod error;
mod event;
mod federation;
mod filter;
mod forward;
pub(crate) mod fuzzing;
mod https;
mod keyring;
mod kv;
mod members;
mod metrics;
mod monitor;
mod multi_dc;
mod params;
mod passthrough;
mod query;
mod query_body;
mod read;
mod session;
mod shared;
mod snapshot;
mod status;
mod txn;
mod ui;
mod usage;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use agent::service_definition;
/// The header on an answer read from the gateways' copy of an unreachable datacenter.
pub(crate) use copy_read::ANSWERED_FROM_COPY as COPY_HEADER;
pub use error::ApiError;

use crate::rpc::Router as RpcRouter;

/// The Consul version whose HTTP API Meridian implements, reported as `Config.Version` in
/// `/v1/agent/self` (clients gate features on it). Meridian's own version is reported beside
/// it. 1.21 is the newest API surface the endpoints follow (e.g. service `Locality`).
pub const CONSUL_API_VERSION: &str = "1.21.5";

/// Request-size limits (Consul's `limits` stanza).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum KV value size (`kv_max_value_size`, 512 KiB).
    pub kv_max_value_size: u64,
    /// Maximum txn body (`txn_max_req_len`, 512 KiB).
    pub txn_max_req_len: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            kv_max_value_size: 512 * 1024,
            txn_max_req_len: 512 * 1024,
        }
    }
}

/// What the agent says about itself (`/v1/agent/self`, `/v1/agent/members`).
#[derive(Debug, Clone)]
pub struct AgentInfo {
    /// Node name.
    pub node_name: String,
    /// Node ID.
    pub node_id: String,
    /// Datacenter.
    pub datacenter: String,
    /// Server mode.
    pub server: bool,
    /// Advertised address.
    pub advertise_addr: String,
    /// Server RPC port.
    pub rpc_port: u16,
    /// Version string.
    pub version: String,
    /// Domain (`consul.`).
    pub domain: String,
}

/// Everything handlers need.
pub struct ApiContext {
    /// RPC router (local server, other DCs).
    pub router: RpcRouter,
    /// Size limits.
    pub limits: Limits,
    /// Minimum session TTL (`session_ttl_min`).
    pub session_ttl_min: Duration,
    /// This agent's node name (default node of sessions and agent registrations).
    pub node_name: String,
    /// This agent.
    pub agent: AgentInfo,
    /// The services and checks this agent owns.
    pub local: Arc<crate::local::LocalAgent>,
    /// Script checks may be registered over the API (`enable_script_checks`).
    pub enable_script_checks: bool,
    /// Config reloads (`/v1/agent/reload`).
    pub reload: Arc<crate::local::reload::Reload>,
    /// The LAN gossip pool.
    pub gossip: crate::gossip::GossipHandle,
    /// Received user events.
    pub events: Arc<crate::agent::events::EventLog>,
    /// The DNS server's counters (`None` when DNS is off), for `/v1/agent/metrics`.
    pub dns_stats: Option<Arc<crate::dns::DnsStats>>,
    /// The agent's live log lines (`/v1/agent/monitor`).
    pub logs: crate::logs::LogStream,
    /// Cancelling it stops the agent (`/v1/agent/leave`).
    pub shutdown: CancellationToken,
    /// KV replication from another datacenter (servers with a `replication` block).
    pub replicator: Option<Arc<crate::server::replication::Replicator>>,
    /// ACL replication from the primary datacenter (servers of a secondary with a
    /// replication token).
    pub acl_replicator: Option<Arc<crate::server::acl_replication::AclReplicator>>,
    /// The web UI's content path (`/ui/`) when the UI is on, `None` when it is off.
    pub ui_path: Option<String>,
    /// The server RPC TLS context, when TLS is on (`Stats.tls` of `/v1/agent/self`).
    pub tls: Option<meridian_tls::TlsContext>,
    /// ACL settings and the token resolver (`crate::acl`).
    pub acl: Arc<crate::acl::Resolver>,
    /// `telemetry { prometheus_retention_time disable_hostname }`.
    pub telemetry: meridian_config::TelemetryConfig,
}

/// Cheap-clone state of the HTTP handlers.
#[derive(Clone)]
pub struct ApiState(Arc<ApiContext>);

impl ApiState {
    /// Wraps the context.
    pub fn new(ctx: ApiContext) -> Self {
        Self(Arc::new(ctx))
    }
}

impl Deref for ApiState {
    type Target = ApiContext;
    fn deref(&self) -> &ApiContext {
        &self.0
    }
}

/// The full API router.
pub fn router(state: ApiState) -> axum::Router {
    axum::Router::new()
        .merge(ui::routes(state.ui_path.as_deref()))
        .merge(kv::routes())
        .merge(agent::routes())
        .merge(agent_services::routes())
        .merge(agent_self::routes())
        .merge(agent_host::routes())
        .merge(metrics::routes())
        .merge(monitor::routes())
        .merge(acl::routes(state.acl.settings().enabled, true))
        .merge(members::routes())
        .merge(event::routes())
        .merge(session::routes())
        .merge(txn::routes())
        .merge(catalog::routes())
        .merge(connect::routes())
        .merge(config_entry::routes())
        .merge(usage::routes())
        .merge(status::routes())
        .merge(snapshot::routes())
        .merge(keyring::routes())
        .merge(coordinate::routes())
        .merge(autopilot::routes())
        .merge(query::routes())
        .merge(federation::routes())
        .merge(acl_primary::routes())
        .merge(copy_read::routes())
        .route_layer(axum::middleware::from_fn(metrics::measure))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            acl_route::route,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cross_dc::route,
        ))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            acl_authz::default_policy_header,
        ))
        // Size limits are checked by the handlers so the error text is Consul's; this cap
        // only bounds memory for absurd bodies.
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            shared::SharedReads::default(),
            shared::share,
        ))
        .with_state(state)
}

/// A client agent's router: the pool, user events, keyring and `/v1/agent/self` are answered
/// here; everything else goes to a server ([`forward`]).
pub fn client_router(state: ApiState) -> axum::Router {
    axum::Router::new()
        .merge(ui::routes(state.ui_path.as_deref()))
        .merge(members::routes())
        .merge(event::routes())
        .merge(keyring::routes())
        .merge(agent::routes())
        .merge(agent_services::routes())
        .merge(agent_self::routes())
        .merge(agent_host::routes())
        .merge(metrics::routes())
        .merge(monitor::routes())
        .merge(acl::routes(state.acl.settings().enabled, false))
        .route_layer(axum::middleware::from_fn(metrics::measure))
        .fallback(forward::to_server)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cross_dc::route,
        ))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            acl_authz::default_policy_header,
        ))
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            shared::SharedReads::default(),
            shared::share,
        ))
        .with_state(state)
}

/// The API's bound sockets: plain HTTP, and HTTPS with its TLS context.
#[derive(Debug, Default)]
pub struct ApiSockets {
    /// HTTP listeners, one per address; the first is the one reported.
    pub http: Vec<TcpListener>,
    /// HTTPS listeners (empty when `ports.https` is off).
    pub https: Vec<TcpListener>,
    /// The HTTPS certificates (`Some` exactly when `https` is not empty).
    pub https_tls: Option<meridian_tls::TlsContext>,
}

/// Serves `router` on every socket until `token` is cancelled, then drains connections;
/// the first listener that fails ends them all.
pub async fn serve(
    sockets: ApiSockets,
    router: axum::Router,
    token: CancellationToken,
) -> std::io::Result<()> {
    // Every handler becomes a route once, here. Served as a plain `Router`, axum does this
    // again for each connection (`Router::with_state(())` per accept), and the rebuilt
    // route table (~37 KiB with this API's routes) lives as long as the connection: most
    // of an idle keep-alive connection's or parked blocking query's memory. A
    // `into_make_service` clone per connection is an `Arc` bump.
    let router: axum::Router = router.with_state(());
    let mut servers = tokio::task::JoinSet::new();
    for listener in sockets.http {
        let server = axum::serve(listener, router.clone().into_make_service())
            .with_graceful_shutdown(token.clone().cancelled_owned());
        servers.spawn(async move { server.await });
    }
    if let Some(tls) = sockets.https_tls {
        for listener in sockets.https {
            let shutdown = token.clone().cancelled_owned();
            servers.spawn(https::serve(
                listener,
                tls.clone(),
                router.clone(),
                shutdown,
            ));
        }
    }
    while let Some(done) = servers.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
    Ok(())
}
