//! The configuration structs: Consul's snake_case keys, their defaults, and small accessors.
//!
//! Every struct is `#[serde(default, deny_unknown_fields)]` so a typo is an error rather than a
//! silently ignored key, and a file may set any subset of keys. Defaults are Consul's
//! (`agent/config/default.go`, reference/consul.md §4). Loading lives in `load.rs`, rules in
//! `validate.rs`; nothing here does I/O except reading the host name for `node_name`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ConfigError;
use crate::acl::AclConfig;
use crate::consul_keys::ConfigWarning;
use crate::duration::serde_go;
use crate::event_handler::EventHandler;
use crate::tls::{DeprecatedTls, ResolvedTls, TlsConfig, TlsProtocol};

/// The agent's configuration, as merged from defaults, files, environment and flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Datacenter this agent belongs to (`[a-z0-9_-]+`). Default `dc1`.
    pub datacenter: String,
    /// Where the agent keeps raft, catalog and identity state. Required unless `-dev`.
    pub data_dir: Option<PathBuf>,
    /// This node's name; unique in the datacenter. Default: the host name.
    pub node_name: String,
    /// This node's UUID; generated and persisted under `data_dir` when unset.
    pub node_id: Option<String>,
    /// Server mode: take part in raft. Default false (client).
    pub server: bool,
    /// Elect this server alone, without waiting for others. Exclusive with `bootstrap_expect`.
    pub bootstrap: bool,
    /// Number of servers to wait for before bootstrapping raft (0 = unset).
    pub bootstrap_expect: u32,
    /// Address the cluster-internal listeners bind (RPC, gossip). Default `0.0.0.0`.
    pub bind_addr: IpAddr,
    /// Address(es) the client interfaces bind (HTTP, DNS); space separated. Default `127.0.0.1`.
    pub client_addr: String,
    /// Address other nodes use to reach this one. Default: `bind_addr` when it is not `0.0.0.0`.
    pub advertise_addr: Option<IpAddr>,
    /// Listener ports.
    pub ports: PortsConfig,
    /// Addresses to join at start and retry until one succeeds.
    pub retry_join: Vec<String>,
    /// Deprecated `-join` / `start_join`: joined once at start.
    pub start_join: Vec<String>,
    /// Wait between join attempts. Default 30s.
    #[serde(with = "serde_go")]
    pub retry_interval: Duration,
    /// Join attempts before giving up; 0 means forever.
    pub retry_max: u32,
    /// Rejoin the cluster on start even after a graceful leave.
    pub rejoin_after_leave: bool,
    /// serf's event handlers: `[filter=]script` values run with `sh -c` on matching gossip
    /// events (`-event-handler`, repeatable). See [`crate::EventHandler`].
    pub event_handlers: Vec<String>,
    /// Gossip encryption key: base64 of 16, 24 or 32 bytes.
    pub encrypt: Option<String>,
    /// Reject unencrypted incoming gossip (when `encrypt` is set). Default true.
    pub encrypt_verify_incoming: bool,
    /// Encrypt outgoing gossip (when `encrypt` is set). Default true.
    pub encrypt_verify_outgoing: bool,
    /// `trace`, `debug`, `info`, `warn` or `err`/`error`. Default `info`.
    pub log_level: String,
    /// Log as JSON lines.
    pub log_json: bool,
    /// Serve the web UI. `ui_config.enabled` is the newer spelling; either turns it on.
    pub ui: bool,
    /// Web UI settings.
    pub ui_config: UiConfig,
    /// DNS domain. Default `consul.`.
    pub domain: String,
    /// A second DNS domain answered like `domain`; answers use the domain asked. Default none.
    pub alt_domain: Option<String>,
    /// Upstream DNS servers for names outside `domain` (`ip` or `ip:port`).
    pub recursors: Vec<String>,
    /// DNS interface settings.
    pub dns_config: DnsConfig,
    /// Request and size limits.
    pub limits: LimitsConfig,
    /// Timing scale factors.
    pub performance: PerformanceConfig,
    /// Shortest session TTL accepted. Default 10s.
    #[serde(with = "serde_go")]
    pub session_ttl_min: Duration,
    /// Allow script checks registered over the API and in files.
    pub enable_script_checks: bool,
    /// Allow script checks from config files only.
    pub enable_local_script_checks: bool,
    /// Node metadata (`key: value`), visible in the catalog.
    pub node_meta: BTreeMap<String, String>,
    /// Leave gracefully on SIGTERM. Unset: true for clients, false for servers.
    pub leave_on_terminate: Option<bool>,
    /// Skip the graceful leave on SIGINT. Unset: false for clients, true for servers.
    pub skip_leave_on_interrupt: Option<bool>,
    /// How long a failed node stays in the member list before it is reaped. Default 72h, ≥ 8h.
    #[serde(with = "serde_go")]
    pub reconnect_timeout: Duration,
    /// Shortest time between an agent's coordinate updates to the servers. Default 15s
    /// (`-dev`: at most 1s, so `rtt` and `?near=` work right away).
    #[serde(with = "serde_go")]
    pub sync_coordinate_interval_min: Duration,
    /// Cluster-wide coordinate updates per second the servers aim for; the interval grows
    /// with the pool (`members / rate`). Default 64.
    pub sync_coordinate_rate_target: f64,
    /// Raft log entries between snapshots (Consul's `raft_snapshot_threshold`). Default 16384.
    pub raft_snapshot_threshold: u64,
    /// How often a server checks whether `raft_snapshot_threshold` entries have passed
    /// since its last snapshot, plus a random wait of up to as long again (Consul's
    /// `raft_snapshot_interval`). Default 30s.
    #[serde(with = "serde_go")]
    pub raft_snapshot_interval: Duration,
    /// Raft log entries kept behind a snapshot, so a slow follower can catch up from the log
    /// (Consul's `raft_trailing_logs`). Default 10000.
    pub raft_trailing_logs: u64,
    /// Service definitions (`services = [...]`), loosely validated for now.
    pub services: Vec<serde_json::Value>,
    /// A single service definition (`service { ... }`), or a list of them.
    pub service: Option<serde_json::Value>,
    /// Write the agent's process id here at start (decimal text, as Consul) and remove the
    /// file on exit (`-pid-file`).
    pub pid_file: Option<PathBuf>,
    /// The datacenter that is authoritative for ACLs and the CA; unset means `datacenter`.
    /// Stored and reported (`/v1/agent/self`) until federation uses it.
    pub primary_datacenter: Option<String>,
    /// Per-listener bind addresses that override `client_addr`.
    pub addresses: AddressesConfig,
    /// ACL settings (`acl { ... }`); `enabled = true` is gated, see [`crate::AclConfig`].
    pub acl: AclConfig,
    /// KV replication from another datacenter (Meridian's; servers only).
    pub replication: crate::replication::ReplicationConfig,
    /// Metrics output (`telemetry { prometheus_retention_time disable_hostname }`).
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// TLS (`tls { defaults { ... } internal_rpc { ... } https { ... } }`); see
    /// [`Config::internal_rpc_tls`] and [`Config::https_tls`].
    pub tls: TlsConfig,
    /// Deprecated spelling of `tls.defaults.ca_file` (which wins when both are set).
    pub ca_file: Option<PathBuf>,
    /// Deprecated spelling of `tls.defaults.ca_path`; refused like it.
    pub ca_path: Option<PathBuf>,
    /// Deprecated spelling of `tls.defaults.cert_file`.
    pub cert_file: Option<PathBuf>,
    /// Deprecated spelling of `tls.defaults.key_file`.
    pub key_file: Option<PathBuf>,
    /// Deprecated spelling of `tls.defaults.verify_incoming`.
    pub verify_incoming: Option<bool>,
    /// Deprecated spelling of `tls.internal_rpc.verify_incoming`.
    pub verify_incoming_rpc: Option<bool>,
    /// Deprecated spelling of `tls.https.verify_incoming`.
    pub verify_incoming_https: Option<bool>,
    /// Deprecated spelling of `tls.defaults.tls_min_version`.
    pub tls_min_version: Option<String>,
    /// Deprecated spelling of `tls.defaults.tls_cipher_suites`.
    pub tls_cipher_suites: Option<String>,
    /// Deprecated spelling of `tls.defaults.verify_outgoing`.
    pub verify_outgoing: Option<bool>,
    /// Deprecated spelling of `tls.internal_rpc.verify_server_hostname`.
    pub verify_server_hostname: Option<bool>,
    /// Set by `-dev` only: in-memory-like temporary state, everything on 127.0.0.1, fast raft.
    #[serde(skip)]
    pub dev_mode: bool,
    /// Keys that were accepted but have no effect, and `MERIDIAN_*` variables that name no
    /// key, in load order; the agent logs each once at start.
    #[serde(skip)]
    pub warnings: Vec<ConfigWarning>,
}

