//! Agent lifecycle: bind every socket and open storage ([`BoundAgent::bind`]), then spawn
//! the subsystems ([`BoundAgent::spawn`]) and wait for shutdown. Tests use the same two
//! steps with port 0 and learn the addresses before anything runs.
//!
//! Shutdown order: stop accepting HTTP → leader duties stop → gossip (a graceful leave first
//! when `leave_on_terminate`, or per signal through [`Stopper`]) → raft shuts down (flushing
//! storage) → tasks are awaited, bounded by a grace period.

mod acl_wiring;
mod coordinates;
mod error;
pub mod events;
pub mod handlers;
mod identity;
pub mod lan;
mod listen;
mod local_sync;
mod pid_file;
mod server_role;
pub mod user_event;
mod warnings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meridian_config::Config;
use meridian_tls::TlsContext;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

use self::acl_wiring::{primary_on_reload, spawn_acl_primary};
pub use self::error::AgentError;
use self::server_role::{ServerParts, raft_config, start_server};
pub use self::warnings::log_config_warnings;
use crate::acl::AclSettings;
use crate::cluster::raft_rpc::{Channels, RaftService};
use crate::cluster::{Federation, Forwarder, GrpcTransport, RemoteServers, RpcListener};
use crate::gossip::{BoundGossip, GossipHandle};
use crate::http::{AgentInfo, ApiContext, ApiState, Limits};
use crate::local::LocalState;
use crate::local::reload::{ConfigSource, Reload};
use crate::raft::{RaftNode, ServerNode};
use crate::rpc::Router;
use crate::server::{SelfInfo, ServerHandle};

/// How long shutdown may take before tasks are abandoned.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// An agent whose sockets are bound and storage is open, not yet serving.
pub struct BoundAgent {
    cfg: Config,
    /// HTTP and HTTPS listeners; the first HTTP one is the one reported.
    api: crate::http::ApiSockets,
    /// DNS sockets (`None` when `ports.dns` is disabled).
    dns: Option<crate::dns::BoundDns>,
    /// The server role's socket and raft; `None` for a client agent.
    server: Option<ServerSide>,
    /// gRPC channels to servers (raft and forwarding share them).
    channels: Arc<Channels>,
    /// Server RPC TLS (listener, channels and reloads share it); `None` without TLS keys.
    tls: Option<TlsContext>,
    gossip: BoundGossip,
    me: SelfInfo,
    /// Parsed `event_handlers`.
    handlers: Vec<meridian_config::EventHandler>,
    /// Where the gossip snapshot lives, and what the previous run left there.
    snapshot_path: PathBuf,
    previous: crate::gossip::Snapshot,
    /// The services and checks this agent owns (loaded from `data_dir`).
    local: Arc<LocalState>,
    /// Re-reads the configuration for reloads (`None`: nothing to re-read).
    config_source: Option<ConfigSource>,
    /// Where `/v1/agent/monitor` reads log lines (the binary installs its layer).
    logs: crate::logs::LogStream,
    /// Temp state of a `-dev` agent, removed when the agent stops.
    _dev_dir: Option<tempfile::TempDir>,
}

/// What only a server agent has.
struct ServerSide {
    rpc: RpcListener,
    raft: RaftNode,
}

/// A running agent.
pub struct AgentHandle {
    tracker: TaskTracker,
    /// The shutdown task alone: it waits for `tracker` before it stops raft.
    stopping: TaskTracker,
    token: CancellationToken,
    http_addr: SocketAddr,
    reload: Arc<Reload>,
    server: Option<ServerHandle>,
    gossip: GossipHandle,
    tls: Option<TlsContext>,
    failed: tokio::sync::watch::Receiver<Option<String>>,
    stopper: Stopper,
}

/// Which signal asks the agent to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM: leave gracefully when `leave_on_terminate`.
    Terminate,
    /// SIGINT: leave gracefully unless `skip_leave_on_interrupt`.
    Interrupt,
}

/// Stops an agent the way a signal asks (Consul's `leave_on_terminate` /
/// `skip_leave_on_interrupt`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Stopper {
    token: CancellationToken,
    /// Read by the shutdown path: leave the gossip pool before stopping it.
    leave: Arc<AtomicBool>,
    leave_on_terminate: bool,
    leave_on_interrupt: bool,
}

