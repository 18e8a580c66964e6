//! The raft log on SQLite (`raft-log.db`): openraft's [`RaftLogStorage`] and [`RaftLogReader`].
//!
//! Durability contract: the write connection runs `synchronous=FULL`, so every commit fsyncs the
//! WAL. [`RaftLogStorage::append`] queues the entries for the [writer](super::log_writer) and
//! returns at once; the writer commits everything queued in one transaction (group commit: one
//! fsync per batch) and only then reports `IOFlushed`. A write acknowledged by raft therefore
//! survives `kill -9` and power loss. Votes, truncations and purges go through the same queue
//! (so they stay in raft's order) and their calls return only after their commit. The
//! `committed` pointer is an optimisation (openraft re-derives it after an election): it is kept
//! in memory and written with the next transaction, never with an fsync of its own.
//!
//! Raft reads what it just appended (the state machine applies from the log, the leader
//! replicates from it) before it is on disk. The [`Tail`] keeps the newest entries in memory
//! for that, so reads neither wait for the writer nor touch SQLite; it drops only entries that
//! are already durable, and reads below it go to a separate read connection.
//!
//! ```text
//!   append ─▶ Tail (memory, readable now) ─▶ writer queue ─▶ BEGIN … COMMIT (fsync) ─▶ IOFlushed
//!   read   ─▶ Tail, or SQLite (read connection) below it
//! ```

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use serde::de::DeserializeOwned;
use sqlx::sqlite::SqliteSynchronous;
use sqlx::{Row as _, SqliteConnection};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::log_tail::{META_COMMITTED, META_PURGED, META_VOTE, Tail};
use super::log_writer::{self, Done, EncodedEntry, Op};
use super::{SharedConn, StoreError, connect_sqlite, spawn_checkpointer, to_i64};
use crate::raft::type_config::{Entry, LogId, TypeConfig, Vote};

/// Raft log storage on one SQLite file. Clones share the tail, the writer and the read
/// connection; the clone handed to openraft as `LogReader` reads the same data.
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

struct Shared {
    tail: Arc<parking_lot::Mutex<Tail>>,
    writer: mpsc::UnboundedSender<Op>,
    reader: SharedConn,
    /// Latest `save_committed` value, which may not be on disk yet.
    committed: parking_lot::Mutex<Option<Option<LogId>>>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl LogStore {
    /// Opens or creates the log database at `path` and starts its writer task (and a WAL
    /// checkpointer). Must be called inside a tokio runtime; the tasks end when every clone of
    /// the store is dropped.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let mut wconn = connect_sqlite(path, SqliteSynchronous::Full).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS log (
                idx INTEGER PRIMARY KEY,
                log_id BLOB NOT NULL,
                entry BLOB NOT NULL
            )",
        )
        .execute(&mut wconn)
        .await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)")
            .execute(&mut wconn)
            .await?;
        let reader: SharedConn = Arc::new(Mutex::new(
            connect_sqlite(path, SqliteSynchronous::Full).await?,
        ));
        let state = {
            let mut c = reader.lock().await;
            Self::sqlite_log_state(&mut c).await?
        };
        let next = state.last_log_id.map_or(0, |l| l.index + 1);
        let tail = Arc::new(parking_lot::Mutex::new(Tail::new(next)));
        let (writer, rx) = mpsc::unbounded_channel();
        tokio::spawn(log_writer::run(wconn, rx, tail.clone()));
        spawn_checkpointer(path, Arc::downgrade(&reader)).await?;
        Ok(Self {
            shared: Arc::new(Shared {
                tail,
                writer,
                reader,
                committed: parking_lot::Mutex::new(None),
            }),
        })
    }

    async fn read_meta<T: DeserializeOwned>(
        c: &mut SqliteConnection,
        name: &'static str,
    ) -> Result<Option<T>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *c)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let bytes: Vec<u8> = row.try_get(0)?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(StoreError::json(name))
            }
        }
    }

    /// Entries `[start, end)` from SQLite (all durable).
    async fn sqlite_entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, StoreError> {
        let mut c = self.shared.reader.lock().await;
        let rows = sqlx::query("SELECT entry FROM log WHERE idx >= ? AND idx < ? ORDER BY idx")
            .bind(to_i64(start))
            .bind(to_i64(end))
            .fetch_all(&mut *c)
            .await?;
        rows.iter()
            .map(|r| {
                let bytes: &[u8] = r.try_get(0)?;
                serde_json::from_slice(bytes).map_err(StoreError::json("log entry"))
            })
            .collect()
    }

    async fn entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, StoreError> {
        // Copy the in-memory part first: anything below `first` is durable, and stays in SQLite
        // even if the tail moves on meanwhile.
        let (first, from_tail) = {
            let tail = self.shared.tail.lock();
            let lo = start.max(tail.first);
            let hi = end.min(tail.first + tail.entries.len() as u64);
            let part: Vec<Entry> = if lo < hi {
                let (a, b) = ((lo - tail.first) as usize, (hi - tail.first) as usize);
                tail.entries.range(a..b).cloned().collect()
            } else {
                Vec::new()
            };
            (tail.first, part)
        };
        if start >= first {
            return Ok(from_tail);
        }
        let mut out = self.sqlite_entries(start, end.min(first)).await?;
        out.extend(from_tail);
        Ok(out)
    }

    async fn sqlite_log_state(
        c: &mut SqliteConnection,
    ) -> Result<LogState<TypeConfig>, StoreError> {
        let purged: Option<LogId> = Self::read_meta(c, META_PURGED).await?;
        let last = sqlx::query("SELECT log_id FROM log ORDER BY idx DESC LIMIT 1")
            .fetch_optional(&mut *c)
            .await?;
        let last: Option<LogId> = match last {
            Some(r) => {
                let bytes: &[u8] = r.try_get(0)?;
                Some(serde_json::from_slice(bytes).map_err(StoreError::json("log id"))?)
            }
            None => None,
        };
        Ok(LogState {
            last_log_id: last.or(purged),
            last_purged_log_id: purged,
        })
    }

    async fn log_state(&self) -> Result<LogState<TypeConfig>, StoreError> {
        let mut state = {
            let mut c = self.shared.reader.lock().await;
            Self::sqlite_log_state(&mut c).await?
        };
        // Appended but possibly not yet durable entries are part of the log too.
        if let Some(last) = self.shared.tail.lock().last() {
            state.last_log_id = Some(last);
        }
        Ok(state)
    }

    /// Queues `op` and waits until the writer has committed it.
    async fn write_and_wait(&self, op: impl FnOnce(Done) -> Op) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.queue(op(tx))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(StoreError::Write(msg)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    fn queue(&self, op: Op) -> Result<(), StoreError> {
        self.shared
            .writer
            .send(op)
            .map_err(|_| StoreError::WriterGone)
    }
}

