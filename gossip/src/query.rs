//! Keyring operations fanned out to the whole pool, as serf's internal queries do
//! (`_serf_list-keys`, `_serf_install-key`, ...): the origin gossips a [`KeyQuery`] as a
//! custom broadcast, every member applies it to its own [`KeyStore`] and answers the origin
//! directly with a [`KeyReply`], and the origin sums the answers into a
//! [`KeyringSummary`] — Consul's `/v1/operator/keyring` shape (`Keys`, `PrimaryKeys`,
//! `NumNodes`, per-node `Messages`).
//!
//! A query reaches clients as well as servers (they have no RPC server to call), and it
//! travels sealed with the current primary key, so keys never cross the wire in clear: a
//! pool without encryption refuses keyring operations.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::GossipError;
use super::keyring::{GossipKey, KeyError, Keyring};

/// The keyring shared by the transport (reads per packet), the handle and the runtime
/// (key operations). A `parking_lot` lock held only for one seal/open or one swap, never
/// across an await.
pub type SharedKeyring = Arc<RwLock<Keyring>>;

/// A keyring operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyOp {
    /// Report the installed keys.
    List,
    /// Install a key (raw bytes).
    Install(Vec<u8>),
    /// Make an installed key the primary.
    Use(Vec<u8>),
    /// Remove a non-primary key.
    Remove(Vec<u8>),
}

impl KeyOp {
    /// serf's query name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            KeyOp::List => "list-keys",
            KeyOp::Install(_) => "install-key",
            KeyOp::Use(_) => "use-key",
            KeyOp::Remove(_) => "remove-key",
        }
    }
}

/// The broadcast asking every member to run `op`. Append fields only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyQuery {
    /// Lamport time on the query clock.
    pub ltime: u64,
    /// Random ID chosen by the origin.
    pub id: u64,
    /// Origin's node name.
    pub origin: String,
    /// Where replies go (the origin's gossip address).
    pub reply_to: SocketAddr,
    /// What to do.
    pub op: KeyOp,
}

/// One member's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyReply {
    /// The query's ID.
    pub id: u64,
    /// Answering node.
    pub node: String,
    /// Its keys after the operation, base64, primary first.
    pub keys: Vec<String>,
    /// Why the operation failed there.
    pub error: Option<String>,
}

/// The answers to one query, summed (Consul's `KeyringResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyringSummary {
    /// Key → members holding it.
    pub keys: BTreeMap<String, usize>,
    /// Key → members using it as primary.
    pub primary_keys: BTreeMap<String, usize>,
    /// Alive members when the query was sent.
    pub num_nodes: usize,
    /// Members that answered.
    pub num_resp: usize,
    /// Members that answered with an error.
    pub num_err: usize,
    /// Node → its error.
    pub messages: BTreeMap<String, String>,
}

impl KeyringSummary {
    /// Adds one member's reply.
    pub fn add(&mut self, reply: KeyReply) {
        self.num_resp += 1;
        if let Some(err) = reply.error {
            self.num_err += 1;
            self.messages.insert(reply.node, err);
            return;
        }
        for key in &reply.keys {
            *self.keys.entry(key.clone()).or_default() += 1;
        }
        if let Some(primary) = reply.keys.first() {
            *self.primary_keys.entry(primary.clone()).or_default() += 1;
        }
    }

    /// serf's verdict: an error when any member failed or did not answer.
    pub fn error(&self) -> Option<String> {
        if self.num_err > 0 {
            Some(format!(
                "{}/{} nodes reported failure",
                self.num_err, self.num_nodes
            ))
        } else if self.num_resp < self.num_nodes {
            Some(format!(
                "{}/{} nodes reported success",
                self.num_resp, self.num_nodes
            ))
        } else {
            None
        }
    }
}

/// serf's query timeout: `gossip_interval × 16 × ceil(log10(n + 1))`.
pub fn query_timeout(gossip_interval: Duration, members: usize) -> Duration {
    let scale = ((members as f64 + 1.0).log10().ceil()).max(1.0) as u32;
    gossip_interval * 16 * scale
}

/// The pool's keyring plus where it is persisted; every change is copy, change, persist,
/// swap, so a failed write leaves the running keyring untouched.
#[derive(Debug)]
pub struct KeyStore {
    ring: SharedKeyring,
    file: Option<PathBuf>,
    serial: Mutex<()>,
}

impl KeyStore {
    /// Wraps the shared ring; `file` is `serf/local.keyring` (or `None` = memory only).
    pub fn new(ring: SharedKeyring, file: Option<PathBuf>) -> Self {
        Self {
            ring,
            file,
            serial: Mutex::new(()),
        }
    }