impl Stopper {
    /// Records whether `signal` means a graceful leave, then starts the shutdown.
    pub fn stop(&self, signal: StopSignal) {
        let leave = match signal {
            StopSignal::Terminate => self.leave_on_terminate,
            StopSignal::Interrupt => self.leave_on_interrupt,
        };
        self.leave.store(leave, Ordering::SeqCst);
        self.token.cancel();
    }
}

impl BoundAgent {
    /// Binds the listeners and, for a server, opens raft storage.
    pub async fn bind(cfg: Config) -> Result<Self, AgentError> {
        let (data_dir, dev_dir) = match (&cfg.data_dir, cfg.dev_mode) {
            (Some(d), _) => (PathBuf::from(d), None),
            (None, true) => {
                let t = tempfile::Builder::new()
                    .prefix("meridian-dev-")
                    .tempdir()
                    .map_err(AgentError::DataDir)?;
                (t.path().to_path_buf(), Some(t))
            }
            (None, false) => {
                return Err(AgentError::Config(
                    "data_dir is required (-data-dir) unless -dev is set".into(),
                ));
            }
        };
        let handlers = cfg
            .event_handler_specs()
            .map_err(|e| AgentError::Config(e.to_string()))?;
        std::fs::create_dir_all(&data_dir).map_err(AgentError::DataDir)?;
        let node_id = identity::node_id(&data_dir, cfg.node_id.as_deref())?;
        let cfg_err = |e: meridian_config::ConfigError| AgentError::Config(e.to_string());
        let api = listen::bind_api(&cfg).await?;
        let dns = match cfg.ports.dns_port() {
            Some(port) => {
                let ips = cfg.dns_addrs().map_err(cfg_err)?;
                let bound =
                    crate::dns::BoundDns::bind(&ips, port)
                        .await
                        .map_err(|e| AgentError::Bind {
                            what: "DNS",
                            addr: SocketAddr::new(ips[0], port),
                            source: e,
                        })?;
                Some(bound)
            }
            None => None,
        };
        let advertise = cfg.advertise_ip().map_err(cfg_err)?;
        let rpc_bind = SocketAddr::new(cfg.bind_addr, cfg.ports.server_port().unwrap_or(8300));
        let rpc_err = |source| AgentError::Bind {
            what: "server RPC",
            addr: rpc_bind,
            source,
        };
        // Read the certificates before anything listens: a bad file stops the start.
        let tls = crate::cluster::tls::context(&cfg)?;
        // Client agents hold no raft and, as Consul's, listen on no server port.
        let rpc = if cfg.server {
            Some(
                RpcListener::bind(rpc_bind)
                    .await
                    .map_err(rpc_err)?
                    .with_tls(tls.clone()),
            )
        } else {
            None
        };
        let rpc_port = match &rpc {
            Some(l) => l.local_addr().map_err(rpc_err)?.port(),
            None => rpc_bind.port(),
        };
        let me = SelfInfo {
            node: cfg.node_name.clone(),
            node_id: node_id.clone(),
            datacenter: cfg.datacenter.clone(),
            address: advertise.to_string(),
            rpc_port,
            meta: cfg.node_meta.clone().into_iter().collect(),
        };
        let raft_node = ServerNode {
            rpc_addr: SocketAddr::new(advertise, rpc_port).to_string(),
            name: cfg.node_name.clone(),
            node_id: node_id.clone(),
        };
        let local = Arc::new(
            LocalState::load(cfg.node_name.clone(), Some(data_dir.clone()))
                .map_err(|e| AgentError::Config(e.to_string()))?,
        );
        let snapshot_path = crate::gossip::snapshot::local_snapshot_path(&data_dir);
        let previous = lan::previous_snapshot(&snapshot_path);
        let gossip = lan::bind(
            &cfg,
            &lan::LanIdentity {
                data_dir: &data_dir,
                node_id: &node_id,
                raft_id: identity::raft_id(&node_id),
                advertise,
                rpc_port,
            },
            &previous,
        )
        .await?;
        let channels = Arc::new(crate::cluster::tls::channels(&cfg, tls.as_ref()));
        let server = match rpc {
            None => None,
            Some(rpc) => {
                let transport = GrpcTransport::new(cfg.datacenter.clone(), Arc::clone(&channels));
                let raft = RaftNode::open_with_transport(
                    &data_dir.join("raft"),
                    identity::raft_id(&node_id),
                    raft_node,
                    raft_config(&cfg),
                    Arc::new(transport),
                )
                .await?;
                if cfg.bootstrap || cfg.bootstrap_expect == 1 || cfg.dev_mode {
                    raft.bootstrap_single().await?;
                }
                Some(ServerSide { rpc, raft })
            }
        };
        Ok(BoundAgent {
            snapshot_path,
            previous,
            handlers,
            cfg,
            api,
            dns,
            server,
            channels,
            tls,
            gossip,
            me,
            local,
            config_source: None,
            logs: crate::logs::LogStream::default(),
            _dev_dir: dev_dir,
        })
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.api
            .http
            .first()
            .and_then(|l| l.local_addr().ok())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The bound LAN gossip address (as advertised to other members).
    pub fn serf_lan_addr(&self) -> SocketAddr {
        self.gossip.advertise_addr()
    }

    /// Lets reloads (`SIGHUP`, `/v1/agent/reload`) re-read the configuration with `source`.
    pub fn with_config_source(mut self, source: ConfigSource) -> Self {
        self.config_source = Some(source);
        self
    }

    /// Streams this process's log lines to `/v1/agent/monitor` from `logs`.
    pub fn with_logs(mut self, logs: crate::logs::LogStream) -> Self {
        self.logs = logs;
        self
    }

    /// Starts serving; everything stops when `token` is cancelled.
    pub fn spawn(self, token: CancellationToken) -> AgentHandle {
        let tracker = TaskTracker::new();
        let http_addr = self.http_addr();
        let https_addr = (self.api.https.first())
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.to_string())
            .unwrap_or_default();
        let serf_lan = self.serf_lan_addr();
        // Its own token: the shutdown path below leaves (maybe) and stops it explicitly.
        let gossip = self.gossip.spawn(CancellationToken::new());
        // A -dev agent's temporary data dir dies with it: nothing to snapshot for.
        let snapshot_path = self._dev_dir.is_none().then_some(self.snapshot_path);
        lan::spawn_snapshot_and_rejoin(
            &self.cfg,
            snapshot_path,
            self.previous,
            &gossip,
            &tracker,
            token.child_token(),
        );
        let (fail_tx, failed) = tokio::sync::watch::channel(None);
        let fail_tx = std::sync::Arc::new(fail_tx);
        {
            let (cfg, gossip, token, fail_tx) = (
                self.cfg.clone(),
                gossip.clone(),
                token.clone(),
                fail_tx.clone(),
            );
            tracker.spawn(
                async move {
                    if let Some(reason) = lan::join_at_start(&cfg, &gossip, &token).await {
                        let _ = fail_tx.send(Some(reason));
                        token.cancel();
                    }
                }
                .instrument(info_span!("join")),
            );
        }
        let forwarder = Forwarder::new(self.cfg.datacenter.clone(), Arc::clone(&self.channels));
        // One resolver (one cache) for HTTP, DNS and anti-entropy; its settings hold the
        // ACL primary in effect, which the leader's ACL duties follow too.
        let acl = Arc::new(crate::acl::Resolver::new(AclSettings::from_config(
            &self.cfg,
        )));
        let (server, rpc) = match self.server {
            Some(side) => {
                let parts = ServerParts {
                    raft: &side.raft,
                    forwarder: &forwarder,
                    gossip: &gossip,
                    primary: &acl.settings().primary,
                };
                let server = start_server(&self.cfg, &self.me, parts, &tracker, &token);
                (Some(server), Some((side.rpc, side.raft)))
            }
            None => (None, None),
        };
        let remote = Arc::new(RemoteServers::new(
            self.cfg.datacenter.clone(),
            gossip.clone(),
            forwarder,
        ));
        let handlers = handlers::spawn(
            self.handlers,
            handlers::HandlerConfig::default(),
            gossip.members_watch(),
            &tracker,
            token.child_token(),
        );
        if let Some(h) = &handlers {
            h.push_local_join(&gossip.members_watch().borrow());
        }
        let event_log = Arc::new(events::EventLog::default());
        let scope = events::Scope {
            node: self.cfg.node_name.clone(),
            server: server.clone(),
        };
        let sink = match &server {
            Some(s) => coordinates::Sink::Local(s.clone()),
            None => coordinates::Sink::Remote(Arc::clone(&remote)),
        };
        tracker.spawn(
            events::record(
                gossip.clone(),
                scope,
                event_log.clone(),
                handlers,
                token.child_token(),
            )
            .instrument(info_span!("events")),
        );
        tracker.spawn(
            coordinates::sync(self.cfg.clone(), gossip.clone(), sink, token.child_token())
                .instrument(info_span!("coordinates")),
        );
        let local = local_sync::spawn(
            &self.cfg,
            &self.me,
            &self.local,
            server.as_ref(),
            &remote,
            &acl,
            &tracker,
            &token,
        );
        let federation = Arc::new(Federation::new(
            self.cfg.datacenter.clone(),
            self.cfg.domain.clone(),
            gossip.clone(),
            Arc::clone(&self.channels),
        ));
        tracker.spawn(Arc::clone(&federation).probe_open_breakers(token.clone()));
        let replicator = match &server {
            Some(s) if self.cfg.replication.is_on() => {
                let r = crate::server::replication::Replicator::new(self.cfg.replication.clone());
                let run = Arc::clone(&r).run(s.clone(), Arc::clone(&federation), token.clone());
                tracker.spawn(run.instrument(info_span!("replication")));
                Some(r)
            }
            _ => None,
        };
        let acl_replicator = match &server {
            Some(s) if acl.settings().enabled => {
                Some(spawn_acl_primary(s, &acl, &federation, &tracker, &token))
            }
            _ => None,
        };
        let router = match &server {
            Some(s) => Router::new(self.cfg.datacenter.clone(), s.clone()),
            None => Router::client(self.cfg.datacenter.clone(), Arc::clone(&remote)),
        }
        .with_federation(federation);
        let dns_port = self.dns.as_ref().map_or(0, crate::dns::BoundDns::port);
        let dns_stats = self.dns.map(|dns| {
            spawn_dns(
                dns,
                &self.cfg,
                router.clone(),
                Arc::clone(&acl),
                &tracker,
                token.child_token(),
            )
        });
        let reload = Arc::new(
            Reload::new(self.config_source, Arc::clone(&local))
                .with_tls(self.tls.clone(), self.api.https_tls.clone())
                .with_hook(primary_on_reload(
                    Arc::clone(&acl.settings().primary),
                    server.clone(),
                )),
        );
        {
            let (reload, cfg) = (Arc::clone(&reload), self.cfg.clone());
            tracker.spawn(async move {
                if let Err(e) = reload.apply(&cfg).await {
                    warn!(cause = %e, "config service definitions not applied");
                }
            });
        }
        let api = ApiState::new(ApiContext {
            enable_script_checks: self.cfg.enable_script_checks,
            reload: Arc::clone(&reload),
            local,
            router,
            limits: Limits {
                kv_max_value_size: self.cfg.limits.kv_max_value_size,
                txn_max_req_len: self.cfg.limits.txn_max_req_len,
            },
            session_ttl_min: self.cfg.session_ttl_min,
            node_name: self.cfg.node_name.clone(),
            agent: AgentInfo {
                node_name: self.cfg.node_name.clone(),
                node_id: self.me.node_id.clone(),
                datacenter: self.cfg.datacenter.clone(),
                server: server.is_some(),
                advertise_addr: self.me.address.clone(),
                rpc_port: self.me.rpc_port,
                version: env!("CARGO_PKG_VERSION").to_string(),
                domain: self.cfg.domain.clone(),
            },
            gossip: gossip.clone(),
            events: event_log,
            dns_stats,
            replicator,
            acl_replicator,
            logs: self.logs.clone(),
            shutdown: token.clone(),
            ui_path: self.cfg.ui_enabled().then(|| {
                self.cfg
                    .ui_config
                    .content_path
                    .clone()
                    .unwrap_or_else(|| "/ui/".into())
            }),
            tls: self.tls.clone(),
            acl,
            telemetry: self.cfg.telemetry.clone(),
        });
        let http_token = token.child_token();
        let root = token.clone();
        let router = match &server {
            Some(_) => crate::http::router(api),
            None => crate::http::client_router(api),
        };
        let mut raft_to_stop = None;
        if let (Some((rpc, raft)), Some(server)) = (rpc, &server) {
            let raft_svc = RaftService::server(raft.clone(), self.cfg.datacenter.clone());
            let fwd_svc = crate::server::forward_handler::forward_service(
                self.cfg.datacenter.clone(),
                server.clone(),
                Some(router.clone()),
            );
            raft_to_stop = Some(raft);
            let (rpc_token, root, fail_tx) = (token.child_token(), token.clone(), fail_tx.clone());
            let raft_peers = crate::cluster::tls::raft_peers(&self.cfg, self.tls.as_ref());
            tracker.spawn(
                async move {
                    if let Err(e) = rpc.serve(raft_svc, raft_peers, fwd_svc, rpc_token).await {
                        let _ = fail_tx.send(Some(format!("server RPC listener failed: {e}")));
                        root.cancel();
                    }
                }
                .instrument(info_span!("rpc")),
            );
        }
        tracker.spawn(
            async move {
                if let Err(e) = crate::http::serve(self.api, router, http_token).await {
                    let _ = fail_tx.send(Some(format!("HTTP server failed: {e}")));
                    root.cancel();
                }
            }
            .instrument(info_span!("http")),
        );
        let dev_dir = self._dev_dir;
        let raft = raft_to_stop;
        let stop = token.clone();
        let stopper = Stopper {
            token: token.clone(),
            leave: Arc::new(AtomicBool::new(self.cfg.leave_on_terminate())),
            leave_on_terminate: self.cfg.leave_on_terminate(),
            leave_on_interrupt: !self.cfg.skip_leave_on_interrupt(),
        };
        let leave = stopper.leave.clone();
        let pool = gossip.clone();
        let (stopping, users) = (TaskTracker::new(), tracker.clone());
        stopping.spawn(async move {
            stop.cancelled().await;
            if leave.load(Ordering::SeqCst) {
                match pool.leave().await {
                    Ok(()) => info!("left the LAN gossip pool"),
                    Err(e) if e.is_stopped() => {}
                    Err(e) => warn!(cause = %e, "graceful leave failed"),
                }
            }
            pool.shutdown().await;
            // Raft goes last: a task still inside a raft call (the leader loop registering
            // this server right after an election, an HTTP write) would otherwise see raft
            // vanish, and openraft logs that as an ERROR although we asked for it.
            if tokio::time::timeout(SHUTDOWN_GRACE / 2, users.wait())
                .await
                .is_err()
            {
                warn!("tasks still running; stopping raft under them");
            }
            if let Some(raft) = raft
                && let Err(e) = raft.shutdown().await
            {
                warn!(cause = %e, "raft shutdown failed");
            }
            drop(dev_dir);
        });
        info!(
            node = %self.me.node, http = %http_addr,
            https = %https_addr, serf_lan = %serf_lan,
            rpc = %format!("{}:{}", self.me.address, self.me.rpc_port), dns = dns_port,
            "Meridian agent listening"
        );
        // A server announces "running" once its state shows it registered, so that clients
        // (and tests) that start on this line can create sessions at once; a client agent
        // serves (and forwards) as soon as it listens.
        let ready = server.clone();
        let me = self.me.clone();
        let ready_token = token.clone();
        tracker.spawn(async move {
            let is_server = ready.is_some();
            let ready = async {
                match ready {
                    Some(s) => s.ready().await,
                    None => true,
                }
            };
            tokio::select! {
                _ = ready_token.cancelled() => {}
                true = ready => info!(
                    node = %me.node, datacenter = %me.datacenter, http = %http_addr,
                    https = %https_addr, serf_lan = %serf_lan, dns = dns_port, server = is_server,
                    "Meridian agent running"
                ),
            }
        });
        tracker.close();
        stopping.close();
        AgentHandle {
            tracker,
            stopping,
            token,
            http_addr,
            reload,
            server,
            gossip,
            tls: self.tls,
            failed,
            stopper,
        }
    }
}

