//! Topology files: what a testbed is made of (datacenters × servers, clients, gateways; WAN
//! link properties per DC pair), read from TOML or HCL and validated.
//!
//! Both formats have the same shape, so one set of serde types reads both:
//!
//! ```toml
//! [agent]
//! raft_multiplier = 1
//!
//! [datacenter.dc1]
//! servers = 3
//! clients = 1
//! gateways = 1
//! server_hcl = 'replication { source_datacenter = "dc2" prefixes = ["config/"] }'
//! client_hcl = 'dns_config { service_failover = "nearest" }'
//!
//! [wan_link.dc1.dc2]
//! delay = "40ms"
//! loss_percent = 0.5
//!
//! [tls]
//! enabled = true       # a CA and a certificate per host; mTLS on every RPC hop
//!
//! [gossip]
//! encrypt = true       # a LAN gossip key per datacenter
//! encrypt_wan = true   # the gateways' WAN pool gets its own key
//! ```
//!
//! ```hcl
//! datacenter "dc1" { servers = 3  clients = 1  gateways = 1 }
//! wan_link "dc1" "dc2" { delay = "40ms" }
//! tls { enabled = true }
//! gossip { encrypt = true  encrypt_wan = true }
//! ```
//!
//! Every error names the file and, where it can be found, the line. This module does no I/O
//! beyond reading the file; turning a topology into hosts and addresses is `plan`'s job.

mod locate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use locate::line_of_path;

/// The most servers a datacenter may have (raft voters; addresses .11–.19 of its LAN).
pub const MAX_SERVERS: u32 = 9;
/// The most clients a datacenter may have (addresses .101–.199).
pub const MAX_CLIENTS: u32 = 99;
/// The most gateways a datacenter may have (addresses .201–.209 and the WAN segment).
pub const MAX_GATEWAYS: u32 = 9;
/// The most datacenters (one /24 LAN each inside 10.201.0.0/16).
pub const MAX_DATACENTERS: usize = 200;
/// The longest datacenter name: it becomes part of host and namespace names.
pub const MAX_DC_NAME: usize = 16;

/// A topology file could not be read or is not a valid topology.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The topology file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file's extension names no known format.
    #[error("{}: unknown topology format (use a .toml or .hcl file)", path.display())]
    Format {
        /// The topology file.
        path: PathBuf,
    },
    /// The file does not parse, has the wrong types or breaks a rule.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The topology file.
        path: PathBuf,
        /// The 1-based line the error is on, when known.
        line: Option<usize>,
        /// What is wrong, naming the key.
        message: String,
    },
}

impl TopologyError {
    /// The line this error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            TopologyError::Invalid { line, .. } => *line,
            _ => None,
        }
    }
}

/// A whole testbed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// How agents are started.
    #[serde(default)]
    pub agent: AgentSpec,
    /// Datacenters by name.
    #[serde(default)]
    pub datacenter: BTreeMap<String, DatacenterSpec>,
    /// WAN link properties: `wan_link.A.B` for the pair A, B (either order, once).
    #[serde(default)]
    pub wan_link: BTreeMap<String, BTreeMap<String, LinkSpec>>,
    /// Mutual TLS between agents, servers and gateways.
    #[serde(default)]
    pub tls: TlsSpec,
    /// Gossip encryption keys.
    #[serde(default)]
    pub gossip: GossipSpec,
}

/// `[tls]`: when enabled, `up` makes a CA and a certificate for every host with
/// `meridian tls ca create` / `tls cert create` and starts every agent and gateway with
/// `verify_incoming`, `verify_outgoing` and `verify_server_hostname`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSpec {
    /// Turn TLS on.
    pub enabled: bool,
}

/// `[gossip]`: gossip keys `up` makes with `meridian keygen`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GossipSpec {
    /// Seal each datacenter's LAN pool with a key of its own (agents' and gateways'
    /// `-encrypt`).
    pub encrypt: bool,
    /// Seal the gateways' WAN pool with one key, separate from every LAN key
    /// (`-encrypt-wan`).
    pub encrypt_wan: bool,
}

/// Agent settings shared by every host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSpec {
    /// `performance.raft_multiplier` (1 = Consul's production setting: elections in 1–2 s).
    pub raft_multiplier: u32,
    /// Extra `meridian agent` flags for every agent.
    pub extra_args: Vec<String>,
}