/// Per-listener bind addresses (`addresses { ... }`); each overrides `client_addr` for its
/// listener. Space-separated lists bind every address, as `client_addr` does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AddressesConfig {
    /// Where the HTTP API listens. Default: `client_addr`.
    pub http: Option<String>,
    /// Where DNS listens. Default: `client_addr`.
    pub dns: Option<String>,
    /// Where the HTTPS API listens. Default: `client_addr`.
    pub https: Option<String>,
}

/// Listener ports. `-1` disables a listener, `0` picks a free port (tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortsConfig {
    /// HTTP API. Default 8500.
    pub http: i32,
    /// DNS (UDP and TCP). Default 8600.
    pub dns: i32,
    /// Server RPC (gRPC, raft). Default 8300.
    pub server: i32,
    /// LAN gossip. Default 8301.
    pub serf_lan: i32,
    /// WAN gossip. Default 8302.
    pub serf_wan: i32,
    /// HTTPS API. Default -1 (off).
    pub https: i32,
    /// Consul's external gRPC (xDS). Default -1 (off).
    pub grpc: i32,
}

/// Web UI settings (`ui_config { ... }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// Serve the UI.
    pub enabled: bool,
    /// Serve UI assets from this directory instead of the built-in ones.
    pub dir: Option<PathBuf>,
    /// URL path prefix of the UI. Default `/ui/`.
    pub content_path: Option<String>,
}

