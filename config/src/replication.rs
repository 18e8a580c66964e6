//! Meridian's built-in KV replication between datacenters (#16; Consul needs the separate
//! consul-replicate daemon): `replication { source_datacenter = "dc1" prefixes = ["config/"]
//! exclude = ["config/local/"] }` on a destination datacenter's servers. Pure: the rules
//! only; the agent's `server/replication.rs` does the work.

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// The `replication` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationConfig {
    /// The datacenter whose KV is copied here. Empty: no replication.
    pub source_datacenter: String,
    /// KV prefixes copied (every key under each).
    pub prefixes: Vec<String>,
    /// Prefixes left out, even under a replicated one (neither copied nor deleted here).
    pub exclude: Vec<String>,
}

impl ReplicationConfig {
    /// Whether replication is configured.
    pub fn is_on(&self) -> bool {
        !self.source_datacenter.is_empty()
    }

    /// The replicated prefix `key` falls under, unless it is excluded.
    pub fn covers(&self, key: &str) -> Option<&str> {
        if !self.is_on() || self.exclude.iter().any(|e| key.starts_with(e.as_str())) {
            return None;
        }
        self.prefixes
            .iter()
            .find(|p| key.starts_with(p.as_str()))
            .map(String::as_str)
    }

    /// The rules, each error naming its key: a source other than this datacenter, at least
    /// one prefix, no empty prefix (which would replicate the whole KV store by accident).
    pub(crate) fn validate(&self, datacenter: &str) -> Result<(), ConfigError> {
        if !self.is_on() {
            if !self.prefixes.is_empty() || !self.exclude.is_empty() {
                return Err(ConfigError::invalid(
                    "replication.source_datacenter",
                    "is required when replication.prefixes or exclude are set",
                ));
            }
            return Ok(());
        }
        if self.source_datacenter == datacenter {
            return Err(ConfigError::invalid(
                "replication.source_datacenter",
                format!("{datacenter:?} is this datacenter; name the one to copy from"),
            ));
        }
        if self.prefixes.is_empty() {
            return Err(ConfigError::invalid(
                "replication.prefixes",
                "name at least one KV prefix to replicate (\"config/\")",
            ));
        }
        if let Some(i) = self.prefixes.iter().position(String::is_empty) {
            return Err(ConfigError::invalid(
                "replication.prefixes",
                format!("entry {i} is empty, which would replicate every key; name the prefixes"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(prefixes: &[&str], exclude: &[&str]) -> ReplicationConfig {
        ReplicationConfig {
            source_datacenter: "dc1".into(),
            prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn prefixes_minus_exclusions() {
        let c = cfg(&["config/", "app/"], &["config/local/"]);
        assert_eq!(c.covers("config/db"), Some("config/"));
        assert_eq!(c.covers("app/x"), Some("app/"));
        assert_eq!(c.covers("config/local/x"), None);
        assert_eq!(c.covers("other"), None);
        assert_eq!(ReplicationConfig::default().covers("config/db"), None);
    }

    #[test]
    fn rules_name_the_key() {
        let e = |c: ReplicationConfig| c.validate("dc2").unwrap_err().key().map(str::to_string);
        assert!(cfg(&["config/"], &[]).validate("dc2").is_ok());
        assert!(ReplicationConfig::default().validate("dc2").is_ok());
        assert_eq!(e(cfg(&[], &[])).as_deref(), Some("replication.prefixes"));
        assert_eq!(e(cfg(&[""], &[])).as_deref(), Some("replication.prefixes"));
        let own = cfg(&["a/"], &[]).validate("dc1").unwrap_err();
        assert_eq!(own.key(), Some("replication.source_datacenter"));
        let orphan = ReplicationConfig {
            prefixes: vec!["a/".into()],
            ..ReplicationConfig::default()
        };
        assert_eq!(e(orphan).as_deref(), Some("replication.source_datacenter"));
    }
}
