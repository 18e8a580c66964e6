//! openraft's [`RaftStateMachine`] over the catalog: applies committed entries to the in-memory
//! [`State`], persists the touched rows to `state.db`, publishes the new state to readers and
//! answers the proposers. Snapshots are the serialized rows.
//!
//! The catalog decides *what* a command does; `store::state_store` decides *how* rows hit disk.
//! This module only sequences the two and speaks openraft.
//!
//! ```text
//!   entries ─▶ State::apply (memory) ─▶ take_changes ─▶ state.db (one txn per batch)
//!                                                         │
//!                          readers ◀─ ArcSwap<State> ◀────┤ publish
//!                    wait_applied ◀─ watch<u64>     ◀────┤
//!                       proposers ◀─ ApplyResponder ◀────┘ respond (after publish, so a
//!                                                          client sees its own write)
//! ```

use std::sync::Arc;

use arc_swap::ArcSwap;
use futures::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::type_config::{
    LogId, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig,
};
use crate::catalog::{Response, Row, State};
use crate::store::{SmMeta, StateStore, StoreError};

/// Version tag of the snapshot body format.
const SNAPSHOT_FORMAT: u8 = 1;

/// The snapshot body: the raft metadata (as JSON, for humans and forward compatibility) and
/// every state row, encoded with postcard.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    format: u8,
    /// `SnapshotMeta` as JSON. Informational: openraft transfers the meta alongside.
    meta_json: Vec<u8>,
    rows: Vec<Row>,
}

fn encode_snapshot(meta: &SnapshotMeta, rows: Vec<Row>) -> Result<Vec<u8>, StoreError> {
    let meta_json = serde_json::to_vec(meta).map_err(StoreError::json("snapshot meta"))?;
    encode_body(meta_json, rows)
}

/// The snapshot body of `rows` with `meta_json` as its informational meta: what raft
/// snapshots hold, and the `state.bin` of a `/v1/snapshot` archive.
pub(crate) fn encode_body(meta_json: Vec<u8>, rows: Vec<Row>) -> Result<Vec<u8>, StoreError> {
    let body = SnapshotBody {
        format: SNAPSHOT_FORMAT,
        meta_json,
        rows,
    };
    Ok(postcard::to_allocvec(&body)?)
}

pub(crate) fn decode_snapshot(data: &[u8]) -> Result<Vec<Row>, StoreError> {
    let body: SnapshotBody = postcard::from_bytes(data)?;
    if body.format != SNAPSHOT_FORMAT {
        return Err(StoreError::Snapshot(
            postcard::Error::DeserializeBadEncoding,
        ));
    }
    Ok(body.rows)
}

/// Read side of the state machine: what readers get without touching raft.
#[derive(Clone, Debug)]
pub(crate) struct Published {
    /// The state after the last applied batch.
    pub(crate) state: Arc<ArcSwap<State>>,
    /// Raft index of the last applied entry (0 = nothing applied).
    pub(crate) applied_rx: watch::Receiver<u64>,
}

/// The raft state machine. Owned by openraft's state-machine task.
pub struct StateMachine {
    /// Working copy; readers get O(1) clones of it after each batch.
    state: State,
    meta: SmMeta,
    store: StateStore,
    published: Arc<ArcSwap<State>>,
    applied_tx: watch::Sender<u64>,
}

impl std::fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

fn index_of(id: &Option<LogId>) -> u64 {
    id.as_ref().map_or(0, |l| l.index)
}

impl StateMachine {
    /// Loads the state from `store` (rows + metadata) and returns the machine together with its
    /// read side.
    pub(crate) async fn open(store: StateStore) -> Result<(Self, Published), StoreError> {
        let loaded = store.load().await?;
        let state = State::restore(loaded.rows)?;
        let applied = index_of(&loaded.meta.last_applied);
        let published = Arc::new(ArcSwap::from_pointee(state.clone()));
        let (applied_tx, applied_rx) = watch::channel(applied);
        let sm = Self {
            state,
            meta: loaded.meta,
            store,
            published: published.clone(),
            applied_tx,
        };
        Ok((
            sm,
            Published {
                state: published,
                applied_rx,
            },
        ))
    }

    fn publish(&self) {
        self.published.store(Arc::new(self.state.clone()));
        self.applied_tx
            .send_replace(index_of(&self.meta.last_applied));
    }
}

/// Builds a snapshot from an O(1) clone of the state taken between two applied batches.
pub struct SnapshotBuilder {
    state: State,
    meta: SmMeta,
    store: StateStore,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, std::io::Error> {
        let meta = SnapshotMeta {
            last_log_id: self.meta.last_applied,
            last_membership: self.meta.last_membership.clone(),
        };
        let data = encode_snapshot(&meta, self.state.rows())?;
        // The body goes to its own file, off `state.db`'s connection. The rows up to
        // `last_applied` were committed before this builder was created; the small FULL-sync
        // commit that makes the file current fsyncs the WAL up to and including them, so
        // openraft may purge the log behind the snapshot once we return.
        let data = self.store.save_snapshot(&meta, data).await?;
        tracing::info!(
            index = index_of(&meta.last_log_id),
            bytes = data.len(),
            "raft snapshot built"
        );
        Ok(Snapshot {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), std::io::Error> {
        Ok((self.meta.last_applied, self.meta.last_membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), std::io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, std::io::Error>>
            + Unpin
            + OptionalSend,
    {
        let mut replies = Vec::new();
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let log_id = entry.log_id;
            let resp = match entry.payload {
                EntryPayload::Blank => Response::Ok,
                EntryPayload::Normal(ref req) => self.state.apply(log_id.index, req),
                EntryPayload::Membership(m) => {
                    self.meta.last_membership = StoredMembership::new(Some(log_id), m);
                    Response::Ok
                }
            };
            self.meta.last_applied = Some(log_id);
            if let Some(r) = responder {
                replies.push((r, resp));
            }
        }
        let changes = self.state.take_changes();
        self.store.persist(&changes, &self.meta).await?;
        self.publish();
        // Every responder must be answered or `client_write` never returns. Answering after
        // publishing gives read-your-writes through `RaftNode::state()`.
        for (r, resp) in replies {
            r.send(resp);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            state: self.state.clone(),
            meta: self.meta.clone(),
            store: self.store.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), std::io::Error> {
        let rows = decode_snapshot(&snapshot)?;
        let state = State::restore(rows.iter().cloned()).map_err(StoreError::from)?;
        let sm_meta = SmMeta {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
        };
        self.store
            .replace_all(&rows, &sm_meta, meta, snapshot)
            .await?;
        self.state = state;
        self.meta = sm_meta;
        self.publish();
        tracing::info!(
            index = index_of(&meta.last_log_id),
            "raft snapshot installed"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, std::io::Error> {
        let snap = self.store.current_snapshot().await?;
        Ok(snap.map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}