fn encode(e: &Entry) -> Result<EncodedEntry, StoreError> {
    Ok(EncodedEntry {
        index: e.log_id.index,
        log_id: serde_json::to_vec(&e.log_id).map_err(StoreError::json("log id"))?,
        entry: serde_json::to_vec(e).map_err(StoreError::json("log entry"))?,
    })
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, std::io::Error> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => e.saturating_add(1),
            Bound::Excluded(e) => *e,
            Bound::Unbounded => u64::MAX,
        };
        Ok(self.entries(start, end).await?)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, std::io::Error> {
        let mut c = self.shared.reader.lock().await;
        Ok(Self::read_meta(&mut c, META_VOTE).await?)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, std::io::Error> {
        Ok(self.log_state().await?)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), std::io::Error> {
        // Durable when this returns: the writer replies after the commit's fsync.
        let vote = *vote;
        Ok(self.write_and_wait(|done| Op::Vote(vote, done)).await?)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), std::io::Error> {
        *self.shared.committed.lock() = Some(committed);
        Ok(self.queue(Op::Committed(committed))?)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, std::io::Error> {
        if let Some(c) = *self.shared.committed.lock() {
            return Ok(c);
        }
        let mut c = self.shared.reader.lock().await;
        let v: Option<Option<LogId>> = Self::read_meta(&mut c, META_COMMITTED).await?;
        Ok(v.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), std::io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let rows = entries.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        {
            // Readable from now on (openraft's contract), durable once `callback` fires.
            let mut tail = self.shared.tail.lock();
            for e in entries {
                tail.push(e);
            }
        }
        Ok(self.queue(Op::Append { rows, callback })?)
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), std::io::Error> {
        self.write_and_wait(|done| Op::Truncate(last_log_id, done))
            .await?;
        // Only now: every earlier append has been flushed and marked, so the tail's `flushed`
        // cannot be raised past the cut by a batch written before it.
        self.shared
            .tail
            .lock()
            .truncate_after(last_log_id.map(|l| l.index));
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), std::io::Error> {
        self.write_and_wait(|done| Op::Purge(log_id, done)).await?;
        self.shared.tail.lock().purge_upto(log_id.index);
        Ok(())
    }
}
