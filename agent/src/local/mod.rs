//! The agent's local state (Consul's `agent/local`): the services and checks this agent owns,
//! as registered through `/v1/agent/*` or config. The agent is their source of truth: they
//! are persisted under `data_dir` (one JSON file each, atomic write + fsync) so a restarted
//! agent brings them back without re-registration, and anti-entropy (`sync.rs`) makes the
//! catalog agree with them. Check runners (`checks.rs`) write statuses here.
//!
//! ```text
//!   /v1/agent/* ──▶ LocalState ──changed──▶ sync::run ──CatalogSync──▶ servers (raft)
//!                      ▲   └── files: services/<hex id>.json, checks/<hex id>.json
//!   checks::Runners ───┘ (status, output)
//! ```

pub mod checks;
pub mod reload;
pub mod sync;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::catalog::{Check, HealthStatus, Service};

/// Why local state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// Filesystem trouble.
    #[error("agent state {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A persisted file does not parse.
    #[error("agent state {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

/// A check this agent owns: the catalog row plus what runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalCheck {
    /// The row as the catalog should show it (status and output kept current).
    pub check: Check,
    /// TTL of a TTL check, in milliseconds.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    /// Command and arguments of a script check (run without a shell).
    #[serde(default)]
    pub args: Vec<String>,
    /// Consecutive passing results before the status turns passing (0 = at once).
    #[serde(default)]
    pub success_before_passing: u32,
    /// Consecutive failures before warning (0 = same as critical).
    #[serde(default)]
    pub failures_before_warning: u32,
    /// Consecutive failures before critical (0 = at once).
    #[serde(default)]
    pub failures_before_critical: u32,
}

impl LocalCheck {
    /// The TTL, if this is a TTL check.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl_ms.map(Duration::from_millis)
    }
}

#[derive(Default)]
struct Inner {
    services: BTreeMap<String, Service>,
    checks: BTreeMap<String, LocalCheck>,
}

/// The services and checks of this agent. Cheap to share behind an `Arc`.
pub struct LocalState {
    node: String,
    dir: Option<PathBuf>,
    inner: Mutex<Inner>,
    changed: Notify,
    /// Bumped on every change; blocking agent reads (`/v1/agent/service/:id?hash=`) wait on it.
    version: watch::Sender<u64>,
}

impl std::fmt::Debug for LocalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalState")
            .field("node", &self.node)
            .finish()
    }
}

/// File name of an ID: hex, so IDs with `/` or `..` stay inside the directory.
fn file_name(id: &str) -> String {
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.json")
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), LocalError> {
    let io = |source| LocalError::Io {
        path: dir.join(name),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(dir.join(name)).map_err(|e| io(e.error))?;
    Ok(())
}

fn read_all<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<Vec<T>, LocalError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LocalError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read(&path).map_err(|source| LocalError::Io {
            path: path.clone(),
            source,
        })?;
        out.push(
            serde_json::from_slice(&text).map_err(|source| LocalError::Json { path, source })?,
        );
    }
    Ok(out)
}

impl LocalState {
    /// Loads what a previous run persisted under `dir` (`None` = memory only).
    pub fn load(node: String, dir: Option<PathBuf>) -> Result<Self, LocalError> {
        let mut inner = Inner::default();
        if let Some(dir) = &dir {
            for s in read_all::<Service>(&dir.join("services"))? {
                inner.services.insert(s.id.clone(), s);
            }
            for c in read_all::<LocalCheck>(&dir.join("checks"))? {
                inner.checks.insert(c.check.check_id.clone(), c);
            }
        }
        Ok(Self {
            node,
            dir,
            inner: Mutex::new(inner),
            changed: Notify::new(),
            version: watch::Sender::new(0),
        })
    }

    /// This agent's node name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Resolves when something changed since the last call (anti-entropy waits on it).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Watches a counter that moves on every change (any number of watchers, unlike
    /// [`Self::changed`], which wakes one).
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn notify(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
        self.changed.notify_one();
    }

    fn persist_service(&self, s: &Service) -> Result<(), LocalError> {
        match &self.dir {
            Some(dir) => write_atomic(
                &dir.join("services"),
                &file_name(&s.id),
                &serde_json::to_vec(s).unwrap_or_default(),
            ),
            None => Ok(()),
        }
    }

    fn persist_check(&self, c: &LocalCheck) -> Result<(), LocalError> {
        match &self.dir {
            Some(dir) => write_atomic(
                &dir.join("checks"),
                &file_name(&c.check.check_id),
                &serde_json::to_vec(c).unwrap_or_default(),
            ),
            None => Ok(()),
        }
    }

