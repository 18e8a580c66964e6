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

use crate::duration::{DurationError, format_go_duration, parse_go_duration};

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
        let ports: Map<String, Value> = [
            ("http", self.http_port),
            ("dns", self.dns_port),
            ("server", self.server_port),
            ("serf_lan", self.serf_lan_port),
            ("serf_wan", self.serf_wan_port),
            ("https", self.https_port),
            ("grpc", self.grpc_port),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), json!(v))))
        .collect();
        if !ports.is_empty() {
            set("ports", Value::Object(ports));
        }
        Value::Object(m)
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
        _ => return None,
    })
}
