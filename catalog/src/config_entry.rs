//! Config entries (Consul's `config_entries` table): cluster-wide settings by kind and name,
//! written with `PUT /v1/config` and replicated like the rest of the state.
//!
//! Meridian stores and serves them but does not act on them: most kinds configure Connect
//! (proxies, gateways, intentions), which Meridian does not have. An entry keeps the fields
//! the user sent as they were sent; only `Kind`, `Name` and the raft indexes are Meridian's.
//! [`validate`] runs in the HTTP handler (to answer 400 before proposing) and again in
//! `apply`. No I/O here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::rows::Table;
use super::{Response, State};

/// The kinds Consul knows (`structs.MakeConfigEntry`, community edition).
pub const KINDS: &[&str] = &[
    "service-defaults",
    "proxy-defaults",
    "service-router",
    "service-splitter",
    "service-resolver",
    "ingress-gateway",
    "terminating-gateway",
    "service-intentions",
    "mesh",
    "exported-services",
    "sameness-group",
    "api-gateway",
    "bound-api-gateway",
    "file-system-certificate",
    "inline-certificate",
    "http-route",
    "tcp-route",
    "jwt-provider",
];

/// The only name a `proxy-defaults` entry may have (Consul's `ProxyConfigGlobal`).
pub const PROXY_DEFAULTS_NAME: &str = "global";
/// The name of the `mesh` entry, whatever name was sent (Consul's `MeshConfigMesh`).
pub const MESH_NAME: &str = "mesh";

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigEntry {
    /// One of [`KINDS`].
    pub kind: String,
    /// Name, unique within the kind.
    pub name: String,
    /// Every other top-level field of the entry as the user sent it.
    pub fields: Map<String, Value>,
    /// Raft index of the write that created it.
    pub create_index: u64,
    /// Raft index of the last write to it.
    pub modify_index: u64,
}

impl ConfigEntry {
    /// The entry as the API returns it: `Kind`, `Name`, the user's fields, then the indexes.
    pub fn to_api(&self) -> Value {
        let mut out = Map::with_capacity(self.fields.len() + 4);
        out.insert("Kind".into(), self.kind.clone().into());
        out.insert("Name".into(), self.name.clone().into());
        for (k, v) in &self.fields {
            out.insert(k.clone(), v.clone());
        }
        out.insert("CreateIndex".into(), self.create_index.into());
        out.insert("ModifyIndex".into(), self.modify_index.into());
        Value::Object(out)
    }
}

/// Why an entry cannot be stored or named. Messages are Consul's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigEntryError {
    /// Not one of [`KINDS`].
    #[error("invalid config entry kind: {0}")]
    Kind(String),
    /// An empty name.
    #[error("Name is required")]
    NoName,
    /// `proxy-defaults` named other than `global`.
    #[error("invalid name ({0:?}), only \"global\" is supported")]
    ProxyDefaultsName(String),
}

/// Checks that `kind` is known (reads and deletes name it in the path).
pub fn validate_kind(kind: &str) -> Result<(), ConfigEntryError> {
    if KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(ConfigEntryError::Kind(kind.to_string()))
    }
}

/// Checks an entry's kind and name as `apply` will.
pub fn validate(kind: &str, name: &str) -> Result<(), ConfigEntryError> {
    validate_kind(kind)?;
    if name.is_empty() {
        return Err(ConfigEntryError::NoName);
    }
    if kind == "proxy-defaults" && name != PROXY_DEFAULTS_NAME {
        return Err(ConfigEntryError::ProxyDefaultsName(name.to_string()));
    }
    Ok(())
}

impl State {
    /// Upserts `entry` (its indexes are set here). With `cas`, only if the stored entry's
    /// `ModifyIndex` equals it, where 0 means "only if absent" (Consul's
    /// `ensureConfigEntryCASTxn`); a failed check answers `false` and changes nothing.
    pub(crate) fn config_entry_set(
        &mut self,
        index: u64,
        entry: &ConfigEntry,
        cas: Option<u64>,
    ) -> Response {
        if let Err(e) = validate(&entry.kind, &entry.name) {
            return Response::Rejected(e.to_string());
        }
        let key = (entry.kind.clone(), entry.name.clone());
        let existing = self.config_entries.get(&key);
        let current = existing.map(|e| e.modify_index);
        if cas.is_some_and(|c| current.unwrap_or(0) != c) {
            return Response::Bool(false);
        }
        let create_index = existing.map_or(index, |e| e.create_index);
        let stored = ConfigEntry {
            create_index,
            modify_index: index,
            ..entry.clone()
        };
        self.config_entries.insert(key, stored);
        self.tables.config_entries = index;
        self.touch(
            Table::ConfigEntries,
            Self::service_key(&entry.kind, &entry.name),
        );
        Response::Bool(true)
    }

    /// Deletes an entry; deleting a missing one succeeds. With `cas`, only if the stored
    /// entry's `ModifyIndex` equals it (a missing entry fails the check).
    pub(crate) fn config_entry_delete(
        &mut self,
        index: u64,
        kind: &str,
        name: &str,
        cas: Option<u64>,
    ) -> Response {
        let key = (kind.to_string(), name.to_string());
        let current = self.config_entries.get(&key).map(|e| e.modify_index);
        if cas.is_some_and(|c| current != Some(c)) {
            return Response::Bool(false);
        }
        if self.config_entries.remove(&key).is_some() {
            self.tables.config_entries = index;
            self.touch(Table::ConfigEntries, Self::service_key(kind, name));
        }
        Response::Bool(true)
    }

