//! The tokens the agent itself holds (reference/acl.md §1, §5.8; Consul's `agent/token`):
//! `default`, `agent`, `agent_recovery`, `replication`, `config_file_service_registration`
//! and `dns`, first from `acl.tokens`, then changed at run time through
//! `PUT /v1/agent/token/<kind>`. With `acl.enable_token_persistence` the tokens set that way
//! are saved to `<data_dir>/acl-tokens.json` (mode 0600, temp file + fsync + rename) and
//! override the configuration's on the next start.
//!
//! Owns the current values and that file. Must not: log a secret (the `Debug` impls name
//! which tokens are set, never their values), or decide what a token may do.

use std::io::Write;
use std::path::{Path, PathBuf};

use meridian_config::AclTokensConfig;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// The persisted tokens' file name under the data directory (Consul's).
pub const TOKENS_FILE: &str = "acl-tokens.json";

/// One of the agent's tokens, as `PUT /v1/agent/token/<kind>` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `default` (`acl_token`): tokenless requests and service/check sync.
    Default,
    /// `agent` (`acl_agent_token`): node info sync and all deregistrations.
    Agent,
    /// `agent_recovery` (`agent_master`, `acl_agent_master_token`): resolved locally.
    AgentRecovery,
    /// `replication` (`acl_replication_token`).
    Replication,
    /// `config_file_service_registration`: config-file services and checks.
    ConfigFileRegistration,
    /// `dns` (`dns_token`): DNS lookups.
    Dns,
}

impl TokenKind {
    /// The kind a URL names, with Consul's legacy spellings; `None` = unknown.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "default" | "acl_token" => TokenKind::Default,
            "agent" | "acl_agent_token" => TokenKind::Agent,
            "agent_recovery" | "agent_master" | "acl_agent_master_token" => {
                TokenKind::AgentRecovery
            }
            "replication" | "acl_replication_token" => TokenKind::Replication,
            "config_file_service_registration" => TokenKind::ConfigFileRegistration,
            "dns" | "dns_token" => TokenKind::Dns,
            _ => return None,
        })
    }
}

/// Why the tokens file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("failed to persist tokens to {path}: {source}")]
pub struct PersistError {
    path: PathBuf,
    source: std::io::Error,
}

/// `acl-tokens.json`: only the tokens set through the API (Consul's `persistedTokens`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Persisted {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    replication: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    agent_recovery: String,
    /// Written by older Consul versions; read only.
    #[serde(default, skip_serializing)]
    agent_master: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    default: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    agent: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    config_file_service_registration: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    dns: String,
}

impl Persisted {
    fn slot(&mut self, kind: TokenKind) -> &mut String {
        match kind {
            TokenKind::Default => &mut self.default,
            TokenKind::Agent => &mut self.agent,
            TokenKind::AgentRecovery => &mut self.agent_recovery,
            TokenKind::Replication => &mut self.replication,
            TokenKind::ConfigFileRegistration => &mut self.config_file_service_registration,
            TokenKind::Dns => &mut self.dns,
        }
    }
}

fn slot(t: &mut AclTokensConfig, kind: TokenKind) -> &mut Option<String> {
    match kind {
        TokenKind::Default => &mut t.default,
        TokenKind::Agent => &mut t.agent,
        TokenKind::AgentRecovery => &mut t.agent_recovery,
        TokenKind::Replication => &mut t.replication,
        TokenKind::ConfigFileRegistration => &mut t.config_file_service_registration,
        TokenKind::Dns => &mut t.dns,
    }
}

struct Inner {
    current: AclTokensConfig,
    persisted: Persisted,
}

/// The agent's tokens now. Shared behind an `Arc`.
pub struct AgentTokens {
    inner: RwLock<Inner>,
    /// `<data_dir>/acl-tokens.json` when persistence is on.
    file: Option<PathBuf>,
    /// One file write at a time, in the order the API set them.
    write: tokio::sync::Mutex<()>,
    /// Moves on every `set`: caches of what a token may see (DNS answers) compare it.
    version: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for AgentTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentTokens")
            .field("tokens", &self.inner.read().current)
            .field("file", &self.file)
            .finish()
    }
}

fn non_empty(t: &Option<String>) -> Option<&str> {
    t.as_deref().filter(|s| !s.is_empty())
}

impl AgentTokens {
    /// The configuration's tokens, nothing persisted.
    pub fn from_config(tokens: &AclTokensConfig) -> Self {
        AgentTokens {
            inner: RwLock::new(Inner {
                current: tokens.clone(),
                persisted: Persisted::default(),
            }),
            file: None,
            write: tokio::sync::Mutex::new(()),
            version: Default::default(),
        }
    }

