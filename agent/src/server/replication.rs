//! Built-in KV replication from another datacenter (#16; Consul users run the separate
//! consul-replicate daemon): `replication { source_datacenter, prefixes, exclude }` on this
//! datacenter's servers.
//!
//! While this server leads, one loop per prefix follows the source through the WAN gateways
//! with Consul's blocking query `GET /v1/kv/<prefix>?recurse&index=N`, compares the whole
//! answer with the local tree under the prefix, and applies the difference — sets and
//! deletes — through this datacenter's own raft, in order, as transactions. Every start and
//! every new leader begins with a full comparison (index 0), so nothing written or deleted
//! while no leader followed is missed; after that it resumes from the source index it last
//! applied. Excluded prefixes are neither copied nor deleted.
//!
//! Writes under a replicated prefix through this datacenter's API are refused naming the
//! source ([`Replicator::refusal`]); the copy has one writer. Lag (source index against the
//! index last applied, and seconds behind) is in `GET /v1/operator/federation` and
//! `/v1/agent/metrics`.
//!
//! ```text
//!  leader? ─▶ relay GET /v1/kv/p?recurse&index=N (blocking) ─▶ diff with local kv_prefix(p)
//!     ▲                                                           │ Txn[Set.., Delete..] (chunks)
//!     └──────────────── N = X-Consul-Index ◀─────── raft apply ◀──┘
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use meridian_config::ReplicationConfig;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::ServerHandle;
use crate::catalog::{Command, KvEntry, KvOp, KvVerb, Response, TxnOp};
use crate::cluster::federation::{CROSS_DC_TIMEOUT, Federation};
use crate::cluster::forward::HttpRequest;

/// How long one blocking query waits at the source.
const WAIT: &str = "30s";
/// KV operations per transaction applied here.
const CHUNK: usize = 256;
/// Pause after a failed round, growing to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a follower looks whether it leads now.
const FOLLOWER_TICK: Duration = Duration::from_millis(500);

/// One prefix's progress.
#[derive(Debug, Clone, Default)]
pub struct PrefixStatus {
    /// The prefix.
    pub prefix: String,
    /// The source's index as last seen.
    pub source_index: u64,
    /// The source index whose state was last applied here.
    pub applied_index: u64,
    /// When the copy last matched the source.
    pub last_sync: Option<SystemTime>,
    /// Since when the copy has been behind (`None`: caught up).
    pub behind_since: Option<SystemTime>,
    /// Keys set and deleted here so far.
    pub keys_set: u64,
    /// Keys deleted here so far.
    pub keys_deleted: u64,
    /// The last error, if the last round failed.
    pub last_error: Option<String>,
}