    fn unpersist(&self, kind: &str, id: &str) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join(kind).join(file_name(id)));
        }
    }

    /// Adds or replaces a service and its checks; with `replace_checks`, the service's other
    /// checks are removed. Persisted before it is visible.
    pub fn add_service(
        &self,
        service: Service,
        checks: Vec<LocalCheck>,
        replace_checks: bool,
    ) -> Result<(), LocalError> {
        self.persist_service(&service)?;
        for c in &checks {
            self.persist_check(c)?;
        }
        let stale: Vec<String> = {
            let mut inner = self.inner.lock();
            let keep: Vec<String> = checks.iter().map(|c| c.check.check_id.clone()).collect();
            let stale = if replace_checks {
                inner
                    .checks
                    .values()
                    .filter(|c| c.check.service_id == service.id)
                    .map(|c| c.check.check_id.clone())
                    .filter(|id| !keep.contains(id))
                    .collect()
            } else {
                Vec::new()
            };
            for id in &stale {
                inner.checks.remove(id);
            }
            for c in checks {
                inner.checks.insert(c.check.check_id.clone(), c);
            }
            inner.services.insert(service.id.clone(), service);
            stale
        };
        for id in stale {
            self.unpersist("checks", &id);
        }
        self.notify();
        Ok(())
    }

    /// Removes a service and its checks; false if it was not registered.
    pub fn remove_service(&self, id: &str) -> bool {
        let removed_checks: Vec<String> = {
            let mut inner = self.inner.lock();
            if inner.services.remove(id).is_none() {
                return false;
            }
            let ids: Vec<String> = inner
                .checks
                .values()
                .filter(|c| c.check.service_id == id)
                .map(|c| c.check.check_id.clone())
                .collect();
            for c in &ids {
                inner.checks.remove(c);
            }
            ids
        };
        self.unpersist("services", id);
        for c in removed_checks {
            self.unpersist("checks", &c);
        }
        self.notify();
        true
    }

    /// Adds or replaces a check.
    pub fn add_check(&self, check: LocalCheck) -> Result<(), LocalError> {
        self.persist_check(&check)?;
        self.inner
            .lock()
            .checks
            .insert(check.check.check_id.clone(), check);
        self.notify();
        Ok(())
    }

    /// Removes a check; false if it was not registered.
    pub fn remove_check(&self, id: &str) -> bool {
        if self.inner.lock().checks.remove(id).is_none() {
            return false;
        }
        self.unpersist("checks", id);
        self.notify();
        true
    }

    /// Records a check result; false if the check is unknown. Persisted only when the status
    /// changes (so a restarted agent keeps it), synced at once.
    pub fn set_status(&self, id: &str, status: HealthStatus, output: &str) -> bool {
        let changed = {
            let mut inner = self.inner.lock();
            let Some(c) = inner.checks.get_mut(id) else {
                return false;
            };
            if c.check.status == status && c.check.output == output {
                return true;
            }
            let status_changed = c.check.status != status;
            c.check.status = status;
            c.check.output = output.to_string();
            status_changed.then(|| c.clone())
        };
        if let Some(c) = changed
            && let Err(e) = self.persist_check(&c)
        {
            tracing::warn!(check = id, cause = %e, "could not persist check status");
        }
        self.notify();
        true
    }

    /// A service by ID.
    pub fn service(&self, id: &str) -> Option<Service> {
        self.inner.lock().services.get(id).cloned()
    }

    /// All services, by ID.
    pub fn services(&self) -> Vec<Service> {
        self.inner.lock().services.values().cloned().collect()
    }

    /// A check by ID.
    pub fn check(&self, id: &str) -> Option<LocalCheck> {
        self.inner.lock().checks.get(id).cloned()
    }

    /// All checks, by ID.
    pub fn checks(&self) -> Vec<LocalCheck> {
        self.inner.lock().checks.values().cloned().collect()
    }
}

/// The local state with its check runners and catalog side, as the API uses them.
pub struct LocalAgent {
    /// Services and checks.
    pub state: Arc<LocalState>,
    /// Check tasks.
    pub runners: Arc<checks::Runners>,
    /// Where anti-entropy writes.
    pub catalog: Arc<dyn sync::CatalogSync>,
    /// This node as registrations carry it.
    pub node: sync::NodeInfo,
}

/// How long an API write waits for its own sync before answering (the background pass
/// retries if this one fails).
const SYNC_ON_WRITE: Duration = Duration::from_secs(5);

impl LocalAgent {
    /// After a registration change: (re)start check tasks and push the change to the catalog
    /// now, so the writer reads it back at once. A failed push is retried in the background.
    pub async fn applied(&self) {
        self.runners.reconcile();
        let pass = sync::sync_full(&self.state, self.catalog.as_ref(), &self.node);
        match tokio::time::timeout(SYNC_ON_WRITE, pass).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(cause = %e, "sync after write failed; will retry"),
            Err(_) => tracing::debug!("sync after write timed out; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(id: &str) -> Service {
        Service {
            id: id.into(),
            service: "web".into(),
            port: 80,
            ..Service::default()
        }
    }

    fn check(id: &str, service: &str) -> LocalCheck {
        LocalCheck {
            check: Check {
                check_id: id.into(),
                name: id.into(),
                service_id: service.into(),
                status: HealthStatus::Critical,
                ..Check::default()
            },
            ttl_ms: Some(1000),
            ..LocalCheck::default()
        }
    }

    #[test]
    fn services_and_checks_survive_a_reload_and_ids_stay_in_their_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = LocalState::load("n1".into(), Some(dir.path().into())).expect("load");
        s.add_service(svc("web/../1"), vec![check("c1", "web/../1")], false)
            .expect("add");
        s.add_check(check("node-check", "")).expect("add check");
        assert!(s.set_status("c1", HealthStatus::Passing, "ok"));
        let again = LocalState::load("n1".into(), Some(dir.path().into())).expect("reload");
        assert_eq!(again.services(), vec![svc("web/../1")]);
        assert_eq!(again.checks().len(), 2);
        assert_eq!(
            again.check("c1").map(|c| c.check.status),
            Some(HealthStatus::Passing)
        );
        // Replacing the service's checks drops the others, on disk too.
        again
            .add_service(svc("web/../1"), vec![check("c2", "web/../1")], true)
            .expect("replace");
        assert!(again.remove_service("web/../1"));
        let third = LocalState::load("n1".into(), Some(dir.path().into())).expect("reload");
        assert!(third.services().is_empty());
        assert_eq!(third.checks().len(), 1, "only the node check is left");
        assert!(!third.remove_check("c1"));
    }
}
