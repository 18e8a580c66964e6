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
pub mod dirty;
mod files;
pub mod reload;
pub mod sync;
pub mod sync_acl;

use std::collections::BTreeMap;
use std::path::PathBuf;
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

/// How a service or check came to this agent: the token it syncs with (reference/acl.md
/// §5.8). Persisted with it; `Debug` never shows the token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The token the register request carried (`""`: none).
    #[serde(rename = "Token", default, skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// Defined in a config file: without a token of its own it syncs with
    /// `acl.tokens.config_file_service_registration`.
    #[serde(rename = "FromConfig", default, skip_serializing_if = "is_false")]
    pub from_config: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("token", &(!self.token.is_empty()).then_some("<set>"))
            .field("from_config", &self.from_config)
            .finish()
    }
}

#[derive(Default)]
struct Inner {
    services: BTreeMap<String, Service>,
    checks: BTreeMap<String, LocalCheck>,
    service_regs: BTreeMap<String, Registration>,
    check_regs: BTreeMap<String, Registration>,
    /// What the catalog has not seen yet.
    dirty: dirty::Dirty,
}

impl Inner {
    /// The name of local service `id` (empty if none).
    fn service_name(&self, id: &str) -> String {
        self.services
            .get(id)
            .map(|s| s.service.clone())
            .unwrap_or_default()
    }
}

/// The services and checks of this agent. Cheap to share behind an `Arc`.
pub struct LocalState {
    node: String,
    dir: Option<PathBuf>,
    inner: Mutex<Inner>,
    changed: Notify,
    /// Asks anti-entropy for a full pass (blocked entries retried): agent token changes.
    full_sync: Notify,
    /// Bumped on every change; blocking agent reads (`/v1/agent/service/:id?hash=`) wait on it.
    version: watch::Sender<u64>,
    /// [`dirty::Dirty::synced_through`], for API writes waiting for their own change.
    synced: watch::Sender<u64>,
}

impl std::fmt::Debug for LocalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalState")
            .field("node", &self.node)
            .finish()
    }
}