    /// The configuration's tokens overridden by those a previous run persisted under
    /// `data_dir` (read at start, before any request). A file that cannot be read is
    /// reported and ignored: the configuration's tokens apply.
    pub fn load(tokens: &AclTokensConfig, data_dir: &Path) -> Self {
        let file = data_dir.join(TOKENS_FILE);
        let mut persisted = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice::<Persisted>(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %file.display(), cause = %e,
                    "persisted ACL tokens do not parse; using the configured ones");
                Persisted::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Persisted::default(),
            Err(e) => {
                tracing::warn!(file = %file.display(), cause = %e,
                    "persisted ACL tokens unreadable; using the configured ones");
                Persisted::default()
            }
        };
        if persisted.agent_recovery.is_empty() {
            persisted.agent_recovery = std::mem::take(&mut persisted.agent_master);
        }
        let mut current = tokens.clone();
        for kind in [
            TokenKind::Default,
            TokenKind::Agent,
            TokenKind::AgentRecovery,
            TokenKind::Replication,
            TokenKind::ConfigFileRegistration,
            TokenKind::Dns,
        ] {
            let saved = persisted.slot(kind).clone();
            if !saved.is_empty() {
                *slot(&mut current, kind) = Some(saved);
            }
        }
        AgentTokens {
            inner: RwLock::new(Inner { current, persisted }),
            file: Some(file),
            write: tokio::sync::Mutex::new(()),
            version: Default::default(),
        }
    }

    /// Sets a token at once; with persistence on, also saves it (the new value is in
    /// effect even if saving fails, as in Consul).
    pub async fn set(&self, kind: TokenKind, secret: String) -> Result<(), PersistError> {
        let _order = self.write.lock().await;
        let snapshot = {
            let mut inner = self.inner.write();
            *slot(&mut inner.current, kind) = Some(secret.clone());
            *inner.persisted.slot(kind) = secret;
            inner.persisted.clone()
        };
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        let Some(file) = self.file.clone() else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(&snapshot).unwrap_or_default();
        let path = file.clone();
        let written = tokio::task::spawn_blocking(move || write_private(&path, &bytes)).await;
        match written {
            Ok(r) => r.map_err(|source| PersistError { path: file, source }),
            Err(e) => Err(PersistError {
                path: file,
                source: std::io::Error::other(e),
            }),
        }
    }

    fn get(&self, kind: TokenKind) -> Option<String> {
        let inner = self.inner.read();
        non_empty(&match kind {
            TokenKind::Default => inner.current.default.clone(),
            TokenKind::Agent => inner.current.agent.clone(),
            TokenKind::AgentRecovery => inner.current.agent_recovery.clone(),
            TokenKind::Replication => inner.current.replication.clone(),
            TokenKind::ConfigFileRegistration => {
                inner.current.config_file_service_registration.clone()
            }
            TokenKind::Dns => inner.current.dns.clone(),
        })
        .map(str::to_string)
    }

    /// `default`, if set (a tokenless request's token).
    pub fn default_token(&self) -> Option<String> {
        self.get(TokenKind::Default)
    }

    /// `agent`, else `default`, else `""` (anonymous): node info sync and deregistrations.
    pub fn agent_token(&self) -> String {
        self.get(TokenKind::Agent)
            .or_else(|| self.default_token())
            .unwrap_or_default()
    }

    /// `config_file_service_registration`, else `default`, else `""`.
    pub fn config_file_token(&self) -> String {
        self.get(TokenKind::ConfigFileRegistration)
            .or_else(|| self.default_token())
            .unwrap_or_default()
    }

    /// How many times a token was set: a change means any token may differ now.
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// `dns`, else `default`, else `""`.
    pub fn dns_token(&self) -> String {
        self.get(TokenKind::Dns)
            .or_else(|| self.default_token())
            .unwrap_or_default()
    }

    /// `replication`, if set.
    pub fn replication_token(&self) -> Option<String> {
        self.get(TokenKind::Replication)
    }

    /// Whether `secret` is the agent recovery token.
    pub fn is_recovery(&self, secret: &str) -> bool {
        self.get(TokenKind::AgentRecovery)
            .is_some_and(|r| constant_time_eq(r.as_bytes(), secret.as_bytes()))
    }
}

/// Byte comparison whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Writes `bytes` to `path` readable by the owner only: temp file (created 0600) in the
/// same directory, fsync, rename.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_spellings_name_the_same_kinds() {
        assert_eq!(TokenKind::parse("acl_token"), Some(TokenKind::Default));
        assert_eq!(
            TokenKind::parse("agent_master"),
            Some(TokenKind::AgentRecovery)
        );
        assert_eq!(TokenKind::parse("dns_token"), Some(TokenKind::Dns));
        assert_eq!(TokenKind::parse("bogus"), None);
    }

    #[tokio::test]
    async fn a_persisted_token_beats_the_configured_one_and_the_file_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = AclTokensConfig {
            agent: Some("from-config".into()),
            default: Some("default-from-config".into()),
            ..AclTokensConfig::default()
        };
        let t = AgentTokens::load(&config, dir.path());
        assert_eq!(t.agent_token(), "from-config");
        t.set(TokenKind::Agent, "from-api".into())
            .await
            .expect("persisted");
        assert_eq!(t.agent_token(), "from-api");
        let again = AgentTokens::load(&config, dir.path());
        assert_eq!(again.agent_token(), "from-api");
        assert_eq!(
            again.default_token().as_deref(),
            Some("default-from-config"),
            "only API-set tokens are persisted"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TOKENS_FILE))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            !format!("{again:?}").contains("from-api"),
            "Debug hides secrets"
        );
    }
}