impl PrefixStatus {
    /// Seconds the copy has been behind the source (0 when caught up).
    pub fn lag_seconds(&self) -> f64 {
        self.behind_since
            .and_then(|t| t.elapsed().ok())
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

/// The replication this server runs, and its status.
#[derive(Debug)]
pub struct Replicator {
    cfg: ReplicationConfig,
    status: Mutex<BTreeMap<String, PrefixStatus>>,
}

impl Replicator {
    /// A replicator for `cfg` (which is on).
    pub fn new(cfg: ReplicationConfig) -> Arc<Self> {
        let status = cfg
            .prefixes
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    PrefixStatus {
                        prefix: p.clone(),
                        ..PrefixStatus::default()
                    },
                )
            })
            .collect();
        Arc::new(Replicator {
            cfg,
            status: Mutex::new(status),
        })
    }

    /// The datacenter copied from.
    pub fn source(&self) -> &str {
        &self.cfg.source_datacenter
    }

    /// Each prefix's progress.
    pub fn status(&self) -> Vec<PrefixStatus> {
        self.status.lock().values().cloned().collect()
    }

    /// Why a write to `key` (with `tree`: to every key under it) through this datacenter's
    /// API is refused, if it is: the key is a copy owned by the source, or the tree holds
    /// replicated keys.
    pub fn refusal(&self, key: &str, tree: bool) -> Option<String> {
        let prefix = self.cfg.covers(key).or_else(|| {
            tree.then(|| {
                self.cfg
                    .prefixes
                    .iter()
                    .find(|p| p.starts_with(key))
                    .map(String::as_str)
            })
            .flatten()
        })?;
        Some(format!(
            "key {key:?} is replicated from datacenter {:?} (replication prefix {prefix:?}); write it there",
            self.cfg.source_datacenter
        ))
    }

    /// Runs one loop per prefix until `token` is cancelled.
    pub async fn run(
        self: Arc<Self>,
        server: ServerHandle,
        federation: Arc<Federation>,
        token: CancellationToken,
    ) {
        let loops: Vec<_> = self
            .cfg
            .prefixes
            .iter()
            .map(|p| {
                let me = Arc::clone(&self);
                let (server, federation, token) =
                    (server.clone(), Arc::clone(&federation), token.clone());
                let p = p.clone();
                tokio::spawn(async move { me.follow(&p, server, federation, token).await })
            })
            .collect();
        for l in loops {
            let _ = l.await;
        }
    }

    async fn follow(
        &self,
        prefix: &str,
        server: ServerHandle,
        federation: Arc<Federation>,
        token: CancellationToken,
    ) {
        let mut index = 0u64;
        let mut backoff = FIRST_BACKOFF;
        loop {
            if token.is_cancelled() {
                return;
            }
            if !server.raft().is_leader() {
                // A new leader starts over with a full comparison.
                index = 0;
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(FOLLOWER_TICK) => continue,
                }
            }
            let round = tokio::select! {
                _ = token.cancelled() => return,
                r = self.round(prefix, index, &server, &federation) => r,
            };
            match round {
                Ok(next) => {
                    index = next;
                    backoff = FIRST_BACKOFF;
                }
                Err(e) => {
                    debug!(prefix, cause = %e, "replication round failed");
                    self.update(prefix, |s| {
                        s.last_error = Some(e.clone());
                        s.behind_since.get_or_insert_with(SystemTime::now);
                    });
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One blocking read of the source and the difference applied: the source index the
    /// local tree now matches.
    async fn round(
        &self,
        prefix: &str,
        index: u64,
        server: &ServerHandle,
        federation: &Federation,
    ) -> Result<u64, String> {
        let enc: String = prefix
            .split('/')
            .map(|seg| form_urlencoded::byte_serialize(seg.as_bytes()).collect::<String>())
            .collect::<Vec<_>>()
            .join("/");
        let dc: String = form_urlencoded::byte_serialize(self.source().as_bytes()).collect();
        let mut uri = format!("/v1/kv/{enc}?recurse&dc={dc}");
        if index > 0 {
            uri.push_str(&format!("&index={index}&wait={WAIT}"));
        }
        let req = HttpRequest {
            method: "GET".into(),
            uri,
            headers: Vec::new(),
            body: Vec::new(),
            request_id: None,
        };
        let budget = req.budget(CROSS_DC_TIMEOUT);
        let resp = federation
            .relay(self.source(), req, budget)
            .await
            .map_err(|e| e.to_string())?;
        let source_index = resp
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-consul-index"))
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .ok_or_else(|| format!("HTTP {} without X-Consul-Index", resp.status))?;
        let entries: Vec<KvEntry> = match resp.status {
            200 => serde_json::from_slice(&resp.body).map_err(|e| format!("decoding: {e}"))?,
            404 => Vec::new(),
            s => {
                return Err(format!(
                    "HTTP {s}: {}",
                    String::from_utf8_lossy(&resp.body).trim()
                ));
            }
        };
        self.update(prefix, |s| s.source_index = source_index);
        // Nothing changed at the source (the blocking query timed out). An index that went
        // backwards (a restored snapshot) falls through to a full comparison, as Consul's
        // clients start over.
        if source_index == index && index > 0 {
            return Ok(index);
        }
        let ops = self.difference(prefix, &entries, server);
        let (sets, deletes) = ops.iter().fold((0, 0), |(s, d), op| match op.verb {
            KvVerb::Delete => (s, d + 1),
            _ => (s + 1, d),
        });
        for chunk in ops.chunks(CHUNK) {
            let txn = Command::Txn(chunk.iter().cloned().map(TxnOp::Kv).collect());
            match server.apply_local(txn, None).await {
                Ok((_, Response::TxnRolledBack(errs))) => {
                    return Err(format!("applying: rolled back: {errs:?}"));
                }
                Ok(_) => {}
                Err(e) => return Err(format!("applying: {e}")),
            }
        }
        if sets + deletes > 0 {
            info!(prefix, source_index, sets, deletes, "replicated");
        }
        self.update(prefix, |s| {
            s.applied_index = source_index;
            s.last_sync = Some(SystemTime::now());
            s.behind_since = None;
            s.last_error = None;
            s.keys_set += sets;
            s.keys_deleted += deletes;
        });
        Ok(source_index)
    }

    /// The sets and deletes that make the local tree under `prefix` equal `source` (minus
    /// excluded keys): sets in key order, then deletes.
    fn difference(&self, prefix: &str, source: &[KvEntry], server: &ServerHandle) -> Vec<KvOp> {
        let state = server.raft().state();
        let local: BTreeMap<&str, &KvEntry> = state
            .kv_prefix(prefix)
            .filter(|e| self.cfg.covers(&e.key).is_some())
            .map(|e| (e.key.as_str(), e))
            .collect();
        let mut ops = Vec::new();
        let mut wanted = std::collections::BTreeSet::new();
        for e in source
            .iter()
            .filter(|e| e.key.starts_with(prefix) && self.cfg.covers(&e.key).is_some())
        {
            wanted.insert(e.key.as_str());
            let same = local
                .get(e.key.as_str())
                .is_some_and(|l| l.value == e.value && l.flags == e.flags);
            if !same {
                let mut op = KvOp::new(KvVerb::Set, e.key.clone());
                op.value = e.value.clone();
                op.flags = e.flags;
                ops.push(op);
            }
        }
        for key in local.keys().filter(|k| !wanted.contains(*k)) {
            ops.push(KvOp::new(KvVerb::Delete, (*key).to_string()));
        }
        ops
    }

    fn update(&self, prefix: &str, f: impl FnOnce(&mut PrefixStatus)) {
        if let Some(s) = self.status.lock().get_mut(prefix) {
            f(s);
        } else {
            warn!(prefix, "replication status for an unknown prefix");
        }
    }
}