/// DNS interface settings (`dns_config { ... }`), reference/consul.md §4.3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Answer from any server's state, not only the leader's. Default true.
    pub allow_stale: bool,
    /// How stale an answer may be. Default 87600h.
    #[serde(with = "serde_go")]
    pub max_stale: Duration,
    /// TTL of node lookups. Default 0s.
    #[serde(with = "serde_go")]
    pub node_ttl: Duration,
    /// TTL per service name; `"*"` is the wildcard. Default: none (0s).
    #[serde(with = "serde_go::map")]
    pub service_ttl: BTreeMap<String, Duration>,
    /// Records per UDP answer. Default 3.
    pub udp_answer_limit: u32,
    /// A/AAAA records per answer; 0 is unlimited. Default 0.
    pub a_record_limit: u32,
    /// Leave out instances whose checks are warning as well as critical.
    pub only_passing: bool,
    /// Set the TC bit instead of silently truncating UDP answers.
    pub enable_truncate: bool,
    /// Time to wait for a recursor. Default 2s.
    #[serde(with = "serde_go")]
    pub recursor_timeout: Duration,
    /// `sequential` or `random`. Default `sequential`.
    pub recursor_strategy: String,
    /// Turn off DNS name compression.
    pub disable_compression: bool,
    /// Add node meta as TXT records to the additional section of A and SRV answers.
    /// Default true.
    pub enable_additional_node_meta_txt: bool,
    /// Accepted for Consul compatibility: answers always come from the agent's current
    /// view, which is already in memory.
    pub use_cache: bool,
    /// Accepted with `use_cache`. Default 0s.
    #[serde(with = "serde_go")]
    pub cache_max_age: Duration,
    /// SOA record timers.
    pub soa: SoaConfig,
    /// Meridian's: `"nearest"` makes a plain `<svc>.service.<domain>` answer as
    /// `<svc>.service.any.<domain>` does (the nearest datacenter with a healthy instance when
    /// this one has none); `"none"` (default) keeps Consul's meaning.
    pub service_failover: String,
}

/// SOA timers in seconds (`dns_config.soa`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoaConfig {
    /// Default 3600.
    pub refresh: u32,
    /// Default 600.
    pub retry: u32,
    /// Default 86400.
    pub expire: u32,
    /// Default 0.
    pub min_ttl: u32,
}

