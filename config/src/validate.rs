//! `Config::validate`: range, format and cross-field rules that serde types cannot express.
//!
//! Each rule names the key it checks and says how to fix it. Pure: no I/O.

use std::net::{IpAddr, SocketAddr};

use base64::Engine;

use crate::{Config, ConfigError};

/// Consul's `MaxRaftMultiplier`.
const MAX_RAFT_MULTIPLIER: u32 = 10;
/// Consul rejects a `reconnect_timeout` below 8h.
const MIN_RECONNECT_TIMEOUT_SECS: u64 = 8 * 3600;
/// Consul's node metadata limits (`structs.ValidateNodeMetadata`).
const META_MAX_PAIRS: usize = 64;
const META_MAX_KEY_LEN: usize = 128;
const META_MAX_VALUE_LEN: usize = 512;

impl Config {
    /// Checks the rules a merged configuration must satisfy; the first broken one is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_identity()?;
        self.validate_cluster()?;
        self.validate_network()?;
        self.validate_misc()?;
        self.validate_tls()?;
        Ok(())
    }

    /// Consul's TLS rules (`tls.rs`): no `ca_path`, `verify_server_hostname` only in
    /// `internal_rpc`, cert and key together, the verify flags' files present, a
    /// certificate for the HTTPS port.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        self.tls.validate(
            &self.deprecated_tls(),
            self.ca_path.as_deref(),
            self.ports.https_port().is_some(),
        )
    }

    fn validate_identity(&self) -> Result<(), ConfigError> {
        if !is_dc_name(&self.datacenter) {
            return Err(ConfigError::invalid(
                "datacenter",
                format!(
                    "{:?} must be non-empty and contain only a-z, 0-9, '_' and '-'",
                    self.datacenter
                ),
            ));
        }
        if self.node_name.trim().is_empty() {
            return Err(ConfigError::invalid("node_name", "cannot be empty"));
        }
        if let Some(p) = self.primary_datacenter.as_ref().filter(|p| !is_dc_name(p)) {
            return Err(ConfigError::invalid(
                "primary_datacenter",
                format!("{p:?} must contain only a-z, 0-9, '_' and '-'"),
            ));
        }
        if let Some(id) = self.node_id.as_ref().filter(|id| !is_uuid(id)) {
            return Err(ConfigError::invalid(
                "node_id",
                format!("{id:?} is not a UUID"),
            ));
        }
        if self.data_dir.is_none() && !self.dev_mode {
            return Err(ConfigError::invalid(
                "data_dir",
                "cannot be empty (set -data-dir, or use -dev)",
            ));
        }
        Ok(())
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        if self.bootstrap && self.bootstrap_expect > 0 {
            return Err(ConfigError::invalid(
                "bootstrap_expect",
                "bootstrap and bootstrap_expect are mutually exclusive",
            ));
        }
        if self.bootstrap_expect > 0 && !self.server {
            return Err(ConfigError::invalid(
                "bootstrap_expect",
                "only a server may set bootstrap_expect (add -server)",
            ));
        }
        if self.bootstrap && !self.server {
            return Err(ConfigError::invalid(
                "bootstrap",
                "bootstrap mode requires server mode (add -server)",
            ));
        }
        let m = self.performance.raft_multiplier;
        if !(1..=MAX_RAFT_MULTIPLIER).contains(&m) {
            return Err(ConfigError::invalid(
                "performance.raft_multiplier",
                format!("{m} is out of range, must be 1 to {MAX_RAFT_MULTIPLIER}"),
            ));
        }
        if let Some(key) = &self.encrypt {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key.trim())
                .map_err(|e| ConfigError::invalid("encrypt", format!("not valid base64: {e}")))?;
            // The gossip keyring seals with ring's AES-128/256-GCM; ring has no AES-192, so a
            // 24-byte key is refused here, at load time, rather than when gossip starts.
            if ![16, 32].contains(&bytes.len()) {
                return Err(ConfigError::invalid(
                    "encrypt",
                    format!(
                        "key is {} bytes, must be 16 or 32 (24-byte AES-192 keys are not supported; generate one with `meridian keygen`)",
                        bytes.len()
                    ),
                ));
            }
        }
        if self.reconnect_timeout.as_secs() < MIN_RECONNECT_TIMEOUT_SECS {
            return Err(ConfigError::invalid(
                "reconnect_timeout",
                "must be at least 8h",
            ));
        }
        if self.raft_snapshot_threshold == 0 {
            return Err(ConfigError::invalid(
                "raft_snapshot_threshold",
                "must be greater than 0",
            ));
        }
        // hashicorp/raft refuses less ("SnapshotInterval is too low").
        if self.raft_snapshot_interval < std::time::Duration::from_millis(5) {
            return Err(ConfigError::invalid(
                "raft_snapshot_interval",
                "must be at least 5ms",
            ));
        }
        if self.raft_trailing_logs == 0 {
            return Err(ConfigError::invalid(
                "raft_trailing_logs",
                "must be greater than 0",
            ));
        }
        if let Some(i) = self.retry_join.iter().position(|a| a.trim().is_empty()) {
            return Err(ConfigError::invalid(
                format!("retry_join[{i}]"),
                "cannot be empty",
            ));
        }
        Ok(())
    }

    fn validate_network(&self) -> Result<(), ConfigError> {
        self.client_addrs()?;
        self.http_addrs()?;
        self.dns_addrs()?;
        let ports = [
            ("ports.http", self.ports.http),
            ("ports.dns", self.ports.dns),
            ("ports.server", self.ports.server),
            ("ports.serf_lan", self.ports.serf_lan),
            ("ports.serf_wan", self.ports.serf_wan),
            ("ports.https", self.ports.https),
            ("ports.grpc", self.ports.grpc),
        ];
        for (i, (key, port)) in ports.iter().enumerate() {
            if !(-1..=65535).contains(port) {
                return Err(ConfigError::invalid(
                    *key,
                    format!("{port} is out of range, must be -1 (off) or 0 to 65535"),
                ));
            }
            // Port 0 means "any free port", so only fixed ports can collide.
            let clash = ports[..i].iter().find(|(_, p)| *port > 0 && p == port);
            if let Some((other, _)) = clash {
                return Err(ConfigError::invalid(
                    *key,
                    format!("port {port} is also used by {other}"),
                ));
            }
        }
        for (i, r) in self.recursors.iter().enumerate() {
            if r.parse::<IpAddr>().is_err() && r.parse::<SocketAddr>().is_err() {
                return Err(ConfigError::invalid(
                    format!("recursors[{i}]"),
                    format!("{r:?} is not an ip or ip:port"),
                ));
            }
        }
        if self.domain.trim_matches('.').is_empty() {
            return Err(ConfigError::invalid("domain", "cannot be empty"));
        }
        if !["none", "nearest"].contains(&self.dns_config.service_failover.as_str()) {
            return Err(ConfigError::invalid(
                "dns_config.service_failover",
                format!(
                    "{:?} must be \"none\" or \"nearest\"",
                    self.dns_config.service_failover
                ),
            ));
        }
        if !["sequential", "random"].contains(&self.dns_config.recursor_strategy.as_str()) {
            return Err(ConfigError::invalid(
                "dns_config.recursor_strategy",
                format!(
                    "{:?} must be \"sequential\" or \"random\"",
                    self.dns_config.recursor_strategy
                ),
            ));
        }
        Ok(())
    }

    fn validate_misc(&self) -> Result<(), ConfigError> {
        self.replication.validate(&self.datacenter)?;
        let level = self.log_level.to_ascii_lowercase();
        if !["trace", "debug", "info", "warn", "err", "error"].contains(&level.as_str()) {
            return Err(ConfigError::invalid(
                "log_level",
                format!(
                    "{:?} must be one of trace, debug, info, warn, err",
                    self.log_level
                ),
            ));
        }
        if self.sync_coordinate_interval_min.is_zero() {
            return Err(ConfigError::invalid(
                "sync_coordinate_interval_min",
                "must be greater than 0s",
            ));
        }
        if !(self.sync_coordinate_rate_target.is_finite() && self.sync_coordinate_rate_target > 0.0)
        {
            return Err(ConfigError::invalid(
                "sync_coordinate_rate_target",
                "must be a number greater than 0",
            ));
        }
        if self.session_ttl_min.is_zero() {
            return Err(ConfigError::invalid(
                "session_ttl_min",
                "must be greater than 0s",
            ));
        }
        if self.limits.kv_max_value_size == 0 || self.limits.txn_max_req_len == 0 {
            return Err(ConfigError::invalid(
                "limits",
                "kv_max_value_size and txn_max_req_len must be greater than 0",
            ));
        }
        validate_node_meta(self)?;
        self.event_handler_specs()?;
        for (i, svc) in self.service_definitions().into_iter().enumerate() {
            let name = svc.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("name"))
                    .and_then(|(_, v)| v.as_str())
            });
            if name.is_none_or(|n| n.trim().is_empty()) {
                return Err(ConfigError::invalid(
                    format!("services[{i}]"),
                    "a service definition must be an object with a non-empty \"name\"",
                ));
            }
        }
        Ok(())
    }
}

fn validate_node_meta(cfg: &Config) -> Result<(), ConfigError> {
    if cfg.node_meta.len() > META_MAX_PAIRS {
        return Err(ConfigError::invalid(
            "node_meta",
            format!("at most {META_MAX_PAIRS} pairs are allowed"),
        ));
    }
    for (k, v) in &cfg.node_meta {
        let key = format!("node_meta.{k}");
        if k.is_empty()
            || k.len() > META_MAX_KEY_LEN
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "keys must be 1 to {META_MAX_KEY_LEN} characters of a-z, A-Z, 0-9, '_' and '-'"
                ),
            ));
        }
        if k.starts_with("consul-") {
            return Err(ConfigError::invalid(
                key,
                "the \"consul-\" key prefix is reserved",
            ));
        }
        if v.len() > META_MAX_VALUE_LEN {
            return Err(ConfigError::invalid(
                key,
                format!("values may be at most {META_MAX_VALUE_LEN} characters"),
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9_-]+`, Consul's datacenter name rule.
pub(crate) fn is_dc_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// 8-4-4-4-12 hex digits.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}
