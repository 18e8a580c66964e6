//! Wiring: binds the two RPC listeners and the two gossip pools, joins them, serves the
//! relay on both ports until stopped, and leaves both pools on the way out.
//!
//! ```text
//!   servers ──gRPC──▶ rpc_lan  ─┐                      ┌─▶ LAN pool (role=gateway)
//!                               ├─ Relay (one Channels) ┤
//!   gateways ─gRPC──▶ rpc_wan  ─┘                      └─▶ WAN pool  (<node>.<dc>)
//!                       copies: one stream per remote datacenter's catalog ─▶ Relay
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use meridian_gossip::join::{self, RetryJoin};
use meridian_gossip::keyring::{local_keyring_path, remote_keyring_path};
use meridian_gossip::{BoundGossip, GossipConfig, GossipHandle, Role, Tags};
use meridian_rpc::gateway::server_name;
use meridian_rpc::{Channels, ForwardEndpoint, RequirePeer};
use meridian_tls::TlsContext;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;
use tracing::{Instrument, info, info_span, warn};

use crate::copy_store::CopyStore;
use crate::error::GatewayError;
use crate::options::Options;
use crate::relay::{Relay, RelayStats, Side};

/// A running gateway.
pub struct Gateway {
    /// The LAN pool.
    pub lan: GossipHandle,
    /// The WAN pool.
    pub wan: GossipHandle,
    /// Where servers call it.
    pub rpc_lan: SocketAddr,
    /// Where other gateways call it.
    pub rpc_wan: SocketAddr,
    /// What it relayed.
    pub stats: Arc<RelayStats>,
    /// Its certificates, when TLS is on (reloaded on SIGHUP).
    pub tls: Option<TlsContext>,
    relay: Relay,
    tracker: TaskTracker,
    token: CancellationToken,
}

impl Gateway {
    /// The federation as this gateway sees it.
    pub fn federation(&self) -> meridian_rpc::gateway::FederationView {
        self.relay.federation()
    }

    /// Leaves both pools gracefully and stops serving.
    pub async fn shutdown(self) {
        // Both at once: each leave waits for its intent to propagate.
        let (lan, wan) = tokio::join!(self.lan.leave(), self.wan.leave());
        for (pool, left) in [("LAN", lan), ("WAN", wan)] {
            if let Err(e) = left {
                warn!(pool, cause = %e, "leaving the pool failed");
            }
        }
        self.token.cancel();
        self.lan.shutdown().await;
        self.wan.shutdown().await;
        self.tracker.close();
        self.tracker.wait().await;
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { what, addr, source })
}