/// Request and size limits (`limits { ... }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Concurrent HTTP connections per client IP. Default 200.
    pub http_max_conns_per_client: u32,
    /// Concurrent RPC connections per client IP. Default 100.
    pub rpc_max_conns_per_client: u32,
    /// Largest KV value in bytes (a value of exactly this size is accepted). Default 524288.
    pub kv_max_value_size: u64,
    /// Largest transaction request in bytes. Default 524288.
    pub txn_max_req_len: u64,
    /// RPC requests per second a client agent may make; negative is unlimited. Default -1.
    pub rpc_rate: f64,
    /// Burst above `rpc_rate`. Default 1000.
    pub rpc_max_burst: u32,
}

/// Timing scale factors (`performance { ... }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerformanceConfig {
    /// Multiplies raft timeouts; 1 (fastest) to 10. Default 5.
    pub raft_multiplier: u32,
    /// How long a leaving server keeps serving. Default 5s.
    #[serde(with = "serde_go")]
    pub leave_drain_time: Duration,
    /// How long clients retry RPCs during a leader election. Default 7s.
    #[serde(with = "serde_go")]
    pub rpc_hold_timeout: Duration,
}

/// Raft timeouts derived from `performance.raft_multiplier` and `-dev` (consul.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTiming {
    /// Follower's wait for a heartbeat before it stands for election.
    pub heartbeat_timeout: Duration,
    /// Candidate's election timeout.
    pub election_timeout: Duration,
    /// How long a leader stays leader without hearing from a quorum.
    pub leader_lease_timeout: Duration,
}

// === impl Config ===

impl Default for Config {
    fn default() -> Self {
        Config {
            datacenter: "dc1".into(),
            data_dir: None,
            node_name: default_node_name(),
            node_id: None,
            server: false,
            bootstrap: false,
            bootstrap_expect: 0,
            bind_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            client_addr: "127.0.0.1".into(),
            advertise_addr: None,
            ports: PortsConfig::default(),
            retry_join: Vec::new(),
            start_join: Vec::new(),
            retry_interval: Duration::from_secs(30),
            retry_max: 0,
            rejoin_after_leave: false,
            event_handlers: Vec::new(),
            encrypt: None,
            encrypt_verify_incoming: true,
            encrypt_verify_outgoing: true,
            log_level: "info".into(),
            log_json: false,
            ui: false,
            ui_config: UiConfig::default(),
            domain: "consul.".into(),
            alt_domain: None,
            recursors: Vec::new(),
            dns_config: DnsConfig::default(),
            limits: LimitsConfig::default(),
            performance: PerformanceConfig::default(),
            session_ttl_min: Duration::from_secs(10),
            enable_script_checks: false,
            enable_local_script_checks: false,
            node_meta: BTreeMap::new(),
            leave_on_terminate: None,
            skip_leave_on_interrupt: None,
            reconnect_timeout: Duration::from_secs(72 * 3600),
            sync_coordinate_interval_min: Duration::from_secs(15),
            sync_coordinate_rate_target: 64.0,
            raft_snapshot_threshold: 16384,
            raft_snapshot_interval: Duration::from_secs(30),
            raft_trailing_logs: 10000,
            services: Vec::new(),
            service: None,
            pid_file: None,
            primary_datacenter: None,
            addresses: AddressesConfig::default(),
            acl: AclConfig::default(),
            replication: crate::replication::ReplicationConfig::default(),
            telemetry: crate::telemetry::TelemetryConfig::default(),
            tls: TlsConfig::default(),
            ca_file: None,
            ca_path: None,
            cert_file: None,
            key_file: None,
            verify_incoming: None,
            verify_incoming_rpc: None,
            verify_incoming_https: None,
            tls_min_version: None,
            tls_cipher_suites: None,
            verify_outgoing: None,
            verify_server_hostname: None,
            dev_mode: false,
            warnings: Vec::new(),
        }
    }
}

