//! ACL replication from the primary datacenter (#17, reference/acl.md §6.1–6.2): in every
//! other datacenter, while this server leads and a replication token is in effect, one
//! loop per kind copies the primary's policies, roles and (with
//! `acl.enable_token_replication`) global tokens into this datacenter's raft. Local tokens
//! stay where they were made.
//!
//! Same shape as KV replication (`replication.rs`): a blocking read of the primary through
//! the WAN gateways (`GET /v1/internal/acl/replicate/<kind>?index=N`, under the replication
//! token), a diff by ID against the local table (rows compared without their raft
//! indexes), and the difference applied as [`AclWrite::Replicate`] batches. Every new
//! leader starts with a full comparison; a source index that went backwards (a restored
//! primary) compares everything again, as does the round after an error. Progress is in
//! `GET /v1/acl/replication`.
//!
//! The loops run on every server with ACLs on and decide each round: the source is the
//! primary in effect (`acl_primary.rs`; a move cancels the round in flight and starts a
//! full comparison against the new one), and the token is the one in effect
//! (`acl.tokens.replication`, or `PUT /v1/agent/token/replication`). While this
//! datacenter is the primary, or no token is set, they idle.
//!
//! Moving the primary (reference/acl.md §6.6) at runtime:
//! `meridian operator federation promote-primary DC` (or a reload with a changed
//! `primary_datacenter`; rules in `acl_primary.rs`). The new primary's leader stops
//! replicating and initializes as a primary (built-in policies and anonymous token
//! ensured, rows copied so far kept with their IDs and secrets); the old primary, when it
//! is reachable again, learns the move and replicates from the new one — so it needs a
//! replication token too (set the same one everywhere). What the old primary alone held
//! is lost: its local tokens elsewhere, and objects written there while it was cut off
//! (its next replication round deletes them). The bootstrap marker is not replicated: with
//! `initial_management` configured (and copied), that token closes `/v1/acl/bootstrap`
//! again; without it, bootstrap reopens on the new primary — bootstrap it at once.
//!
//! ```text
//!  leader? ─▶ relay GET …/replicate/policies?index=N ─▶ diff with local rows
//!     ▲                                                    │ Replicate{upserts, deletes}
//!     └──────────── N = X-Consul-Index ◀──── raft apply ◀──┘
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::ServerHandle;
use super::acl_primary::PrimaryCell;
use crate::catalog::acl::{AclPolicy, AclReplicated, AclRole, AclToken, AclWrite};
use crate::catalog::{Command, State};
use crate::cluster::federation::{CROSS_DC_TIMEOUT, Federation};
use crate::cluster::forward::HttpRequest;

/// The primary's internal list a secondary follows, `<kind>` appended.
pub const REPLICATE_PATH: &str = "/v1/internal/acl/replicate/";
/// The round's refusal when the replication token cannot see secrets (Consul's text).
pub const REDACTED: &str =
    "failed to retrieve unredacted tokens - replication token in use does not grant acl:write";
/// How long one blocking read waits at the primary.
const WAIT: &str = "30s";
/// Rows per raft batch.
const CHUNK: usize = 256;
/// Pause after a failed round, doubling to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// How often a follower looks whether it leads now.
const FOLLOWER_TICK: Duration = Duration::from_millis(500);

/// What is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Policies.
    Policies,
    /// Roles.
    Roles,
    /// Global tokens.
    Tokens,
}

impl Kind {
    /// Its name in [`REPLICATE_PATH`].
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Policies => "policies",
            Kind::Roles => "roles",
            Kind::Tokens => "tokens",
        }
    }

    /// The kind a path segment names.
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Policies, Kind::Roles, Kind::Tokens]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The rows of this kind a primary serves, as JSON, with the table index.
    pub fn rows(self, s: &State) -> (u64, serde_json::Value) {
        let t = s.table_indexes();
        let rows = match self {
            Kind::Policies => serde_json::to_value(s.acl_policies().collect::<Vec<_>>()),
            Kind::Roles => serde_json::to_value(s.acl_roles().collect::<Vec<_>>()),
            Kind::Tokens => {
                serde_json::to_value(s.acl_tokens().filter(|t| !t.local).collect::<Vec<_>>())
            }
        };
        let index = match self {
            Kind::Policies => t.acl_policies,
            Kind::Roles => t.acl_roles,
            Kind::Tokens => t.acl_tokens,
        };
        (index, rows.unwrap_or_default())
    }
}

/// `GET /v1/acl/replication`'s fields (Consul's `ACLReplicationStatus`).
#[derive(Debug, Clone, Default)]
pub struct AclReplicationStatus {
    /// Whether this server follows the primary now (it leads).
    pub running: bool,
    /// Remote policy index last applied.
    pub policy_index: u64,
    /// Remote role index last applied.
    pub role_index: u64,
    /// Remote token index last applied.
    pub token_index: u64,
    /// When a round last succeeded.
    pub last_success: Option<SystemTime>,
    /// When a round last failed, and why.
    pub last_error: Option<(SystemTime, String)>,
}

