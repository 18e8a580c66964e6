//! Logging the configuration's warnings at start: Consul keys accepted without effect,
//! deprecated spellings (naming the key to use instead), and `MERIDIAN_*` variables that
//! name no key; and ACL settings worth a warning (the preview gate, a non-UUID initial
//! management token, as Consul warns). Logs only; the warnings themselves come from
//! `meridian-config`.

use meridian_config::{Config, WarningKind};
use tracing::warn;

/// Logs each configuration warning once.
pub fn log_config_warnings(cfg: &Config) {
    for w in &cfg.warnings {
        match w.kind {
            WarningKind::NotAKey => {
                warn!(variable = %w.key, "environment variable names no configuration key; ignored")
            }
            WarningKind::Deprecated { use_instead } => {
                warn!(key = %w.key, source = %w.origin, use_instead, "config key is deprecated")
            }
            _ => warn!(key = %w.key, source = %w.origin, "config key has no effect in Meridian"),
        }
    }
    if cfg.acl.enabled {
        warn!(
            "ACLs are on in preview (MERIDIAN_ACL_PREVIEW=1): every endpoint and DNS check \
             tokens, but templated policies and auth methods are missing \
             and ACL overhead is not yet within 10% (issue #17)"
        );
    }
    if let Some(m) = cfg.acl.tokens.initial_management.as_deref()
        && uuid::Uuid::parse_str(m).is_err()
    {
        warn!("acl.tokens.initial_management is not a UUID; Consul expects one");
    }
}