impl LocalState {
    /// Loads what a previous run persisted under `dir` (`None` = memory only).
    pub fn load(node: String, dir: Option<PathBuf>) -> Result<Self, LocalError> {
        let mut inner = Inner::default();
        if let Some(dir) = &dir {
            for (s, reg) in files::read_all::<Service>(&dir.join("services"))? {
                inner.service_regs.insert(s.id.clone(), reg);
                inner.services.insert(s.id.clone(), s);
            }
            for (c, reg) in files::read_all::<LocalCheck>(&dir.join("checks"))? {
                inner.check_regs.insert(c.check.check_id.clone(), reg);
                inner.checks.insert(c.check.check_id.clone(), c);
            }
        }
        Ok(Self {
            node,
            dir,
            inner: Mutex::new(inner),
            changed: Notify::new(),
            full_sync: Notify::new(),
            version: watch::Sender::new(0),
            synced: watch::Sender::new(0),
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

    /// Asks anti-entropy for a full pass now, blocked entries included.
    pub fn request_full_sync(&self) {
        self.full_sync.notify_one();
    }

    /// Resolves when [`Self::request_full_sync`] was called.
    pub async fn full_sync_requested(&self) {
        self.full_sync.notified().await;
    }

    fn notify(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
        self.changed.notify_one();
    }

    fn persist_service(&self, s: &Service, reg: &Registration) -> Result<(), LocalError> {
        match &self.dir {
            Some(dir) => files::write(&dir.join("services"), &files::file_name(&s.id), s, reg),
            None => Ok(()),
        }
    }

    fn persist_check(&self, c: &LocalCheck, reg: &Registration) -> Result<(), LocalError> {
        match &self.dir {
            Some(dir) => files::write(
                &dir.join("checks"),
                &files::file_name(&c.check.check_id),
                c,
                reg,
            ),
            None => Ok(()),
        }
    }

    fn unpersist(&self, kind: &str, id: &str) {
        if let Some(dir) = &self.dir {
            files::remove(&dir.join(kind), &files::file_name(id));
        }
    }

    /// Adds or replaces a service and its checks (all under `reg`); with `replace_checks`,
    /// the service's other checks are removed. Persisted before it is visible.
    pub fn add_service(
        &self,
        service: Service,
        checks: Vec<LocalCheck>,
        replace_checks: bool,
        reg: Registration,
    ) -> Result<(), LocalError> {
        self.persist_service(&service, &reg)?;
        for c in &checks {
            self.persist_check(c, &reg)?;
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
                inner.check_regs.remove(id);
                inner.dirty.check(id, &service.service);
            }
            for c in checks {
                inner.dirty.check(&c.check.check_id, &service.service);
                inner
                    .check_regs
                    .insert(c.check.check_id.clone(), reg.clone());
                inner.checks.insert(c.check.check_id.clone(), c);
            }
            inner.dirty.service(&service.id, &service.service);
            inner.service_regs.insert(service.id.clone(), reg);
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
            let Some(gone) = inner.services.remove(id) else {
                return false;
            };
            inner.dirty.service(id, &gone.service);
            inner.service_regs.remove(id);
            let ids: Vec<String> = inner
                .checks
                .values()
                .filter(|c| c.check.service_id == id)
                .map(|c| c.check.check_id.clone())
                .collect();
            for c in &ids {
                inner.checks.remove(c);
                inner.check_regs.remove(c);
                inner.dirty.forget_check(c);
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

    /// Adds or replaces a check, registered under `reg`.
    pub fn add_check(&self, check: LocalCheck, reg: Registration) -> Result<(), LocalError> {
        self.persist_check(&check, &reg)?;
        {
            let mut inner = self.inner.lock();
            let name = inner.service_name(&check.check.service_id);
            inner.dirty.check(&check.check.check_id, &name);
            inner.check_regs.insert(check.check.check_id.clone(), reg);
            inner.checks.insert(check.check.check_id.clone(), check);
        }
        self.notify();
        Ok(())
    }

    /// Removes a check; false if it was not registered.
    pub fn remove_check(&self, id: &str) -> bool {
        {
            let mut inner = self.inner.lock();
            let Some(gone) = inner.checks.remove(id) else {
                return false;
            };
            let name = inner.service_name(&gone.check.service_id);
            inner.dirty.check(id, &name);
            inner.check_regs.remove(id);
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
            let c = c.clone();
            let name = inner.service_name(&c.check.service_id);
            inner.dirty.check(id, &name);
            let reg = inner.check_regs.get(id).cloned().unwrap_or_default();
            status_changed.then_some((c, reg))
        };
        if let Some((c, reg)) = changed
            && let Err(e) = self.persist_check(&c, &reg)
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

    /// How a service was registered (default if unknown).
    pub fn service_registration(&self, id: &str) -> Registration {
        let inner = self.inner.lock();
        inner.service_regs.get(id).cloned().unwrap_or_default()
    }

    /// How a check was registered (default if unknown).
    pub fn check_registration(&self, id: &str) -> Registration {
        let inner = self.inner.lock();
        inner.check_regs.get(id).cloned().unwrap_or_default()
    }

    /// A check by ID.
    pub fn check(&self, id: &str) -> Option<LocalCheck> {
        self.inner.lock().checks.get(id).cloned()
    }

    /// All checks, by ID.
    pub fn checks(&self) -> Vec<LocalCheck> {
        self.inner.lock().checks.values().cloned().collect()
    }

    /// The checks of service `id`, as the catalog rows a registration carries.
    pub fn service_checks(&self, id: &str) -> Vec<Check> {
        let inner = self.inner.lock();
        inner
            .checks
            .values()
            .filter(|c| c.check.service_id == id)
            .map(|c| c.check.clone())
            .collect()
    }

    /// The generation of the last change (see `dirty.rs`).
    pub fn generation(&self) -> u64 {
        self.inner.lock().dirty.generation()
    }

    /// The entries the catalog has not seen yet.
    pub fn pending(&self) -> dirty::Pending {
        self.inner.lock().dirty.pending()
    }

    /// Marks `done` synced (unless changed again since).
    pub fn settle(&self, done: &[(dirty::Kind, String, u64)]) {
        if done.is_empty() {
            return;
        }
        let through = {
            let mut inner = self.inner.lock();
            inner.dirty.settle(done);
            inner.dirty.synced_through()
        };
        self.synced.send_if_modified(|v| {
            let moved = through > *v;
            *v = (*v).max(through);
            moved
        });
    }

    /// Resolves once every change up to generation `seq` is synced.
    pub async fn synced_through(&self, seq: u64) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|v| *v >= seq).await;
    }
}

/// The local state with its check runners and catalog side, as the API uses them.
pub struct LocalAgent {
    /// Services and checks.
    pub state: Arc<LocalState>,
    /// Check tasks.
    pub runners: Arc<checks::Runners>,
    /// Anti-entropy: where it writes, as whom, what ACLs blocked.
    pub sync: Arc<sync::Syncer>,
}

impl LocalAgent {
    /// Asks for a full anti-entropy pass (blocked writes retried): the agent's token changed.
    pub fn trigger_full_sync(&self) {
        self.state.request_full_sync();
    }
}

/// How long an API write waits for its own sync before answering (the background loop
/// retries if it fails).
const SYNC_ON_WRITE: Duration = Duration::from_secs(5);

impl LocalAgent {
    /// After a registration change: (re)start check tasks and push the change to the catalog
    /// now, so the writer reads it back at once. A failed push is retried in the background.
    pub async fn applied(&self) {
        self.runners.reconcile();
        // Anti-entropy's loop writes just the changed entries (batched with other writers'
        // changes); this waits until ours are among the synced ones.
        let seq = self.state.generation();
        let synced = self.state.synced_through(seq);
        if tokio::time::timeout(SYNC_ON_WRITE, synced).await.is_err() {
            tracing::debug!("sync after write timed out; will retry");
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
        let reg = Registration {
            token: "t1".into(),
            from_config: false,
        };
        s.add_service(
            svc("web/../1"),
            vec![check("c1", "web/../1")],
            false,
            reg.clone(),
        )
        .expect("add");
        s.add_check(check("node-check", ""), Registration::default())
            .expect("add check");
        assert!(s.set_status("c1", HealthStatus::Passing, "ok"));
        let again = LocalState::load("n1".into(), Some(dir.path().into())).expect("reload");
        assert_eq!(again.services(), vec![svc("web/../1")]);
        assert_eq!(again.checks().len(), 2);
        assert_eq!(
            again.check("c1").map(|c| c.check.status),
            Some(HealthStatus::Passing)
        );
        assert_eq!(again.service_registration("web/../1"), reg);
        assert_eq!(
            again.check_registration("c1"),
            reg,
            "a service's checks share its token"
        );
        assert!(!format!("{reg:?}").contains("t1"), "Debug hides the token");
        // Replacing the service's checks drops the others, on disk too.
        again
            .add_service(
                svc("web/../1"),
                vec![check("c2", "web/../1")],
                true,
                Registration::default(),
            )
            .expect("replace");
        assert!(again.remove_service("web/../1"));
        let third = LocalState::load("n1".into(), Some(dir.path().into())).expect("reload");
        assert!(third.services().is_empty());
        assert_eq!(third.checks().len(), 1, "only the node check is left");
        assert!(!third.remove_check("c1"));
    }
}