impl Config {
    /// A server that bootstraps itself, with every listener on `127.0.0.1` port 0 (the OS picks
    /// free ports) and state under `dir`. The node is named after `dir`'s last component so
    /// several test nodes get distinct names. Raft runs at `raft_multiplier = 1`.
    pub fn for_test(dir: impl AsRef<Path>) -> Config {
        let dir = dir.as_ref();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "test-node".into());
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Config {
            data_dir: Some(dir.to_path_buf()),
            node_name: name,
            server: true,
            bootstrap: true,
            bind_addr: localhost,
            client_addr: "127.0.0.1".into(),
            advertise_addr: Some(localhost),
            ports: PortsConfig {
                http: 0,
                dns: 0,
                server: 0,
                serf_lan: 0,
                serf_wan: 0,
                https: -1,
                grpc: -1,
            },
            performance: PerformanceConfig {
                raft_multiplier: 1,
                ..PerformanceConfig::default()
            },
            ..Config::default()
        }
    }

    /// `event_handlers` parsed; the error names the bad entry (`validate` checks this too).
    pub fn event_handler_specs(&self) -> Result<Vec<EventHandler>, ConfigError> {
        self.event_handlers
            .iter()
            .enumerate()
            .map(|(i, v)| {
                EventHandler::parse(v).map_err(|e| {
                    ConfigError::invalid(
                        format!("event_handlers[{i}]"),
                        format!("{e} (set by -event-handler or event_handlers)"),
                    )
                })
            })
            .collect()
    }

    /// Whether the web UI is on (`ui` or `ui_config.enabled`).
    pub fn ui_enabled(&self) -> bool {
        self.ui || self.ui_config.enabled
    }

    /// The addresses the HTTP and DNS listeners bind by default, parsed from `client_addr`.
    pub fn client_addrs(&self) -> Result<Vec<IpAddr>, ConfigError> {
        parse_addrs("client_addr", &self.client_addr)
    }

    /// The addresses the HTTP API binds: `addresses.http`, else `client_addr`.
    pub fn http_addrs(&self) -> Result<Vec<IpAddr>, ConfigError> {
        match &self.addresses.http {
            Some(a) => parse_addrs("addresses.http", a),
            None => self.client_addrs(),
        }
    }

    /// The addresses the HTTPS API binds: `addresses.https`, else `client_addr`.
    pub fn https_addrs(&self) -> Result<Vec<IpAddr>, ConfigError> {
        match &self.addresses.https {
            Some(a) => parse_addrs("addresses.https", a),
            None => self.client_addrs(),
        }
    }

    /// The addresses DNS binds: `addresses.dns`, else `client_addr`.
    pub fn dns_addrs(&self) -> Result<Vec<IpAddr>, ConfigError> {
        match &self.addresses.dns {
            Some(a) => parse_addrs("addresses.dns", a),
            None => self.client_addrs(),
        }
    }

    /// `primary_datacenter`, or `datacenter` when unset (Consul's default).
    pub fn primary_datacenter(&self) -> &str {
        self.primary_datacenter
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(&self.datacenter)
    }

    /// The DNS domains answered, lowercase with a final dot: `domain`, then `alt_domain`.
    pub fn dns_domains(&self) -> Vec<String> {
        let fqdn = |d: &str| format!("{}.", d.trim_matches('.').to_ascii_lowercase());
        let mut out = vec![fqdn(&self.domain)];
        if let Some(alt) = self
            .alt_domain
            .as_deref()
            .filter(|a| !a.trim_matches('.').is_empty())
        {
            out.push(fqdn(alt));
        }
        out
    }

    /// The first address of `client_addr`.
    pub fn client_ip(&self) -> Result<IpAddr, ConfigError> {
        // `client_addrs` never returns an empty list.
        self.client_addrs().map(|a| a[0])
    }

    /// The first address of [`Config::http_addrs`]: where the HTTP API listens.
    pub fn http_ip(&self) -> Result<IpAddr, ConfigError> {
        // `http_addrs` never returns an empty list.
        self.http_addrs().map(|a| a[0])
    }

    /// The address other nodes use to reach this one: `advertise_addr`, else `bind_addr` when
    /// it names a specific address. With `bind_addr = 0.0.0.0` and no `advertise_addr`, Consul
    /// picks a private interface address; that needs the network, so it is the caller's job and
    /// this returns an error naming the keys to set.
    pub fn advertise_ip(&self) -> Result<IpAddr, ConfigError> {
        match (self.advertise_addr, self.bind_addr) {
            (Some(ip), _) => Ok(ip),
            (None, bind) if !bind.is_unspecified() => Ok(bind),
            (None, _) => Err(ConfigError::invalid(
                "advertise_addr",
                "cannot be derived from bind_addr 0.0.0.0; set advertise_addr (-advertise) or bind_addr (-bind)",
            )),
        }
    }

    /// TLS for server RPC as Consul resolves it (`tls.internal_rpc`, else `tls.defaults`,
    /// else the deprecated top-level keys; `verify_server_hostname` implies
    /// `verify_outgoing`). `None` when no TLS key is set.
    pub fn internal_rpc_tls(&self) -> Option<ResolvedTls> {
        self.tls
            .resolved(TlsProtocol::InternalRpc, &self.deprecated_tls())
    }

    /// TLS of the HTTPS API (`tls.https`, else `tls.defaults`, else the deprecated keys,
    /// `verify_incoming_https` before `verify_incoming`). `None` when no TLS key is set;
    /// validation makes sure it has a certificate when `ports.https` is on.
    pub fn https_tls(&self) -> Option<ResolvedTls> {
        self.tls
            .resolved(TlsProtocol::Https, &self.deprecated_tls())
    }

    /// The deprecated top-level TLS keys, for resolution and validation.
    pub(crate) fn deprecated_tls(&self) -> DeprecatedTls<'_> {
        DeprecatedTls {
            ca_file: self.ca_file.as_deref(),
            cert_file: self.cert_file.as_deref(),
            key_file: self.key_file.as_deref(),
            verify_incoming: self.verify_incoming,
            verify_incoming_rpc: self.verify_incoming_rpc,
            verify_incoming_https: self.verify_incoming_https,
            verify_outgoing: self.verify_outgoing,
            verify_server_hostname: self.verify_server_hostname,
            tls_min_version: self.tls_min_version.as_deref(),
            tls_cipher_suites: self.tls_cipher_suites.as_deref(),
        }
    }

    /// Whether SIGTERM triggers a graceful leave (Consul: clients yes, servers no).
    pub fn leave_on_terminate(&self) -> bool {
        self.leave_on_terminate.unwrap_or(!self.server)
    }

    /// Whether SIGINT skips the graceful leave (Consul: servers yes, clients no).
    pub fn skip_leave_on_interrupt(&self) -> bool {
        self.skip_leave_on_interrupt.unwrap_or(self.server)
    }

    /// Every service definition from `service` and `services`, in that order.
    pub fn service_definitions(&self) -> Vec<&serde_json::Value> {
        let single: Vec<&serde_json::Value> = match &self.service {
            Some(serde_json::Value::Array(list)) => list.iter().collect(),
            Some(other) => vec![other],
            None => Vec::new(),
        };
        single.into_iter().chain(self.services.iter()).collect()
    }

    /// Consul's `RateScaledInterval`: the coordinate sync interval for a pool of `members`,
    /// `max(sync_coordinate_interval_min, members / sync_coordinate_rate_target)`.
    pub fn coordinate_sync_interval(&self, members: usize) -> Duration {
        let min = if self.dev_mode {
            self.sync_coordinate_interval_min
                .min(Duration::from_secs(1))
        } else {
            self.sync_coordinate_interval_min
        };
        let scaled = members as f64 / self.sync_coordinate_rate_target;
        Duration::try_from_secs_f64(scaled).map_or(min, |s| s.max(min))
    }

    /// Raft timeouts: Consul's base values times `raft_multiplier`, or the fast `-dev` ones.
    pub fn raft_timing(&self) -> RaftTiming {
        if self.dev_mode {
            return RaftTiming {
                heartbeat_timeout: Duration::from_millis(35),
                election_timeout: Duration::from_millis(52),
                leader_lease_timeout: Duration::from_millis(20),
            };
        }
        let m = self.performance.raft_multiplier.clamp(1, 10);
        RaftTiming {
            heartbeat_timeout: Duration::from_millis(1000) * m,
            election_timeout: Duration::from_millis(1000) * m,
            leader_lease_timeout: Duration::from_millis(500) * m,
        }
    }
}