    /// One entry.
    pub fn config_entry(&self, kind: &str, name: &str) -> Option<&ConfigEntry> {
        self.config_entries
            .get(&(kind.to_string(), name.to_string()))
    }

    /// Every entry of `kind`, by name.
    pub fn config_entries_of<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = &'a ConfigEntry> + 'a {
        self.config_entries
            .range((kind.to_string(), String::new())..)
            .take_while(move |((k, _), _)| k == kind)
            .map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, Request};
    use serde_json::json;

    fn entry(kind: &str, name: &str, protocol: &str) -> ConfigEntry {
        let fields = json!({ "Protocol": protocol, "Meta": { "a": "b" } });
        ConfigEntry {
            kind: kind.into(),
            name: name.into(),
            fields: fields.as_object().cloned().unwrap_or_default(),
            create_index: 0,
            modify_index: 0,
        }
    }

    fn set(s: &mut State, index: u64, e: ConfigEntry, cas: Option<u64>) -> Response {
        let cmd = Command::ConfigEntrySet {
            entry: Box::new(e),
            cas,
        };
        s.apply(index, &Request::new(1, cmd))
    }

    fn delete(s: &mut State, index: u64, name: &str, cas: Option<u64>) -> Response {
        let cmd = Command::ConfigEntryDelete {
            kind: "service-defaults".into(),
            name: name.into(),
            cas,
        };
        s.apply(index, &Request::new(1, cmd))
    }

    #[test]
    fn upsert_keeps_create_index_and_the_fields_as_sent() {
        let mut s = State::new();
        assert_eq!(
            set(&mut s, 5, entry("service-defaults", "web", "http"), None),
            Response::Bool(true)
        );
        assert_eq!(
            set(&mut s, 7, entry("service-defaults", "web", "grpc"), None),
            Response::Bool(true)
        );
        let e = s.config_entry("service-defaults", "web").expect("stored");
        assert_eq!((e.create_index, e.modify_index), (5, 7));
        let api = e.to_api();
        assert_eq!(api["Kind"], "service-defaults");
        assert_eq!(api["Name"], "web");
        assert_eq!(api["Protocol"], "grpc");
        assert_eq!(api["Meta"]["a"], "b");
        assert_eq!(api["ModifyIndex"], 7);
        assert_eq!(s.table_indexes().config_entries, 7);
    }

    #[test]
    fn cas_writes_and_deletes_apply_only_on_a_matching_index() {
        let mut s = State::new();
        // cas=0 creates only if absent.
        assert_eq!(
            set(&mut s, 3, entry("service-defaults", "web", "http"), Some(0)),
            Response::Bool(true)
        );
        assert_eq!(
            set(&mut s, 4, entry("service-defaults", "web", "tcp"), Some(0)),
            Response::Bool(false)
        );
        assert_eq!(
            set(&mut s, 5, entry("service-defaults", "web", "tcp"), Some(99)),
            Response::Bool(false)
        );
        assert_eq!(
            set(&mut s, 6, entry("service-defaults", "web", "grpc"), Some(3)),
            Response::Bool(true)
        );
        assert_eq!(
            s.config_entry("service-defaults", "web")
                .map(|e| e.modify_index),
            Some(6)
        );
        assert_eq!(delete(&mut s, 7, "web", Some(3)), Response::Bool(false));
        assert!(s.config_entry("service-defaults", "web").is_some());
        assert_eq!(delete(&mut s, 8, "web", Some(6)), Response::Bool(true));
        assert!(s.config_entry("service-defaults", "web").is_none());
        assert_eq!(s.table_indexes().config_entries, 8);
        // A missing entry: a plain delete succeeds and changes nothing, a cas delete fails.
        assert_eq!(delete(&mut s, 9, "web", None), Response::Bool(true));
        assert_eq!(delete(&mut s, 10, "web", Some(8)), Response::Bool(false));
        assert_eq!(s.table_indexes().config_entries, 8);
    }

    #[test]
    fn kinds_and_names_are_validated_in_apply() {
        let mut s = State::new();
        let bad = set(&mut s, 1, entry("service-default", "web", "http"), None);
        assert_eq!(
            bad,
            Response::Rejected("invalid config entry kind: service-default".into())
        );
        let bad = set(&mut s, 2, entry("service-defaults", "", "http"), None);
        assert_eq!(bad, Response::Rejected("Name is required".into()));
        let bad = set(&mut s, 3, entry("proxy-defaults", "web", "http"), None);
        assert!(matches!(bad, Response::Rejected(m) if m.contains("only \"global\"")));
        assert_eq!(
            set(&mut s, 4, entry("proxy-defaults", "global", "http"), None),
            Response::Bool(true)
        );
        assert_eq!(s.table_indexes().config_entries, 4);
    }

    #[test]
    fn entries_list_by_kind_and_survive_restore() {
        let mut s = State::new();
        set(&mut s, 1, entry("service-defaults", "b", "http"), None);
        set(&mut s, 2, entry("service-defaults", "a", "http"), None);
        set(&mut s, 3, entry("service-resolver", "a", "http"), None);
        let names: Vec<&str> = s
            .config_entries_of("service-defaults")
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let changes = s.take_changes();
        assert!(
            changes
                .iter()
                .any(|c| c.table == Table::ConfigEntries && c.value.is_some())
        );
        let restored = State::restore(s.rows()).expect("restore");
        assert_eq!(
            restored.config_entry("service-resolver", "a"),
            s.config_entry("service-resolver", "a")
        );
        assert_eq!(restored.table_indexes().config_entries, 3);
    }
}