impl Default for AgentSpec {
    fn default() -> Self {
        AgentSpec {
            raft_multiplier: 1,
            extra_args: Vec::new(),
        }
    }
}

/// One datacenter's hosts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatacenterSpec {
    /// Server agents (raft voters), 1..=9.
    #[serde(default = "default_servers")]
    pub servers: u32,
    /// Client agents.
    #[serde(default)]
    pub clients: u32,
    /// WAN gateways: hosts on the DC's LAN and on the WAN segment.
    #[serde(default)]
    pub gateways: u32,
    /// More agent configuration (HCL) for this datacenter's servers, passed as `-hcl`
    /// (e.g. a `replication { .. }` block).
    #[serde(default)]
    pub server_hcl: Option<String>,
    /// More agent configuration (HCL) for this datacenter's clients, passed as `-hcl`
    /// (e.g. `dns_config { service_failover = "nearest" }`).
    #[serde(default)]
    pub client_hcl: Option<String>,
}

fn default_servers() -> u32 {
    3
}

/// Properties of the WAN path between two datacenters' gateways.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// One-way delay as a Go-style duration (`"40ms"`).
    pub delay: Option<String>,
    /// Random variation of the delay, ± this much (uniform; `"5ms"`).
    pub jitter: Option<String>,
    /// Packet loss in percent (0–100), each direction.
    pub loss_percent: Option<f64>,
}

impl LinkSpec {
    /// The delay, parsed.
    pub fn delay(&self) -> Option<Duration> {
        self.delay
            .as_deref()
            .and_then(|d| humantime::parse_duration(d).ok())
    }

    /// The jitter, parsed.
    pub fn jitter(&self) -> Option<Duration> {
        self.jitter
            .as_deref()
            .and_then(|d| humantime::parse_duration(d).ok())
    }
}

// === impl Topology ===

