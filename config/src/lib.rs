//! Meridian agent configuration: Consul's keys, files, flags and defaults.
//!
//! Consul users bring their config files and flags unchanged: the keys are Consul's snake_case
//! names, files may be JSON or HCL, durations are Go strings, and `normalize_args` accepts
//! `-single-dash` long flags.
//!
//! ```text
//!  AgentFlags ──┐
//!  MERIDIAN_* ──┤   figment layers (load.rs)      typed Config       validate()
//!  files/dirs ──┼─▶ dev < files < -hcl < env < ──▶ (config.rs) ──▶ (validate.rs) ──▶ Config
//!  -dev ────────┘   flags; each checked alone
//! ```
//!
//! Before its typed check, each layer loses the Consul keys Meridian does not act on
//! (`consul_keys.rs`); they come back as [`ConfigWarning`]s in `Config::warnings`, for the
//! agent to log once. Keys Consul does not know stay errors.
//!
//! Owns: the `Config` structs and defaults, loading, validation, `AgentFlags`, argument
//! normalization and Go durations. Must not: open sockets, spawn tasks or log.
#![warn(missing_docs)]

mod acl;
mod args;
mod config;
mod consul_keys;
pub mod duration;
mod error;
mod event_handler;
mod files;
mod flags;
mod hcl_scan;
mod load;
mod replication;
mod telemetry;
mod tls;
mod validate;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_consul;
#[cfg(test)]
mod tests_tls;

pub use acl::{AclConfig, AclDefaultPolicy, AclDownPolicy, AclTokensConfig};
pub use args::normalize_args;
pub use config::{
    AddressesConfig, Config, DnsConfig, LimitsConfig, PerformanceConfig, PortsConfig, RaftTiming,
    SoaConfig, UiConfig, default_node_name,
};
pub use consul_keys::{ConfigWarning, WarningKind};
pub use error::ConfigError;
pub use event_handler::{EventFilter, EventHandler, EventHandlerError};
pub use flags::{AgentFlags, parse_duration_flag};
pub use load::{ENV_PREFIX, Hcl, validate_path, validate_paths, validate_text};
pub use replication::ReplicationConfig;
pub use telemetry::TelemetryConfig;
pub use tls::{ResolvedTls, TlsConfig, TlsProtocol, TlsProtocolConfig, TlsVersion};
