//! The raft log on SQLite (`raft-log.db`): openraft's [`RaftLogStorage`] and [`RaftLogReader`].
//!
//! Durability contract: the connection runs `synchronous=FULL`, so every commit fsyncs the WAL.
//! [`RaftLogStorage::append`] writes a whole batch in one transaction (group commit: one fsync
//! per batch) and only then reports `IOFlushed`; a write acknowledged by raft therefore
//! survives `kill -9` and power loss. Votes and purges are committed the same way. The
//! `committed` pointer is an optimisation (openraft re-derives it after an election), so it is
//! written without an fsync; the next synced commit carries it to disk.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::sqlite::SqliteSynchronous;
use sqlx::{Connection, Row as _, SqliteConnection};

use super::{SharedConn, StoreError, open_sqlite, to_i64};
use crate::raft::type_config::{Entry, LogId, TypeConfig, Vote};

const META_VOTE: &str = "vote";
const META_COMMITTED: &str = "committed";
const META_PURGED: &str = "last_purged";

/// Raft log storage on one SQLite file. Clones share the connection; the clone handed to
/// openraft as `LogReader` reads the same data.
#[derive(Clone)]
pub struct LogStore {
    conn: SharedConn,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl LogStore {
    /// Opens or creates the log database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_sqlite(path, SqliteSynchronous::Full).await?;
        {
            let mut c = conn.lock().await;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS log (
                    idx INTEGER PRIMARY KEY,
                    log_id BLOB NOT NULL,
                    entry BLOB NOT NULL
                )",
            )
            .execute(&mut *c)
            .await?;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
            )
            .execute(&mut *c)
            .await?;
        }
        Ok(Self { conn })
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

    async fn write_meta<T: Serialize>(
        c: &mut SqliteConnection,
        name: &'static str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(StoreError::json(name))?;
        sqlx::query("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)")
            .bind(name)
            .bind(bytes)
            .execute(&mut *c)
            .await?;
        Ok(())
    }

    async fn entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, StoreError> {
        let mut c = self.conn.lock().await;
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

    async fn log_state(&self) -> Result<LogState<TypeConfig>, StoreError> {
        let mut c = self.conn.lock().await;
        let purged: Option<LogId> = Self::read_meta(&mut c, META_PURGED).await?;
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

    async fn append_batch(
        &self,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<(), StoreError> {
        let mut c = self.conn.lock().await;
        let mut tx = c.begin().await?;
        for e in entries {
            let log_id = serde_json::to_vec(&e.log_id).map_err(StoreError::json("log id"))?;
            let entry = serde_json::to_vec(&e).map_err(StoreError::json("log entry"))?;
            sqlx::query("INSERT OR REPLACE INTO log (idx, log_id, entry) VALUES (?, ?, ?)")
                .bind(to_i64(e.log_id.index))
                .bind(log_id)
                .bind(entry)
                .execute(&mut *tx)
                .await?;
        }
        // synchronous=FULL: the commit returns after the WAL is fsynced.
        tx.commit().await?;
        Ok(())
    }

    async fn truncate(&self, after: Option<LogId>) -> Result<(), StoreError> {
        let mut c = self.conn.lock().await;
        match after {
            Some(id) => {
                sqlx::query("DELETE FROM log WHERE idx > ?")
                    .bind(to_i64(id.index))
                    .execute(&mut *c)
                    .await?
            }
            None => sqlx::query("DELETE FROM log").execute(&mut *c).await?,
        };
        Ok(())
    }

    async fn purge_upto(&self, log_id: LogId) -> Result<(), StoreError> {
        let mut c = self.conn.lock().await;
        let mut tx = c.begin().await?;
        // Record the purge point first, in the same transaction: there is never a moment where
        // entries are gone but `last_purged` does not cover them.
        Self::write_meta(&mut tx, META_PURGED, &log_id).await?;
        sqlx::query("DELETE FROM log WHERE idx <= ?")
            .bind(to_i64(log_id.index))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn store_committed(&self, committed: Option<LogId>) -> Result<(), StoreError> {
        let mut c = self.conn.lock().await;
        // Not fsynced on purpose (see module docs): switch this one commit to NORMAL.
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *c)
            .await?;
        let res = Self::write_meta(&mut c, META_COMMITTED, &committed).await;
        // Restore FULL even if the write failed; a failure here must surface, or later
        // appends would be acknowledged without an fsync.
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *c)
            .await?;
        res
    }
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
        let mut c = self.conn.lock().await;
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
        let mut c = self.conn.lock().await;
        // Autocommit under synchronous=FULL: durable when this returns.
        Self::write_meta(&mut c, META_VOTE, vote).await?;
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), std::io::Error> {
        Ok(self.store_committed(committed).await?)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, std::io::Error> {
        let mut c = self.conn.lock().await;
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
        self.append_batch(entries).await?;
        // Only now is the batch on disk.
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), std::io::Error> {
        Ok(self.truncate(last_log_id).await?)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), std::io::Error> {
        Ok(self.purge_upto(log_id).await?)
    }
}