/// The replication token in effect, read at every round.
pub type TokenSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// A server's ACL replication (idle while its datacenter is the primary).
pub struct AclReplicator {
    primary: Arc<PrimaryCell>,
    token: TokenSource,
    tokens: bool,
    status: Mutex<AclReplicationStatus>,
}

impl std::fmt::Debug for AclReplicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclReplicator")
            .field("primary", &self.primary.get())
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl AclReplicator {
    /// Replication from the primary in effect under the token `token` gives; global
    /// tokens too when `tokens`.
    pub fn new(primary: Arc<PrimaryCell>, token: TokenSource, tokens: bool) -> Arc<Self> {
        Arc::new(AclReplicator {
            primary,
            token,
            tokens,
            status: Mutex::new(AclReplicationStatus::default()),
        })
    }

    /// The primary datacenter in effect.
    pub fn source(&self) -> String {
        self.primary.datacenter()
    }

    /// Whether this datacenter replicates now: it is not the primary and a replication
    /// token is in effect.
    pub fn enabled(&self) -> bool {
        !self.primary.is_me() && self.current_token().is_some()
    }

    fn current_token(&self) -> Option<String> {
        (self.token)().filter(|t| !t.is_empty())
    }

    /// `tokens` when global tokens are copied, else `policies` (roles included).
    pub fn replication_type(&self) -> &'static str {
        if self.tokens { "tokens" } else { "policies" }
    }

    /// The progress so far.
    pub fn status(&self) -> AclReplicationStatus {
        self.status.lock().clone()
    }

    /// Runs one loop per kind until `cancel`.
    pub async fn run(
        self: Arc<Self>,
        server: ServerHandle,
        federation: Arc<Federation>,
        cancel: CancellationToken,
    ) {
        let mut kinds = vec![Kind::Policies, Kind::Roles];
        if self.tokens {
            kinds.push(Kind::Tokens);
        }
        let loops: Vec<_> = kinds
            .into_iter()
            .map(|k| {
                let me = Arc::clone(&self);
                let (server, federation, cancel) =
                    (server.clone(), Arc::clone(&federation), cancel.clone());
                tokio::spawn(async move { me.follow(k, server, federation, cancel).await })
            })
            .collect();
        for l in loops {
            let _ = l.await;
        }
    }

    async fn follow(
        &self,
        kind: Kind,
        server: ServerHandle,
        federation: Arc<Federation>,
        cancel: CancellationToken,
    ) {
        let mut index = 0u64;
        let mut backoff = FIRST_BACKOFF;
        let mut moves = self.primary.subscribe();
        let mut source = String::new();
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let primary = moves.borrow_and_update().datacenter.clone();
            let token = self.current_token();
            let idle = !server.raft().is_leader() || self.primary.is_me();
            let (false, Some(token)) = (idle, token) else {
                index = 0;
                self.status.lock().running = false;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = moves.changed() => continue,
                    _ = tokio::time::sleep(FOLLOWER_TICK) => continue,
                }
            };
            if primary != source {
                // A new source: compare everything against it.
                index = 0;
                source = primary;
            }
            self.status.lock().running = true;
            let round = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = moves.changed() => continue,
                r = self.round(kind, index, &source, &token, &server, &federation) => r,
            };
            match round {
                Ok(next) => {
                    index = next;
                    backoff = FIRST_BACKOFF;
                    let mut s = self.status.lock();
                    s.last_success = Some(SystemTime::now());
                    match kind {
                        Kind::Policies => s.policy_index = next,
                        Kind::Roles => s.role_index = next,
                        Kind::Tokens => s.token_index = next,
                    }
                }
                Err(e) => {
                    debug!(kind = kind.as_str(), cause = %e, "ACL replication round failed");
                    index = 0;
                    self.status.lock().last_error = Some((SystemTime::now(), e));
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One blocking read of the primary and the difference applied: the remote index the
    /// local rows now match.
    async fn round(
        &self,
        kind: Kind,
        index: u64,
        source: &str,
        token: &str,
        server: &ServerHandle,
        federation: &Federation,
    ) -> Result<u64, String> {
        let mut uri = format!("{REPLICATE_PATH}{}?stale", kind.as_str());
        if index > 0 {
            uri.push_str(&format!("&index={index}&wait={WAIT}"));
        }
        let req = HttpRequest {
            method: "GET".into(),
            uri,
            headers: vec![("x-consul-token".into(), token.to_string())],
            body: Vec::new(),
            request_id: None,
        };
        let budget = req.budget(CROSS_DC_TIMEOUT);
        let resp = federation
            .relay_background(source, req, budget)
            .await
            .map_err(|e| e.to_string())?;
        if resp.status != 200 {
            return Err(format!(
                "HTTP {}: {}",
                resp.status,
                String::from_utf8_lossy(&resp.body).trim()
            ));
        }
        let remote_index = resp
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-consul-index"))
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .ok_or("answer without X-Consul-Index")?;
        // The blocking read timed out with nothing new. An index that went backwards
        // falls through to a full comparison.
        if remote_index == index && index > 0 {
            return Ok(index);
        }
        let state = server.raft().state();
        let batch = match kind {
            Kind::Policies => {
                let remote: Vec<AclPolicy> = decode(&resp.body)?;
                let (up, del) = diff(
                    remote,
                    state.acl_policies(),
                    |p| &p.id,
                    |p| AclPolicy {
                        create_index: 0,
                        modify_index: 0,
                        ..p.clone()
                    },
                );
                chunks(up, del, |u, d| AclReplicated {
                    policies: u,
                    policy_deletes: d,
                    ..AclReplicated::default()
                })
            }
            Kind::Roles => {
                let remote: Vec<AclRole> = decode(&resp.body)?;
                let (up, del) = diff(
                    remote,
                    state.acl_roles(),
                    |r| &r.id,
                    |r| AclRole {
                        create_index: 0,
                        modify_index: 0,
                        ..r.clone()
                    },
                );
                chunks(up, del, |u, d| AclReplicated {
                    roles: u,
                    role_deletes: d,
                    ..AclReplicated::default()
                })
            }
            Kind::Tokens => {
                let remote: Vec<AclToken> = decode(&resp.body)?;
                if remote.iter().any(|t| t.secret_id == "<hidden>") {
                    return Err(REDACTED.into());
                }
                let local = state.acl_tokens().filter(|t| !t.local);
                let (up, del) = diff(
                    remote,
                    local,
                    |t| &t.accessor_id,
                    |t| AclToken {
                        create_index: 0,
                        modify_index: 0,
                        ..t.clone()
                    },
                );
                chunks(up, del, |u, d| AclReplicated {
                    tokens: u,
                    token_deletes: d,
                    ..AclReplicated::default()
                })
            }
        };
        let changed: usize = batch.iter().map(batch_len).sum();
        for b in batch {
            server
                .apply_local(Command::Acl(AclWrite::Replicate(Box::new(b))), None)
                .await
                .map_err(|e| format!("applying: {e}"))?;
        }
        if changed > 0 {
            info!(
                kind = kind.as_str(),
                remote_index, changed, "replicated ACL objects"
            );
        }
        Ok(remote_index)
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<Vec<T>, String> {
    serde_json::from_slice(body).map_err(|e| format!("decoding: {e}"))
}

fn batch_len(b: &AclReplicated) -> usize {
    b.policies.len()
        + b.policy_deletes.len()
        + b.roles.len()
        + b.role_deletes.len()
        + b.tokens.len()
        + b.token_deletes.len()
}

/// The remote rows that differ from the local ones (compared as `plain` makes them: without
/// raft indexes), and the IDs only the local side has.
fn diff<'a, T: PartialEq + Serialize + 'a>(
    remote: Vec<T>,
    local: impl Iterator<Item = &'a T>,
    id: impl Fn(&T) -> &String,
    plain: impl Fn(&T) -> T,
) -> (Vec<T>, Vec<String>) {
    let mut local: BTreeMap<String, T> = local.map(|l| (id(l).clone(), plain(l))).collect();
    let mut upserts = Vec::new();
    for r in remote {
        let same = local.remove(id(&r)).is_some_and(|l| l == plain(&r));
        if !same {
            upserts.push(r);
        }
    }
    (upserts, local.into_keys().collect())
}

/// The upserts and deletes as raft batches of at most [`CHUNK`] rows each (deletes first).
fn chunks<T>(
    upserts: Vec<T>,
    deletes: Vec<String>,
    make: impl Fn(Vec<T>, Vec<String>) -> AclReplicated,
) -> Vec<AclReplicated> {
    let mut out: Vec<AclReplicated> = deletes
        .chunks(CHUNK)
        .map(|d| make(Vec::new(), d.to_vec()))
        .collect();
    let mut upserts = upserts.into_iter().peekable();
    while upserts.peek().is_some() {
        out.push(make(upserts.by_ref().take(CHUNK).collect(), Vec::new()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(id: &str, rules: &str, modify_index: u64) -> AclPolicy {
        AclPolicy {
            id: id.into(),
            name: format!("p-{id}"),
            rules: rules.into(),
            modify_index,
            ..AclPolicy::default()
        }
    }

    #[test]
    fn the_diff_ignores_indexes_upserts_changes_and_deletes_local_only_rows() {
        let local = [
            policy("a", "x", 5),
            policy("b", "y", 6),
            policy("c", "z", 7),
        ];
        let remote = vec![
            policy("a", "x", 50),
            policy("b", "changed", 60),
            policy("d", "", 1),
        ];
        let plain = |p: &AclPolicy| AclPolicy {
            create_index: 0,
            modify_index: 0,
            ..p.clone()
        };
        let (up, del) = diff(remote, local.iter(), |p| &p.id, plain);
        let ids: Vec<&str> = up.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["b", "d"]);
        assert_eq!(del, ["c"]);
        let batches = chunks(up, del, |u, d| AclReplicated {
            policies: u,
            policy_deletes: d,
            ..AclReplicated::default()
        });
        assert_eq!(batches.len(), 2, "deletes, then upserts");
        assert_eq!(batches[0].policy_deletes, ["c"]);
    }
}
