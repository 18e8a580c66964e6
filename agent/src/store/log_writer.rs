//! The raft log's single writer: one task that owns the write connection of `raft-log.db` and
//! turns whatever operations are queued into one transaction (group commit).
//!
//! [`LogStore`](super::LogStore) hands it [`Op`]s in raft's order and returns; the writer drains
//! the queue, writes every queued op in one `synchronous=FULL` transaction (one fsync), and only
//! after that commit completes each op: `IOFlushed` callbacks for appends, oneshot replies for
//! vote, truncate and purge. While one batch is being fsynced, raft keeps accepting and queueing
//! writes; they form the next batch. No op is completed before the commit that contains it.
//!
//! `committed` is not worth an fsync of its own (openraft re-derives it): the latest value rides
//! along with the next transaction that is written anyway.
//!
//! ```text
//!   append / vote / truncate / purge / committed ─▶ mpsc ─▶ writer: BEGIN … COMMIT (fsync,
//!                                                              one round trip to SQLite)
//!                                                              └─▶ callbacks, in order
//! ```

use std::sync::Arc;
use std::time::Duration;

use openraft::storage::IOFlushed;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use super::log_tail::{META_COMMITTED, META_PURGED, META_VOTE, Tail};
use super::{StoreError, Txn, to_i64};
use crate::raft::type_config::{LogId, TypeConfig, Vote};

/// Rows per multi-row INSERT (3 bound values each, far below SQLite's variable limit).
const ROWS_PER_INSERT: usize = 256;
/// Most queued ops folded into one transaction.
const MAX_OPS_PER_TXN: usize = 4096;
/// Longest a batch waits for more writes to join it (see [`gather`]).
const GROUP_COMMIT_WAIT: Duration = Duration::from_millis(1);

/// A log entry ready for the `log` table.
#[derive(Debug)]
pub(super) struct EncodedEntry {
    pub(super) index: u64,
    pub(super) log_id: Vec<u8>,
    pub(super) entry: Vec<u8>,
}

/// Reply channel of an op whose caller waits for durability.
pub(super) type Done = oneshot::Sender<Result<(), String>>;

/// One write, queued in raft's order.
pub(super) enum Op {
    /// Entries to append; `callback` fires once they are on disk.
    Append {
        rows: Vec<EncodedEntry>,
        callback: IOFlushed<TypeConfig>,
    },
    /// The vote; durable when `done` fires.
    Vote(Vote, Done),
    /// Delete entries after `after` (all when `None`).
    Truncate(Option<LogId>, Done),
    /// Delete entries up to and including the log id, recording it as purged.
    Purge(LogId, Done),
    /// The latest committed log id; written with the next transaction, never on its own.
    Committed(Option<LogId>),
}