impl AgentHandle {
    /// The HTTP API address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The local server (`None` for a client agent).
    pub fn server(&self) -> Option<&ServerHandle> {
        self.server.as_ref()
    }

    /// The LAN gossip pool.
    pub fn gossip(&self) -> &GossipHandle {
        &self.gossip
    }

    /// Server RPC TLS (refused handshakes, reloads), if configured.
    pub fn tls(&self) -> Option<&TlsContext> {
        self.tls.as_ref()
    }

    /// Reloads the configuration's service definitions (what `SIGHUP` does).
    pub fn reloader(&self) -> Arc<Reload> {
        Arc::clone(&self.reload)
    }

    /// Stops the agent as a signal asks (with or without a graceful leave).
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Waits until the agent stops (token cancelled or a fatal error), then for its tasks.
    pub async fn wait(self) -> Result<(), AgentError> {
        self.token.cancelled().await;
        let all = async {
            self.tracker.wait().await;
            self.stopping.wait().await;
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            warn!(grace = ?SHUTDOWN_GRACE, "shutdown grace period passed; abandoning tasks");
        }
        match self.failed.borrow().clone() {
            Some(reason) => Err(AgentError::Fatal(reason)),
            None => Ok(()),
        }
    }

    /// Stops the agent and waits for it.
    pub async fn shutdown(self) -> Result<(), AgentError> {
        self.token.cancel();
        self.wait().await
    }
}

