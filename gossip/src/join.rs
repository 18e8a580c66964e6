//! Joining a pool and choosing its keyring, for every process that runs one (the agent's LAN
//! pool, the gateway's LAN and WAN pools): `host[:port]` join addresses resolved with a
//! default port, a join of all of them, `-retry-join` until one answers, and Consul's
//! keyring rule (a persisted keyring file wins over a configured key).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{GossipError, GossipHandle, GossipKey, Keyring};

/// Why a join address could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinAddrError {
    /// Cloud auto-join (`provider=...`) needs go-discover, which Meridian does not have.
    #[error("cloud auto-join {0:?} is not supported; give host[:port] addresses")]
    CloudAutoJoin(String),
    /// The host did not resolve.
    #[error("failed to resolve {addr:?}: {source}")]
    Resolve {
        /// The address as given.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Resolves `host[:port]` (IPv6 as `[::1]:8301` or bare); `default_port` when none is given.
pub async fn resolve_join_addr(
    addr: &str,
    default_port: u16,
) -> Result<Vec<SocketAddr>, JoinAddrError> {
    let addr = addr.trim();
    if addr.contains("provider=") {
        return Err(JoinAddrError::CloudAutoJoin(addr.to_owned()));
    }
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return Ok(vec![sa]);
    }
    let bare = addr.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, default_port)]);
    }
    let resolved = if addr.contains(':') {
        tokio::net::lookup_host(addr).await.map(Iterator::collect)
    } else {
        tokio::net::lookup_host((addr, default_port))
            .await
            .map(Iterator::collect)
    };
    resolved.map_err(|source| JoinAddrError::Resolve {
        addr: addr.to_owned(),
        source,
    })
}

/// Resolves every address (unresolvable ones are logged and skipped) and joins them.
pub async fn join(
    gossip: &GossipHandle,
    addrs: &[String],
    default_port: u16,
) -> Result<usize, GossipError> {
    let mut targets = Vec::new();
    for a in addrs {
        match resolve_join_addr(a, default_port).await {
            Ok(list) => targets.extend(list),
            Err(e) => warn!(address = %a, cause = %e, "skipping join address"),
        }
    }
    gossip.join(&targets).await
}

/// How `-retry-join` behaves.
#[derive(Debug, Clone, Copy)]
pub struct RetryJoin {
    /// Port for addresses without one.
    pub default_port: u16,
    /// Wait between attempts.
    pub interval: Duration,
    /// Attempts before giving up; 0 means forever.
    pub max: u32,
}

/// Joins `addrs` every `interval` until one attempt succeeds, the pool stops or `token` is
/// cancelled (all `None`), or `max` attempts failed: the fatal reason.
pub async fn retry_join(
    gossip: &GossipHandle,
    addrs: &[String],
    how: RetryJoin,
    token: &CancellationToken,
) -> Option<String> {
    if addrs.is_empty() {
        return None;
    }
    let mut attempt: u32 = 0;
    loop {
        match join(gossip, addrs, how.default_port).await {
            Ok(n) => {
                info!(nodes = n, "retry join completed");
                return None;
            }
            Err(e) if e.is_stopped() => return None,
            Err(e) => {
                attempt = attempt.saturating_add(1);
                if how.max > 0 && attempt >= how.max {
                    return Some(format!(
                        "max join retry exhausted ({attempt} attempts): {e}"
                    ));
                }
                warn!(cause = %e, retry_interval = ?how.interval, "join failed, retrying");
            }
        }
        tokio::select! {
            _ = token.cancelled() => return None,
            _ = tokio::time::sleep(how.interval) => {}
        }
    }
}

/// The keyring persisted at `path` if there is one (a given `encrypt` is then ignored, as
/// Consul), else `encrypt` (persisted for the next start), else none (plaintext gossip).
/// `option` names the key option in errors and warnings.
pub fn load_or_create_keyring(
    encrypt: Option<&str>,
    path: &Path,
    option: &str,
) -> Result<Keyring, KeyringSetupError> {
    if let Some(ring) = Keyring::load(path)? {
        if encrypt.is_some() {
            warn!(
                keyring = %path.display(),
                "loaded the persisted keyring; ignoring the {option} option"
            );
        }
        return Ok(ring);
    }
    let Some(text) = encrypt else {
        return Ok(Keyring::default());
    };
    let key = GossipKey::from_base64(text).map_err(|e| KeyringSetupError::BadKey {
        option: option.to_string(),
        reason: e.to_string(),
    })?;
    let ring = Keyring::new(key)?;
    ring.save(path)?;
    Ok(ring)
}

/// Why a pool's keyring could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringSetupError {
    /// The configured key is not a valid key.
    #[error("{option}: {reason}")]
    BadKey {
        /// The option that gave it (`encrypt`, `-encrypt-wan`).
        option: String,
        /// Why.
        reason: String,
    },
    /// The keyring file could not be read or written.
    #[error(transparent)]
    File(#[from] crate::KeyringFileError),
    /// The key was refused.
    #[error(transparent)]
    Key(#[from] crate::KeyError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn join_addresses_take_the_default_port() {
        let one = |s: &'static str| async move { resolve_join_addr(s, 8301).await.expect(s) };
        assert_eq!(
            one("10.0.0.1").await,
            vec!["10.0.0.1:8301".parse().expect("addr")]
        );
        assert_eq!(
            one("10.0.0.1:9").await,
            vec!["10.0.0.1:9".parse().expect("addr")]
        );
        assert_eq!(one("::1").await, vec!["[::1]:8301".parse().expect("addr")]);
        assert_eq!(one("[::1]:7").await, vec!["[::1]:7".parse().expect("addr")]);
        assert_eq!(
            resolve_join_addr("10.0.0.2", 8302).await.expect("wan"),
            vec!["10.0.0.2:8302".parse().expect("addr")]
        );
        assert!(matches!(
            resolve_join_addr("provider=aws tag_key=x", 8301).await,
            Err(JoinAddrError::CloudAutoJoin(_))
        ));
    }

    #[test]
    fn persisted_keyring_wins_over_encrypt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("serf").join("local.keyring");
        let load = |k: Option<&str>, p: &Path| load_or_create_keyring(k, p, "encrypt");
        assert!(load(None, &path).expect("none").is_empty());
        let first = GossipKey::generate();
        let ring = load(Some(&first.to_base64()), &path).expect("encrypt");
        assert_eq!(ring.keys(), vec![first.clone()]);
        let other = GossipKey::generate().to_base64();
        let again = load(Some(&other), &path).expect("persisted");
        assert_eq!(again.keys(), vec![first]);
        let err = load(Some("bad"), &dir.path().join("x")).expect_err("bad key");
        assert!(err.to_string().starts_with("encrypt: "), "{err}");
    }
}