impl Topology {
    /// Reads and validates a topology file; the format follows the extension.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Topology::from_toml(path, &text),
            Some("hcl") => Topology::from_hcl(path, &text),
            _ => Err(TopologyError::Format {
                path: path.to_path_buf(),
            }),
        }
    }

    /// Parses and validates TOML text; `path` is only for messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<Topology, TopologyError> {
        let invalid = |line, message| TopologyError::Invalid {
            path: path.to_path_buf(),
            line,
            message,
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| invalid(e.span().map(|s| line_at(text, s.start)), e.message().into()))?;
        let topo: Topology = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner
                .span()
                .map(|s| line_at(text, s.start))
                .or_else(|| line_of_path(text, &key));
            invalid(line, keyed(&key, inner.message()))
        })?;
        topo.validate(path, text)?;
        Ok(topo)
    }

    /// Parses and validates HCL text; `path` is only for messages.
    pub fn from_hcl(path: &Path, text: &str) -> Result<Topology, TopologyError> {
        let invalid = |line, message| TopologyError::Invalid {
            path: path.to_path_buf(),
            line,
            message,
        };
        let body: hcl::Body = text.parse().map_err(|e: hcl::Error| match e {
            hcl::Error::Parse(pe) => {
                let loc = pe.location();
                let msg = format!("{} (column {})", pe.message(), loc.column());
                invalid(Some(loc.line()), msg)
            }
            other => invalid(None, other.to_string()),
        })?;
        let de = hcl::de::Deserializer::from_body(body);
        let topo: Topology = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let message = e.into_inner().to_string();
            let key = with_unknown_field(&key, &message);
            invalid(line_of_path(text, &key), keyed(&key, &message))
        })?;
        topo.validate(path, text)?;
        Ok(topo)
    }

    /// Cross-field rules: counts in range, names usable as host names, links between
    /// datacenters that exist.
    fn validate(&self, path: &Path, text: &str) -> Result<(), TopologyError> {
        let fail = |key: String, message: String| TopologyError::Invalid {
            path: path.to_path_buf(),
            line: line_of_path(text, &key),
            message: keyed(&key, &message),
        };
        if self.datacenter.is_empty() {
            return Err(fail(
                "datacenter".into(),
                "a topology needs at least one datacenter".into(),
            ));
        }
        if self.datacenter.len() > MAX_DATACENTERS {
            return Err(fail(
                "datacenter".into(),
                format!("at most {MAX_DATACENTERS} datacenters"),
            ));
        }
        if !(1..=10).contains(&self.agent.raft_multiplier) {
            return Err(fail(
                "agent.raft_multiplier".into(),
                "must be between 1 and 10".into(),
            ));
        }
        for (name, dc) in &self.datacenter {
            let key = format!("datacenter.{name}");
            if !valid_dc_name(name) {
                return Err(fail(
                    key,
                    format!(
                        "datacenter name {name:?} must be 1–{MAX_DC_NAME} characters of a-z, 0-9 and '-', starting with a letter"
                    ),
                ));
            }
            let ranges = [
                ("servers", dc.servers, 1, MAX_SERVERS),
                ("clients", dc.clients, 0, MAX_CLIENTS),
                ("gateways", dc.gateways, 0, MAX_GATEWAYS),
            ];
            for (field, n, lo, hi) in ranges {
                if !(lo..=hi).contains(&n) {
                    return Err(fail(
                        format!("{key}.{field}"),
                        format!("{n} is out of range {lo}..={hi}"),
                    ));
                }
            }
        }
        self.validate_links(&fail)?;
        self.validate_security(&fail)
    }

    /// `[gossip]` against the rest: one source per key, a WAN key only where there is a
    /// WAN pool.
    fn validate_security(
        &self,
        fail: &dyn Fn(String, String) -> TopologyError,
    ) -> Result<(), TopologyError> {
        if self.gossip.encrypt && flag_given(&self.agent.extra_args, "encrypt") {
            return Err(fail(
                "gossip.encrypt".into(),
                "agent.extra_args already gives -encrypt; use one or the other".into(),
            ));
        }
        if self.gossip.encrypt_wan && self.datacenter.values().all(|d| d.gateways == 0) {
            return Err(fail(
                "gossip.encrypt_wan".into(),
                "no datacenter has gateways, so there is no WAN pool to encrypt".into(),
            ));
        }
        Ok(())
    }

    fn validate_links(
        &self,
        fail: &dyn Fn(String, String) -> TopologyError,
    ) -> Result<(), TopologyError> {
        let mut seen = std::collections::BTreeSet::new();
        for (a, peers) in &self.wan_link {
            for (b, link) in peers {
                let key = format!("wan_link.{a}.{b}");
                for dc in [a, b] {
                    if !self.datacenter.contains_key(dc) {
                        return Err(fail(key, format!("no datacenter named {dc:?}")));
                    }
                }
                if a == b {
                    return Err(fail(
                        key,
                        "a WAN link joins two different datacenters".into(),
                    ));
                }
                if !seen.insert((a.min(b), a.max(b))) {
                    return Err(fail(key, format!("the pair {a}, {b} is given twice")));
                }
                for dc in [a, b] {
                    if self.datacenter[dc].gateways == 0 {
                        return Err(fail(
                            key.clone(),
                            format!("datacenter {dc:?} has no gateways to reach the WAN"),
                        ));
                    }
                }
                for (field, value) in [("delay", &link.delay), ("jitter", &link.jitter)] {
                    if let Some(d) = value
                        && humantime::parse_duration(d).is_err()
                    {
                        return Err(fail(
                            format!("{key}.{field}"),
                            format!("{d:?} is not a duration (e.g. \"40ms\")"),
                        ));
                    }
                }
                if let Some(l) = link.loss_percent
                    && !(0.0..=100.0).contains(&l)
                {
                    return Err(fail(
                        format!("{key}.loss_percent"),
                        format!("{l} is not a percentage (0–100)"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether `args` give flag `name` (`-name V`, `--name V`, `-name=V`).
fn flag_given(args: &[String], name: &str) -> bool {
    args.iter().any(|a| {
        a.starts_with('-') && {
            let flag = a.trim_start_matches('-');
            flag == name || flag.strip_prefix(name).is_some_and(|r| r.starts_with('='))
        }
    })
}

/// Datacenter names become parts of host and namespace names.
fn valid_dc_name(name: &str) -> bool {
    name.len() <= MAX_DC_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `key: message`, or the message alone for the root.
fn keyed(key: &str, message: &str) -> String {
    if key.is_empty() || key == "." {
        message.to_string()
    } else {
        format!("{key}: {message}")
    }
}

/// hcl reports an unknown key at its parent; the key's own name is in the message.
fn with_unknown_field(path: &str, message: &str) -> String {
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    match unknown {
        Some(u) if path == "." => u.to_string(),
        Some(u) if !path.ends_with(u) => format!("{path}.{u}"),
        _ => path.to_string(),
    }
}

/// The 1-based line of byte offset `at`.
fn line_at(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests;
