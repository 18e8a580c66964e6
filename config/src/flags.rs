//! `AgentFlags`: Consul's `agent` command-line flags as a clap `Args` struct, and their
//! translation into the top configuration layer.
//!
//! Values that have a syntax (durations, IPs, `key:value`) are checked by clap at parse time,
//! so a bad one exits before anything loads and the message names the flag. Boolean flags
//! accept Go's `-server=false` as well as the bare `-server`. Only flags that were given
//! become overrides, so an absent flag never clobbers a file or environment value.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::ConfigError;
use crate::duration::{DurationError, format_go_duration, parse_go_duration};
use crate::files::FileFormat;

/// The `meridian agent` flags (Consul spelling; `normalize_args` lets `-flag` work too).
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct AgentFlags {
    /// Development mode: a single bootstrapped server on 127.0.0.1 with temporary state,
    /// the UI on and fast raft timings. Not for production.
    #[arg(long)]
    pub dev: bool,
    /// Run in server mode (raft member).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub server: Option<bool>,
    /// Elect this server alone. Only for the very first server of a new datacenter.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub bootstrap: Option<bool>,
    /// Number of servers to wait for before bootstrapping.
    #[arg(long = "bootstrap-expect", value_name = "N")]
    pub bootstrap_expect: Option<u32>,
    /// Directory for agent state.
    #[arg(long = "data-dir", value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// A JSON or HCL config file to load (repeatable; later files win).
    #[arg(long = "config-file", value_name = "PATH")]
    pub config_file: Vec<PathBuf>,
    /// A directory whose *.json and *.hcl files are loaded in lexical order (repeatable).
    #[arg(long = "config-dir", value_name = "PATH")]
    pub config_dir: Vec<PathBuf>,
    /// Inline HCL config, applied after the files (repeatable).
    #[arg(long = "hcl", value_name = "HCL")]
    pub hcl: Vec<String>,
    /// Datacenter of this agent.
    #[arg(long)]
    pub datacenter: Option<String>,
    /// Node name (default: host name).
    #[arg(long = "node", value_name = "NAME")]
    pub node: Option<String>,
    /// Node UUID.
    #[arg(long = "node-id", value_name = "UUID")]
    pub node_id: Option<String>,
    /// Address to bind cluster listeners (RPC, gossip).
    #[arg(long = "bind", value_name = "IP")]
    pub bind: Option<IpAddr>,
    /// Address(es) to bind client listeners (HTTP, DNS), space separated.
    #[arg(long = "client", value_name = "IP")]
    pub client: Option<String>,
    /// Address to advertise to other nodes.
    #[arg(long = "advertise", value_name = "IP")]
    pub advertise: Option<IpAddr>,
    /// HTTP API port (-1 disables).
    #[arg(long = "http-port", value_name = "PORT", allow_negative_numbers = true)]
    pub http_port: Option<i32>,
    /// DNS port (-1 disables).
    #[arg(long = "dns-port", value_name = "PORT", allow_negative_numbers = true)]
    pub dns_port: Option<i32>,
    /// Server RPC port.
    #[arg(
        long = "server-port",
        value_name = "PORT",
        allow_negative_numbers = true
    )]
    pub server_port: Option<i32>,
    /// LAN gossip port.
    #[arg(
        long = "serf-lan-port",
        value_name = "PORT",
        allow_negative_numbers = true
    )]
    pub serf_lan_port: Option<i32>,
    /// WAN gossip port.
    #[arg(
        long = "serf-wan-port",
        value_name = "PORT",
        allow_negative_numbers = true
    )]
    pub serf_wan_port: Option<i32>,
    /// HTTPS API port (-1 disables).
    #[arg(
        long = "https-port",
        value_name = "PORT",
        allow_negative_numbers = true
    )]
    pub https_port: Option<i32>,
    /// External gRPC port (-1 disables).
    #[arg(long = "grpc-port", value_name = "PORT", allow_negative_numbers = true)]
    pub grpc_port: Option<i32>,
    /// Address to join at start, retried until it succeeds (repeatable).
    #[arg(long = "retry-join", value_name = "ADDR")]
    pub retry_join: Vec<String>,
    /// Address to join once at start (deprecated; repeatable).
    #[arg(long = "join", value_name = "ADDR")]
    pub join: Vec<String>,
    /// Time to wait between join attempts (Go duration, e.g. 30s).
    #[arg(long = "retry-interval", value_name = "DURATION", value_parser = parse_duration_flag)]
    pub retry_interval: Option<Duration>,
    /// Join attempts before giving up (0 = forever).
    #[arg(long = "retry-max", value_name = "N")]
    pub retry_max: Option<u32>,
    /// Rejoin the cluster even after a graceful leave.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub rejoin: Option<bool>,
    /// Script to run on gossip events, as serf's `[filter=]script` (filters: member-join,
    /// member-leave, member-failed, member-update, member-reap, user, user:NAME, *; comma
    /// separated). Repeatable.
    #[arg(long = "event-handler", value_name = "[FILTER=]SCRIPT")]
    pub event_handler: Vec<String>,
    /// Gossip encryption key (base64; see `meridian keygen`).
    #[arg(long, value_name = "KEY")]
    pub encrypt: Option<String>,
    /// Log level: trace, debug, info, warn, err.
    #[arg(long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log as JSON.
    #[arg(long = "log-json", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub log_json: Option<bool>,
    /// Serve the web UI.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ui: Option<bool>,
    /// DNS domain (default consul.).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Alternate DNS domain.
    #[arg(long = "alt-domain", value_name = "DOMAIN")]
    pub alt_domain: Option<String>,
    /// Upstream DNS server (repeatable).
    #[arg(long = "recursor", value_name = "ADDR")]
    pub recursor: Vec<String>,
    /// Allow script health checks.
    #[arg(long = "enable-script-checks", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_script_checks: Option<bool>,
    /// Node metadata as key:value (repeatable).
    #[arg(long = "node-meta", value_name = "KEY:VALUE", value_parser = parse_node_meta)]
    pub node_meta: Vec<(String, String)>,
    /// Allow script checks from config files only.
    #[arg(long = "enable-local-script-checks", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_local_script_checks: Option<bool>,
    /// Write the agent's pid to this file; it is removed on exit.
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Read config files as this format (`hcl` or `json`) whatever their extension; a
    /// `-config-dir` then contributes every file.
    #[arg(long = "config-format", value_name = "FORMAT", value_parser = ["hcl", "json"])]
    pub config_format: Option<String>,

    // Consul's flags for features Meridian does not have: accepted, and warned about at start
    // as having no effect (the key each sets is in `inert_overrides`).
    /// No effect in Meridian: address to advertise on the WAN.
    #[arg(long = "advertise-wan", value_name = "IP")]
    pub advertise_wan: Option<String>,
    /// No effect in Meridian: CIDR allowed to call write endpoints (repeatable).
    #[arg(long = "allow-write-http-from", value_name = "CIDR")]
    pub allow_write_http_from: Vec<String>,
    /// No effect in Meridian: reload config files when they change.
    #[arg(long = "auto-reload-config", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub auto_reload_config: Option<bool>,
    /// No effect in Meridian: largest check output kept.
    #[arg(long = "check_output_max_size", value_name = "BYTES")]
    pub check_output_max_size: Option<i64>,
    /// No effect in Meridian: default wait of a blocking query.
    #[arg(long = "default-query-time", value_name = "DURATION", value_parser = parse_duration_flag)]
    pub default_query_time: Option<Duration>,
    /// No effect in Meridian: do not derive the node ID from the host.
    #[arg(long = "disable-host-node-id", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub disable_host_node_id: Option<bool>,
    /// No effect in Meridian: do not back the gossip keyring up to a file.
    #[arg(long = "disable-keyring-file", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub disable_keyring_file: Option<bool>,
    /// No effect in Meridian: the gRPC TLS port.
    #[arg(
        long = "grpc-tls-port",
        value_name = "PORT",
        allow_negative_numbers = true
    )]
    pub grpc_tls_port: Option<i32>,
    /// No effect in Meridian: WAN address to join at start (repeatable).
    #[arg(long = "join-wan", value_name = "ADDR")]
    pub join_wan: Vec<String>,
    /// No effect in Meridian: file to write logs to.
    #[arg(long = "log-file", value_name = "PATH")]
    pub log_file: Option<String>,
    /// No effect in Meridian: log file size before rotation.
    #[arg(long = "log-rotate-bytes", value_name = "BYTES")]
    pub log_rotate_bytes: Option<i64>,
    /// No effect in Meridian: log file age before rotation.
    #[arg(long = "log-rotate-duration", value_name = "DURATION", value_parser = parse_duration_flag)]
    pub log_rotate_duration: Option<Duration>,
    /// No effect in Meridian: rotated log files kept.
    #[arg(
        long = "log-rotate-max-files",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub log_rotate_max_files: Option<i64>,
    /// No effect in Meridian: longest wait of a blocking query.
    #[arg(long = "max-query-time", value_name = "DURATION", value_parser = parse_duration_flag)]
    pub max_query_time: Option<Duration>,
    /// No effect in Meridian (Enterprise; deprecated spelling of -read-replica).
    #[arg(long = "non-voting-server", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub non_voting_server: Option<bool>,
    /// No effect in Meridian: mesh gateway of the primary datacenter (repeatable).
    #[arg(long = "primary-gateway", value_name = "ADDR")]
    pub primary_gateway: Vec<String>,
    /// No effect in Meridian: Consul's RPC protocol version.
    #[arg(long = "protocol", value_name = "N")]
    pub protocol: Option<i64>,
    /// No effect in Meridian: Consul's raft protocol version.
    #[arg(long = "raft-protocol", value_name = "N")]
    pub raft_protocol: Option<i64>,
    /// No effect in Meridian (Enterprise): a server outside the raft quorum.
    #[arg(long = "read-replica", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub read_replica: Option<bool>,
    /// No effect in Meridian: wait between WAN join attempts.
    #[arg(long = "retry-interval-wan", value_name = "DURATION", value_parser = parse_duration_flag)]
    pub retry_interval_wan: Option<Duration>,
    /// No effect in Meridian: WAN address to join, retried (repeatable).
    #[arg(long = "retry-join-wan", value_name = "ADDR")]
    pub retry_join_wan: Vec<String>,
    /// No effect in Meridian: WAN join attempts.
    #[arg(long = "retry-max-wan", value_name = "N")]
    pub retry_max_wan: Option<i64>,
    /// No effect in Meridian (Enterprise): network segment to join.
    #[arg(long = "segment", value_name = "NAME")]
    pub segment: Option<String>,
    /// No effect in Meridian: networks allowed for LAN gossip (repeatable).
    #[arg(long = "serf-lan-allowed-cidrs", value_name = "CIDR")]
    pub serf_lan_allowed_cidrs: Vec<String>,
    /// No effect in Meridian: address LAN gossip binds instead of -bind.
    #[arg(long = "serf-lan-bind", value_name = "IP")]
    pub serf_lan_bind: Option<String>,
    /// No effect in Meridian: networks allowed for WAN gossip (repeatable).
    #[arg(long = "serf-wan-allowed-cidrs", value_name = "CIDR")]
    pub serf_wan_allowed_cidrs: Vec<String>,
    /// No effect in Meridian: address WAN gossip binds.
    #[arg(long = "serf-wan-bind", value_name = "IP")]
    pub serf_wan_bind: Option<String>,
    /// No effect in Meridian: log to syslog.
    #[arg(long = "syslog", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub syslog: Option<bool>,
    /// No effect in Meridian (no web UI is served): URL path of the UI.
    #[arg(long = "ui-content-path", value_name = "PATH")]
    pub ui_content_path: Option<String>,
    /// No effect in Meridian (no web UI is served): directory of UI assets.
    #[arg(long = "ui-dir", value_name = "PATH")]
    pub ui_dir: Option<String>,
}