/// Serves DNS on `bound` from the catalog `router` reads, as `cfg` says.
fn spawn_dns(
    bound: crate::dns::BoundDns,
    cfg: &Config,
    router: Router,
    acl: Arc<crate::acl::Resolver>,
    tracker: &TaskTracker,
    token: CancellationToken,
) -> Arc<crate::dns::DnsStats> {
    let d = &cfg.dns_config;
    let source = crate::dns::Source::new(router, cfg.node_name.clone(), d.allow_stale, d.max_stale)
        .with_acl(acl);
    let recursors =
        crate::dns::Recursors::new(&cfg.recursors, &d.recursor_strategy, d.recursor_timeout);
    let settings = crate::dns::Settings {
        domains: cfg.dns_domains(),
        dns: d.clone(),
    };
    let handler = crate::dns::ConsulDns::new(source, settings, recursors);
    let stats = handler.stats();
    tracker.spawn(
        async move {
            if let Err(e) = bound.serve(handler, token).await {
                warn!(cause = %e, "DNS server stopped");
            }
        }
        .instrument(info_span!("dns")),
    );
    stats
}

/// Runs an agent with `cfg` until `shutdown` is cancelled.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<(), AgentError> {
    let bound = BoundAgent::bind(cfg).await?;
    // Written once the listeners are bound, removed when this function returns.
    let _pid = pid_file::PidFile::create_opt(bound.cfg.pid_file.as_deref())?;
    bound.spawn(shutdown).wait().await
}

/// Runs an agent with `cfg`, re-reading the configuration from `source` on reloads and
/// streaming `logs` to monitors; `on_start` gets its [`Stopper`] and reloader (e.g. for
/// signal handlers).
pub async fn run_with(
    cfg: Config,
    source: ConfigSource,
    logs: crate::logs::LogStream,
    on_start: impl FnOnce(Stopper, Arc<Reload>),
) -> Result<(), AgentError> {
    let bound = BoundAgent::bind(cfg)
        .await?
        .with_config_source(source)
        .with_logs(logs);
    // Written once the listeners are bound, removed when this function returns.
    let _pid = pid_file::PidFile::create_opt(bound.cfg.pid_file.as_deref())?;
    let handle = bound.spawn(CancellationToken::new());
    on_start(handle.stopper(), handle.reloader());
    handle.wait().await
}