/// Parses `value`, a space-separated list of IP addresses set by `key`. Consul also takes
/// `unix://` sockets and go-sockaddr templates here; Meridian has neither, and says so rather
/// than bind somewhere else.
fn parse_addrs(key: &str, value: &str) -> Result<Vec<IpAddr>, ConfigError> {
    let addrs = value
        .split_whitespace()
        .map(|a| {
            a.parse::<IpAddr>().map_err(|_| {
                let why = if a.starts_with("unix://") {
                    "unix sockets are not supported"
                } else if a.contains("{{") {
                    "go-sockaddr templates are not supported"
                } else {
                    "it is not an IP address"
                };
                ConfigError::invalid(key, format!("{a:?}: {why}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() {
        return Err(ConfigError::invalid(key, "must name at least one address"));
    }
    Ok(addrs)
}

/// The host name, as Consul defaults `node_name`; `meridian` if it cannot be read.
pub fn default_node_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "meridian".into())
}

// === impl PortsConfig ===

impl Default for PortsConfig {
    fn default() -> Self {
        PortsConfig {
            http: 8500,
            dns: 8600,
            server: 8300,
            serf_lan: 8301,
            serf_wan: 8302,
            https: -1,
            grpc: -1,
        }
    }
}

/// `Some(port)` unless the listener is disabled (negative) or out of range.
fn enabled(port: i32) -> Option<u16> {
    u16::try_from(port).ok()
}

impl PortsConfig {
    /// The HTTP port, or `None` when disabled.
    pub fn http_port(&self) -> Option<u16> {
        enabled(self.http)
    }
    /// The DNS port, or `None` when disabled.
    pub fn dns_port(&self) -> Option<u16> {
        enabled(self.dns)
    }
    /// The server RPC port, or `None` when disabled.
    pub fn server_port(&self) -> Option<u16> {
        enabled(self.server)
    }
    /// The LAN gossip port, or `None` when disabled.
    pub fn serf_lan_port(&self) -> Option<u16> {
        enabled(self.serf_lan)
    }
    /// The WAN gossip port, or `None` when disabled.
    pub fn serf_wan_port(&self) -> Option<u16> {
        enabled(self.serf_wan)
    }
    /// The HTTPS port, or `None` when disabled.
    pub fn https_port(&self) -> Option<u16> {
        enabled(self.https)
    }
    /// The external gRPC port, or `None` when disabled.
    pub fn grpc_port(&self) -> Option<u16> {
        enabled(self.grpc)
    }
}

// === impl DnsConfig, SoaConfig, LimitsConfig, PerformanceConfig ===

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            allow_stale: true,
            max_stale: Duration::from_secs(87600 * 3600),
            node_ttl: Duration::ZERO,
            service_ttl: BTreeMap::new(),
            udp_answer_limit: 3,
            a_record_limit: 0,
            only_passing: false,
            enable_truncate: false,
            recursor_timeout: Duration::from_secs(2),
            recursor_strategy: "sequential".into(),
            disable_compression: false,
            enable_additional_node_meta_txt: true,
            use_cache: false,
            cache_max_age: Duration::ZERO,
            soa: SoaConfig::default(),
            service_failover: "none".into(),
        }
    }
}

impl DnsConfig {
    /// Whether plain service names fail over to the nearest datacenter.
    pub fn nearest_failover(&self) -> bool {
        self.service_failover == "nearest"
    }

    /// The TTL for `service`: its own entry, else the `"*"` entry, else 0.
    pub fn service_ttl_for(&self, service: &str) -> Duration {
        self.service_ttl
            .get(service)
            .or_else(|| self.service_ttl.get("*"))
            .copied()
            .unwrap_or(Duration::ZERO)
    }
}

impl Default for SoaConfig {
    fn default() -> Self {
        SoaConfig {
            refresh: 3600,
            retry: 600,
            expire: 86400,
            min_ttl: 0,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            http_max_conns_per_client: 200,
            rpc_max_conns_per_client: 100,
            kv_max_value_size: 524_288,
            txn_max_req_len: 524_288,
            rpc_rate: -1.0,
            rpc_max_burst: 1000,
        }
    }
}

impl Default for PerformanceConfig {
    fn default() -> Self {
        PerformanceConfig {
            raft_multiplier: 5,
            leave_drain_time: Duration::from_secs(5),
            rpc_hold_timeout: Duration::from_secs(7),
        }
    }
}