/// clap value parser for duration flags: a Go duration string.
pub fn parse_duration_flag(s: &str) -> Result<Duration, DurationError> {
    parse_go_duration(s)
}

/// clap value parser for `-node-meta key:value`.
fn parse_node_meta(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not of the form key:value")),
    }
}

impl AgentFlags {
    /// The configuration keys the given flags set, as a JSON object (the top layer).
    pub(crate) fn overrides(&self) -> Value {
        let mut m = Map::new();
        let mut set = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        if let Some(v) = self.server {
            set("server", json!(v));
        }
        if let Some(v) = self.bootstrap {
            set("bootstrap", json!(v));
        }
        if let Some(v) = self.bootstrap_expect {
            set("bootstrap_expect", json!(v));
        }
        if let Some(v) = &self.data_dir {
            set("data_dir", json!(v));
        }
        if let Some(v) = &self.datacenter {
            set("datacenter", json!(v));
        }
        if let Some(v) = &self.node {
            set("node_name", json!(v));
        }
        if let Some(v) = &self.node_id {
            set("node_id", json!(v));
        }
        if let Some(v) = self.bind {
            set("bind_addr", json!(v.to_string()));
        }
        if let Some(v) = &self.client {
            set("client_addr", json!(v));
        }
        if let Some(v) = self.advertise {
            set("advertise_addr", json!(v.to_string()));
        }
        if !self.retry_join.is_empty() {
            set("retry_join", json!(self.retry_join));
        }
        if !self.join.is_empty() {
            set("start_join", json!(self.join));
        }
        if let Some(v) = self.retry_interval {
            set("retry_interval", json!(format_go_duration(v)));
        }
        if let Some(v) = self.retry_max {
            set("retry_max", json!(v));
        }
        if let Some(v) = self.rejoin {
            set("rejoin_after_leave", json!(v));
        }
        if !self.event_handler.is_empty() {
            set("event_handlers", json!(self.event_handler));
        }
        if let Some(v) = &self.encrypt {
            set("encrypt", json!(v));
        }
        if let Some(v) = &self.log_level {
            set("log_level", json!(v));
        }
        if let Some(v) = self.log_json {
            set("log_json", json!(v));
        }
        if let Some(v) = self.ui {
            set("ui", json!(v));
        }
        if let Some(v) = &self.domain {
            set("domain", json!(v));
        }
        if let Some(v) = &self.alt_domain {
            set("alt_domain", json!(v));
        }
        if !self.recursor.is_empty() {
            set("recursors", json!(self.recursor));
        }
        if let Some(v) = self.enable_script_checks {
            set("enable_script_checks", json!(v));
        }
        if !self.node_meta.is_empty() {
            let meta: Map<String, Value> = self
                .node_meta
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            set("node_meta", Value::Object(meta));
        }
        if let Some(v) = self.enable_local_script_checks {
            set("enable_local_script_checks", json!(v));
        }
        if let Some(v) = &self.pid_file {
            set("pid_file", json!(v));
        }
        self.inert_overrides(&mut set);
        let ports: Map<String, Value> = [
            ("http", self.http_port),
            ("dns", self.dns_port),
            ("server", self.server_port),
            ("serf_lan", self.serf_lan_port),
            ("serf_wan", self.serf_wan_port),
            ("https", self.https_port),
            ("grpc", self.grpc_port),
            ("grpc_tls", self.grpc_tls_port),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), json!(v))))
        .collect();
        if !ports.is_empty() {
            set("ports", Value::Object(ports));
        }
        let ui: Map<String, Value> = [
            ("dir", self.ui_dir.as_ref()),
            ("content_path", self.ui_content_path.as_ref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), json!(v))))
        .collect();
        if !ui.is_empty() {
            set("ui_config", Value::Object(ui));
        }
        Value::Object(m)
    }

    /// The keys set by the flags of features Meridian does not have, as Consul names them, so
    /// they are warned about like the same keys in a file.
    fn inert_overrides(&self, set: &mut impl FnMut(&str, Value)) {
        let dur = |d: &Option<Duration>| d.map(|d| json!(format_go_duration(d)));
        let list = |l: &Vec<String>| (!l.is_empty()).then(|| json!(l));
        let string = |s: &Option<String>| s.as_ref().map(|v| json!(v));
        let keys: [(&str, Option<Value>); 27] = [
            ("advertise_addr_wan", string(&self.advertise_wan)),
            (
                "http_config",
                list(&self.allow_write_http_from).map(|l| json!({ "allow_write_http_from": l })),
            ),
            (
                "auto_reload_config",
                self.auto_reload_config.map(|v| json!(v)),
            ),
            (
                "check_output_max_size",
                self.check_output_max_size.map(|v| json!(v)),
            ),
            ("default_query_time", dur(&self.default_query_time)),
            (
                "disable_host_node_id",
                self.disable_host_node_id.map(|v| json!(v)),
            ),
            (
                "disable_keyring_file",
                self.disable_keyring_file.map(|v| json!(v)),
            ),
            ("start_join_wan", list(&self.join_wan)),
            ("log_file", string(&self.log_file)),
            ("log_rotate_bytes", self.log_rotate_bytes.map(|v| json!(v))),
            ("log_rotate_duration", dur(&self.log_rotate_duration)),
            (
                "log_rotate_max_files",
                self.log_rotate_max_files.map(|v| json!(v)),
            ),
            ("max_query_time", dur(&self.max_query_time)),
            (
                "non_voting_server",
                self.non_voting_server.map(|v| json!(v)),
            ),
            ("primary_gateways", list(&self.primary_gateway)),
            ("protocol", self.protocol.map(|v| json!(v))),
            ("raft_protocol", self.raft_protocol.map(|v| json!(v))),
            ("read_replica", self.read_replica.map(|v| json!(v))),
            ("retry_interval_wan", dur(&self.retry_interval_wan)),
            ("retry_join_wan", list(&self.retry_join_wan)),
            ("retry_max_wan", self.retry_max_wan.map(|v| json!(v))),
            ("segment", string(&self.segment)),
            ("serf_lan_allowed_cidrs", list(&self.serf_lan_allowed_cidrs)),
            ("serf_lan", string(&self.serf_lan_bind)),
            ("serf_wan_allowed_cidrs", list(&self.serf_wan_allowed_cidrs)),
            ("serf_wan", string(&self.serf_wan_bind)),
            ("enable_syslog", self.syslog.map(|v| json!(v))),
        ];
        for (k, v) in keys {
            if let Some(v) = v {
                set(k, v);
            }
        }
    }

    /// `-config-format`, parsed.
    pub(crate) fn config_format(&self) -> Result<Option<FileFormat>, ConfigError> {
        self.config_format
            .as_deref()
            .map(|f| {
                FileFormat::parse(f).ok_or_else(|| ConfigError::Value {
                    origin: "command-line flag -config-format".into(),
                    key: None,
                    message: format!("{f:?} must be \"hcl\" or \"json\""),
                    hint: None,
                })
            })
            .transpose()
    }
}