    /// The ring the transport seals and opens with.
    pub fn shared(&self) -> SharedKeyring {
        Arc::clone(&self.ring)
    }

    /// The installed keys, primary first.
    pub fn keys(&self) -> Vec<GossipKey> {
        self.ring.read().keys()
    }

    /// True when gossip runs in plaintext.
    pub fn is_empty(&self) -> bool {
        self.ring.read().is_empty()
    }

    /// Applies one change and persists the result.
    pub fn change(
        &self,
        change: impl FnOnce(&mut Keyring) -> Result<(), KeyError>,
    ) -> Result<(), GossipError> {
        let _serial = self.serial.lock();
        let mut ring = Keyring::from_keys(self.ring.read().keys())?;
        change(&mut ring)?;
        if let Some(path) = &self.file {
            ring.save(path)?;
        }
        *self.ring.write() = ring;
        Ok(())
    }

    /// Runs a query's operation here and builds this node's reply.
    pub fn execute(&self, op: &KeyOp, id: u64, node: &str) -> KeyReply {
        let key = |bytes: &[u8]| GossipKey::from_bytes(bytes).map_err(GossipError::from);
        let result = match op {
            KeyOp::List => Ok(()),
            _ if self.is_empty() => Err(GossipError::EncryptionDisabled),
            KeyOp::Install(k) => key(k).and_then(|k| self.change(|r| r.install(k))),
            KeyOp::Use(k) => key(k).and_then(|k| self.change(|r| r.use_key(&k))),
            KeyOp::Remove(k) => key(k).and_then(|k| self.change(|r| r.remove(&k))),
        };
        KeyReply {
            id,
            node: node.to_owned(),
            keys: self.keys().iter().map(GossipKey::to_base64).collect(),
            error: result.err().map(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(keys: &[u8]) -> KeyStore {
        let ring = Keyring::from_keys(
            keys.iter()
                .map(|b| GossipKey::from_bytes(&[*b; 32]).expect("key")),
        )
        .expect("ring");
        KeyStore::new(Arc::new(RwLock::new(ring)), None)
    }

    fn b64(b: u8) -> String {
        GossipKey::from_bytes(&[b; 32]).expect("key").to_base64()
    }

    #[test]
    fn execute_applies_ops_and_reports_errors_per_node() {
        let s = store(&[1]);
        let r = s.execute(&KeyOp::Install(vec![2; 32]), 7, "n1");
        assert_eq!((r.id, r.error.as_deref()), (7, None));
        assert_eq!(r.keys, vec![b64(1), b64(2)]);
        let r = s.execute(&KeyOp::Remove(vec![1; 32]), 8, "n1");
        assert!(r.error.expect("refused").contains("primary"));
        let r = s.execute(&KeyOp::Use(vec![2; 32]), 9, "n1");
        assert_eq!(r.error, None);
        assert_eq!(r.keys, vec![b64(2), b64(1)]);
        let r = s.execute(&KeyOp::Install(vec![3; 5]), 10, "n1");
        assert!(r.error.expect("bad key").contains("5 bytes"));
        let plain = store(&[]);
        let r = plain.execute(&KeyOp::Install(vec![2; 32]), 11, "n2");
        assert!(r.error.expect("refused").contains("not enabled"));
        assert!(plain.execute(&KeyOp::List, 12, "n2").error.is_none());
    }

    #[test]
    fn summary_counts_keys_primaries_and_missing_answers() {
        let mut sum = KeyringSummary {
            num_nodes: 3,
            ..Default::default()
        };
        let reply = |node: &str, keys: Vec<String>| KeyReply {
            id: 1,
            node: node.into(),
            keys,
            error: None,
        };
        sum.add(reply("a", vec![b64(1), b64(2)]));
        sum.add(reply("b", vec![b64(2), b64(1)]));
        assert_eq!(sum.keys.get(&b64(1)), Some(&2));
        assert_eq!(sum.primary_keys.get(&b64(2)), Some(&1));
        assert_eq!(sum.error().as_deref(), Some("2/3 nodes reported success"));
        sum.add(KeyReply {
            error: Some("boom".into()),
            ..reply("c", vec![])
        });
        assert_eq!(sum.error().as_deref(), Some("1/3 nodes reported failure"));
        assert_eq!(sum.messages.get("c").map(String::as_str), Some("boom"));
    }

    #[test]
    fn timeout_scales_with_log10_of_the_pool() {
        let g = Duration::from_millis(200);
        assert_eq!(query_timeout(g, 1), Duration::from_millis(3200));
        assert_eq!(query_timeout(g, 9), Duration::from_millis(3200));
        assert_eq!(query_timeout(g, 10), Duration::from_millis(6400));
    }
}
