//! Service definitions from config files (`service { ... }`, `services = [...]` in
//! `-config-file` / `-config-dir`) and reloading them (`SIGHUP`, `PUT /v1/agent/reload`),
//! as Consul does: defined services are added or replaced, services that a reload no longer
//! defines are removed, and services registered through the API are left alone. A reload
//! also re-reads the server RPC and HTTPS TLS certificates (`cluster::tls::reload`); if they do not
//! load, the running ones stay and the reload reports the error.

use std::collections::BTreeSet;
use std::sync::Arc;

use meridian_config::Config;
use meridian_tls::{Purpose, TlsContext};
use parking_lot::Mutex;
use tracing::info;

use super::{LocalAgent, Registration};

/// A definition's own `token` (any key case), which its service syncs with (§5.8).
fn definition_token(def: &serde_json::Value) -> String {
    def.as_object()
        .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case("token")))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_default()
        .to_string()
}

/// Re-reads the agent's configuration (the same files and flags as at start).
pub type ConfigSource = Box<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// Something else a reload applies from the new configuration (e.g. a changed
/// `primary_datacenter`); its error is the reload's.
pub type ReloadHook =
    Box<dyn Fn(&Config) -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Applies config-defined services to local state, at start and on every reload.
pub struct Reload {
    source: Option<ConfigSource>,
    local: Arc<LocalAgent>,
    /// IDs of the services the last applied config defined.
    from_config: Mutex<BTreeSet<String>>,
    /// One reload at a time.
    serial: tokio::sync::Mutex<()>,
    /// Server RPC TLS, whose certificates a reload re-reads.
    tls: Option<TlsContext>,
    /// HTTPS API TLS, likewise.
    https_tls: Option<TlsContext>,
    /// Run on every reload (not at start), after the above.
    hooks: Vec<ReloadHook>,
}

impl std::fmt::Debug for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reload").finish_non_exhaustive()
    }
}

impl Reload {
    /// A reloader of `local`'s config services; without a `source` reloads are refused.
    pub fn new(source: Option<ConfigSource>, local: Arc<LocalAgent>) -> Self {
        Self {
            source,
            local,
            from_config: Mutex::new(BTreeSet::new()),
            serial: tokio::sync::Mutex::new(()),
            tls: None,
            https_tls: None,
            hooks: Vec::new(),
        }
    }

    /// Also runs `hook` with the new configuration on every reload.
    pub fn with_hook(mut self, hook: ReloadHook) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Also reloads the certificates of `rpc` (server RPC) and `https` (the HTTPS API) on
    /// every reload.
    pub fn with_tls(mut self, rpc: Option<TlsContext>, https: Option<TlsContext>) -> Self {
        self.tls = rpc;
        self.https_tls = https;
        self
    }

    /// The TLS contexts a reload re-reads (server RPC, HTTPS), for their counters.
    pub fn tls_contexts(&self) -> impl Iterator<Item = &TlsContext> {
        self.tls.iter().chain(self.https_tls.iter())
    }

    /// Applies `cfg`'s service definitions. All are parsed first: one bad definition
    /// changes nothing and names itself in the error.
    pub async fn apply(&self, cfg: &Config) -> Result<(), String> {
        let _serial = self.serial.lock().await;
        let node = self.local.state.node().to_string();
        let mut parsed = Vec::new();
        for (i, def) in cfg.service_definitions().into_iter().enumerate() {
            let scripts = cfg.enable_script_checks || cfg.enable_local_script_checks;
            let (svc, checks) = crate::http::service_definition(def, &node, scripts)
                .map_err(|e| format!("service definition #{}: {e}", i + 1))?;
            parsed.push((svc, checks, definition_token(def)));
        }
        let ids: BTreeSet<String> = parsed.iter().map(|(s, _, _)| s.id.clone()).collect();
        for (svc, checks, token) in parsed {
            let reg = Registration {
                token,
                from_config: true,
            };
            self.local
                .state
                .add_service(svc, checks, true, reg)
                .map_err(|e| e.to_string())?;
        }
        let gone: Vec<String> = {
            let mut from_config = self.from_config.lock();
            let gone = from_config.difference(&ids).cloned().collect();
            *from_config = ids.clone();
            gone
        };
        for id in &gone {
            self.local.state.remove_service(id);
        }
        if !ids.is_empty() || !gone.is_empty() {
            info!(
                defined = ids.len(),
                removed = gone.len(),
                "applied config service definitions"
            );
        }
        self.local.applied().await;
        Ok(())
    }

    /// Re-reads the configuration and applies it: service definitions, then the TLS
    /// certificates, then the hooks (each is tried even if another failed; the first error
    /// is returned).
    pub async fn reload(&self) -> Result<(), String> {
        let Some(source) = &self.source else {
            return Err("this agent was started without config files to reload".into());
        };
        let cfg = source()?;
        let services = self.apply(&cfg).await;
        let tls = crate::cluster::tls::reload(self.tls.as_ref(), &cfg, Purpose::Rpc);
        let https = crate::cluster::tls::reload(self.https_tls.as_ref(), &cfg, Purpose::Https);
        let mut hooks = Ok(());
        for hook in &self.hooks {
            let done = hook(&cfg).await;
            hooks = hooks.and(done);
        }
        services.and(tls).and(https).and(hooks)
    }
}