/// What `-dev` changes, applied below the files (so a file may still override it), as Consul's
/// dev defaults are.
pub(crate) fn dev_defaults() -> Value {
    json!({
        "server": true,
        "bootstrap": true,
        "datacenter": "dc1",
        "bind_addr": "127.0.0.1",
        "client_addr": "127.0.0.1",
        "advertise_addr": "127.0.0.1",
        "ui": true,
        "ui_config": { "enabled": true },
        "performance": { "raft_multiplier": 1 },
    })
}

/// The command-line flag that sets a config key, for error messages.
pub(crate) fn flag_for_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "server" => "-server",
        "bootstrap" => "-bootstrap",
        "bootstrap_expect" => "-bootstrap-expect",
        "data_dir" => "-data-dir",
        "datacenter" => "-datacenter",
        "node_name" => "-node",
        "node_id" => "-node-id",
        "bind_addr" => "-bind",
        "client_addr" => "-client",
        "advertise_addr" => "-advertise",
        "retry_join" => "-retry-join",
        "start_join" => "-join",
        "retry_interval" => "-retry-interval",
        "retry_max" => "-retry-max",
        "rejoin_after_leave" => "-rejoin",
        "event_handlers" => "-event-handler",
        "encrypt" => "-encrypt",
        "log_level" => "-log-level",
        "domain" => "-domain",
        "alt_domain" => "-alt-domain",
        "recursors" => "-recursor",
        "node_meta" => "-node-meta",
        "ports.http" => "-http-port",
        "ports.dns" => "-dns-port",
        "ports.server" => "-server-port",
        "ports.serf_lan" => "-serf-lan-port",
        "ports.serf_wan" => "-serf-wan-port",
        "ports.https" => "-https-port",
        "ports.grpc" => "-grpc-port",
        "ports.grpc_tls" => "-grpc-tls-port",
        "log_json" => "-log-json",
        "ui" => "-ui",
        "enable_script_checks" => "-enable-script-checks",
        "enable_local_script_checks" => "-enable-local-script-checks",
        "pid_file" => "-pid-file",
        "ui_config.dir" => "-ui-dir",
        "ui_config.content_path" => "-ui-content-path",
        "advertise_addr_wan" => "-advertise-wan",
        "http_config" => "-allow-write-http-from",
        "auto_reload_config" => "-auto-reload-config",
        "check_output_max_size" => "-check_output_max_size",
        "default_query_time" => "-default-query-time",
        "disable_host_node_id" => "-disable-host-node-id",
        "disable_keyring_file" => "-disable-keyring-file",
        "start_join_wan" => "-join-wan",
        "log_file" => "-log-file",
        "log_rotate_bytes" => "-log-rotate-bytes",
        "log_rotate_duration" => "-log-rotate-duration",
        "log_rotate_max_files" => "-log-rotate-max-files",
        "max_query_time" => "-max-query-time",
        "non_voting_server" => "-non-voting-server",
        "primary_gateways" => "-primary-gateway",
        "protocol" => "-protocol",
        "raft_protocol" => "-raft-protocol",
        "read_replica" => "-read-replica",
        "retry_interval_wan" => "-retry-interval-wan",
        "retry_join_wan" => "-retry-join-wan",
        "retry_max_wan" => "-retry-max-wan",
        "segment" => "-segment",
        "serf_lan_allowed_cidrs" => "-serf-lan-allowed-cidrs",
        "serf_lan" => "-serf-lan-bind",
        "serf_wan_allowed_cidrs" => "-serf-wan-allowed-cidrs",
        "serf_wan" => "-serf-wan-bind",
        "enable_syslog" => "-syslog",
        _ => return None,
    })
}