/// Starts a gateway from `opts`; it runs until [`Gateway::shutdown`] or `token`.
pub async fn start(opts: &Options, token: CancellationToken) -> Result<Gateway, GatewayError> {
    let addrs = opts.addresses()?;
    let node = opts.node_name();
    // Certificates are loaded before anything listens: a bad file stops the start.
    let tls = opts.tls().map(TlsContext::new).transpose()?;
    if let Some(t) = &tls {
        let held = t.fingerprints();
        info!(
            cert_sha256 = held.cert.as_deref().unwrap_or("-"),
            ca_sha256 = %held.cas.join(","),
            "TLS configured"
        );
    }
    let dc = opts.datacenter.clone();
    std::fs::create_dir_all(&opts.data_dir).map_err(|source| GatewayError::DataDir {
        path: opts.data_dir.clone(),
        source,
    })?;
    let lan_listener = bind("LAN RPC", addrs.rpc_lan).await?;
    let wan_listener = bind("WAN RPC", addrs.rpc_wan).await?;
    let local = |l: &TcpListener, what, addr| {
        l.local_addr()
            .map_err(|source| GatewayError::Bind { what, addr, source })
    };
    let rpc_lan = local(&lan_listener, "LAN RPC", addrs.rpc_lan)?;
    let rpc_wan = local(&wan_listener, "WAN RPC", addrs.rpc_wan)?;

    let lan_tags = Tags::new(Role::Gateway, dc.clone())
        .with_rpc_addr(SocketAddr::new(addrs.advertise_lan, rpc_lan.port()))
        .with_build(env!("CARGO_PKG_VERSION"));
    let lan = pool(
        "LAN",
        GossipConfig::lan(node.clone(), addrs.serf_lan),
        addrs.advertise_lan,
        lan_tags,
        opts.encrypt.as_deref(),
        "-encrypt",
        &local_keyring_path(&opts.data_dir),
    )
    .await?;
    let wan_tags = Tags::new(Role::Gateway, dc.clone())
        .with_rpc_addr(SocketAddr::new(addrs.advertise_wan, rpc_wan.port()))
        .with_build(env!("CARGO_PKG_VERSION"));
    let wan = pool(
        "WAN",
        GossipConfig::wan(format!("{node}.{dc}"), addrs.serf_wan),
        addrs.advertise_wan,
        wan_tags,
        opts.encrypt_wan.as_deref(),
        "-encrypt-wan",
        &remote_keyring_path(&opts.data_dir),
    )
    .await?;
    let lan = lan.spawn(token.clone());
    let wan = wan.spawn(token.clone());

    let tracker = TaskTracker::new();
    for (pool, handle, addrs_, port) in [
        ("LAN", &lan, &opts.retry_join, 8301),
        ("WAN", &wan, &opts.retry_join_wan, 8302),
    ] {
        let how = RetryJoin {
            default_port: port,
            interval: opts.retry_interval,
            max: 0,
        };
        let (handle, addrs_, token) = (handle.clone(), addrs_.clone(), token.clone());
        tracker.spawn(
            async move { join::retry_join(&handle, &addrs_, how, &token).await }
                .instrument(info_span!("join", pool)),
        );
    }

    let stats = Arc::new(RelayStats::default());
    // Dialing servers by default; gateways are dialled by name (`gateway.<dc>.<domain>`).
    let channels = match &tls {
        Some(t) => Channels::with_tls(t.clone(), server_name(&dc, &opts.domain)),
        None => Channels::default(),
    };
    let copies = Arc::new(CopyStore::default());
    let relay = Relay::new(
        dc.clone(),
        opts.domain.clone(),
        lan.clone(),
        wan.clone(),
        Arc::new(channels),
        stats.clone(),
        copies.clone(),
    );
    tracker.spawn(
        crate::copies::run(relay.clone(), copies, token.clone())
            .instrument(info_span!("catalog_copies")),
    );
    // With verify_server_hostname, the WAN port takes deliveries only from other gateways'
    // certificates (`gateway.<dc>.<domain>`), never from a client's or server's.
    let names_checked = tls
        .as_ref()
        .is_some_and(|t| t.settings().verify_server_hostname);
    for (side, listener) in [(Side::Lan, lan_listener), (Side::Wan, wan_listener)] {
        let peers = match side {
            Side::Wan if names_checked => RequirePeer::gateway(&opts.domain),
            _ => RequirePeer::anyone(),
        };
        let svc =
            InterceptedService::new(ForwardEndpoint::server(dc.clone(), relay.on(side)), peers);
        let token = token.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            let router = tonic::transport::Server::builder().add_service(svc);
            let served = meridian_rpc::serve(router, listener, tls, token).await;
            if let Err(e) = served {
                warn!(?side, cause = %e, "RPC listener stopped");
            }
        });
    }
    info!(
        datacenter = %dc,
        node = %node,
        rpc_lan = %rpc_lan,
        rpc_wan = %rpc_wan,
        serf_lan = %lan.advertise_addr(),
        serf_wan = %wan.advertise_addr(),
        "gateway running"
    );
    Ok(Gateway {
        lan,
        wan,
        rpc_lan,
        rpc_wan,
        stats,
        tls,
        relay,
        tracker,
        token,
    })
}

/// Binds one pool with its keyring (persisted under the data dir, as Consul's).
async fn pool(
    name: &'static str,
    mut gc: GossipConfig,
    advertise: std::net::IpAddr,
    tags: Tags,
    encrypt: Option<&str>,
    option: &str,
    keyring_path: &std::path::Path,
) -> Result<BoundGossip, GatewayError> {
    if advertise != gc.bind_addr.ip() {
        gc.advertise_addr = Some(SocketAddr::new(advertise, gc.bind_addr.port()));
    }
    gc.tags = tags;
    let keyring = join::load_or_create_keyring(encrypt, keyring_path, option)
        .map_err(|source| GatewayError::Keyring { pool: name, source })?;
    if !keyring.is_empty() {
        gc.keyring_file = Some(keyring_path.to_path_buf());
    }
    BoundGossip::bind(gc, keyring)
        .await
        .map_err(|source| GatewayError::Gossip { pool: name, source })
}