/// Runs until every sender is dropped, then returns (dropping the connection).
pub(super) async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::UnboundedReceiver<Op>,
    tail: Arc<parking_lot::Mutex<Tail>>,
) {
    let mut ops = Vec::new();
    let mut committed: Option<Option<LogId>> = None;
    // After a failed commit every later op fails too: raft must not see a log with a hole.
    let mut poisoned: Option<String> = None;
    // Entries the next batch is likely to get (see `gather`).
    let mut expect = 0;
    loop {
        if ops.is_empty() && rx.recv_many(&mut ops, MAX_OPS_PER_TXN).await == 0 {
            break; // every sender is gone
        }
        gather(&mut rx, &mut ops, expect).await;
        let mut batch = Vec::with_capacity(ops.len());
        for op in ops.drain(..) {
            match op {
                Op::Committed(c) => committed = Some(c),
                other => batch.push(other),
            }
        }
        if batch.is_empty() {
            expect = 0;
            continue; // only `committed` moved: wait for a write to carry it
        }
        let written = appended(&batch);
        let result = match &poisoned {
            Some(msg) => Err(msg.clone()),
            None => write_batch(&mut conn, &batch, committed.take())
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(msg) = &result {
            tracing::error!(error = %msg, "raft log write failed; refusing further writes");
            poisoned = Some(msg.clone());
        }
        // Mark the tail before anyone is told: a caller woken below may append or truncate next.
        if result.is_ok() {
            let flushed = batch.iter().rev().find_map(|op| match op {
                Op::Append { rows, .. } => rows.last().map(|r| r.index),
                _ => None,
            });
            if let Some(index) = flushed {
                tail.lock().mark_flushed(index);
            }
        }
        for op in batch {
            match op {
                Op::Append { callback, .. } => {
                    callback.io_completed(result.clone().map_err(std::io::Error::other));
                }
                Op::Vote(_, done) | Op::Truncate(_, done) | Op::Purge(_, done) => {
                    // The caller may have gone away (raft shutting down): nothing to tell.
                    let _ = done.send(result.clone());
                }
                Op::Committed(_) => {}
            }
        }
        // What queued up during the fsync, plus the proposers just answered (who, under load,
        // come straight back with their next write), is what the next batch should carry.
        while ops.len() < MAX_OPS_PER_TXN {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        expect = if written > 1 {
            written + appended(&ops)
        } else {
            0
        };
    }
}

/// Group commit: lets the next batch wait up to [`GROUP_COMMIT_WAIT`] until `expect` entries
/// are queued. Without it, under load the proposers split into two groups that take turns
/// (one waits for the other's fsync), each fsync carrying only half of them; waiting the short
/// while it takes the group just answered to come back merges them again, so one fsync serves
/// everyone. Never waits for a single proposer (`expect <= 1`) or when a vote, truncate or
/// purge is queued.
async fn gather(rx: &mut mpsc::UnboundedReceiver<Op>, ops: &mut Vec<Op>, expect: usize) {
    let deadline = tokio::time::Instant::now() + GROUP_COMMIT_WAIT;
    while expect > 1
        && appended(ops) < expect
        && ops.len() < MAX_OPS_PER_TXN
        && ops
            .iter()
            .all(|op| matches!(op, Op::Append { .. } | Op::Committed(_)))
    {
        let more = rx.recv_many(ops, MAX_OPS_PER_TXN - ops.len());
        match tokio::time::timeout_at(deadline, more).await {
            Ok(n) if n > 0 => {}
            _ => break, // waited long enough, or every sender is gone
        }
    }
}

/// Log entries carried by the append ops in `ops`.
fn appended(ops: &[Op]) -> usize {
    ops.iter()
        .map(|op| match op {
            Op::Append { rows, .. } => rows.len(),
            _ => 0,
        })
        .sum()
}

/// Writes `batch` (and `committed`, if set) in one transaction and commits it, which fsyncs
/// the WAL under `synchronous=FULL`; the whole transaction is one round trip ([`Txn`]).
async fn write_batch(
    conn: &mut SqliteConnection,
    batch: &[Op],
    committed: Option<Option<LogId>>,
) -> Result<(), StoreError> {
    let mut txn = Txn::new();
    let mut pending: Vec<&EncodedEntry> = Vec::new();
    for op in batch {
        if let Op::Append { rows, .. } = op {
            pending.extend(rows);
            continue;
        }
        insert_rows(&mut txn, &mut pending);
        match op {
            Op::Vote(vote, _) => txn.upsert_meta(META_VOTE, vote)?,
            Op::Truncate(after, _) => {
                let from = after.map_or(0, |id| to_i64(id.index).saturating_add(1));
                txn.sql()
                    .push("DELETE FROM log WHERE idx >= ")
                    .push_bind(from)
                    .push(";");
            }
            Op::Purge(log_id, _) => {
                // The purge point and the deletion commit together: entries are never gone
                // without `last_purged` covering them.
                txn.upsert_meta(META_PURGED, log_id)?;
                txn.sql()
                    .push("DELETE FROM log WHERE idx <= ")
                    .push_bind(to_i64(log_id.index))
                    .push(";");
            }
            Op::Append { .. } | Op::Committed(_) => {}
        }
    }
    insert_rows(&mut txn, &mut pending);
    if let Some(c) = committed {
        txn.upsert_meta(META_COMMITTED, &c)?;
    }
    txn.commit(conn).await
}

/// Appends `rows` to `txn` with as few statements as possible and empties it.
fn insert_rows(txn: &mut Txn, rows: &mut Vec<&EncodedEntry>) {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let q = txn.sql();
        q.push("INSERT OR REPLACE INTO log (idx, log_id, entry) ");
        q.push_values(chunk, |mut b, r| {
            b.push_bind(to_i64(r.index))
                .push_bind(r.log_id.as_slice())
                .push_bind(r.entry.as_slice());
        });
        q.push(";");
    }
    rows.clear();
}
