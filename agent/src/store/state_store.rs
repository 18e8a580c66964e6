//! The state-machine tables on SQLite (`state.db`): catalog rows, the applied log id and
//! membership, and the current snapshot.
//!
//! Plain persistence: it stores what `raft/state_machine.rs` hands it and never applies
//! commands. Row writes commit with `synchronous=NORMAL` (they survive a process crash; after
//! power loss the raft log replays what is missing). Snapshot writes commit with FULL sync,
//! because the log is purged behind a snapshot: that fsync also covers every earlier row commit.

use std::fmt::Debug;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteSynchronous;
use sqlx::{Connection, QueryBuilder, Row as _, Sqlite, SqliteConnection};

use super::{SharedConn, StoreError, open_sqlite, spawn_checkpointer};
use crate::catalog::{Row, RowChange, Table};
use crate::raft::type_config::{LogId, SnapshotMeta, StoredMembership};

const META_SM: &str = "sm";
/// Rows per multi-row statement (3 bound values each, far below SQLite's variable limit).
const ROWS_PER_STATEMENT: usize = 256;

/// Raft bookkeeping kept next to the rows, updated in the same transaction as them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmMeta {
    /// Last log entry applied to the rows.
    pub last_applied: Option<LogId>,
    /// Last membership config applied.
    pub last_membership: StoredMembership,
}

/// Everything `state.db` holds, read at startup.
#[derive(Debug, Default)]
pub struct LoadedState {
    /// All catalog rows.
    pub rows: Vec<Row>,
    /// Applied log id and membership.
    pub meta: SmMeta,
}

/// Handle on `state.db`. Clones share the connection (the snapshot builder runs in its own
/// task and writes the snapshot through a clone).
#[derive(Clone)]
pub struct StateStore {
    conn: SharedConn,
}

impl Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").finish_non_exhaustive()
    }
}

impl StateStore {
    /// Opens or creates the state database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_sqlite(path, SqliteSynchronous::Normal).await?;
        {
            let mut c = conn.lock().await;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS rows (
                    tbl INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                    PRIMARY KEY (tbl, key)
                )",
            )
            .execute(&mut *c)
            .await?;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
            )
            .execute(&mut *c)
            .await?;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS snapshot (
                    id INTEGER PRIMARY KEY CHECK (id = 1), meta BLOB NOT NULL, data BLOB NOT NULL
                )",
            )
            .execute(&mut *c)
            .await?;
        }
        spawn_checkpointer(path, std::sync::Arc::downgrade(&conn)).await?;
        Ok(Self { conn })
    }

    /// Reads all rows and the raft metadata.
    pub async fn load(&self) -> Result<LoadedState, StoreError> {
        let mut c = self.conn.lock().await;
        let raw = sqlx::query("SELECT tbl, key, value FROM rows")
            .fetch_all(&mut *c)
            .await?;
        let mut rows = Vec::with_capacity(raw.len());
        for r in raw {
            let tbl: i64 = r.try_get(0)?;
            let table = u8::try_from(tbl)
                .ok()
                .and_then(Table::from_u8)
                .ok_or(StoreError::UnknownTable(tbl))?;
            rows.push(Row {
                table,
                key: r.try_get(1)?,
                value: r.try_get(2)?,
            });
        }
        let meta = sqlx::query("SELECT value FROM meta WHERE name = ?")
            .bind(META_SM)
            .fetch_optional(&mut *c)
            .await?;
        let meta = match meta {
            Some(r) => {
                let bytes: &[u8] = r.try_get(0)?;
                serde_json::from_slice(bytes).map_err(StoreError::json("state meta"))?
            }
            None => SmMeta::default(),
        };
        Ok(LoadedState { rows, meta })
    }

    /// Writes one applied batch: the changed rows and the new metadata, in one transaction,
    /// with one statement per [`ROWS_PER_STATEMENT`] upserts or deletes (each statement is a
    /// round trip to SQLite's worker thread, on the way to answering the proposers).
    pub async fn persist(&self, changes: &[RowChange], meta: &SmMeta) -> Result<(), StoreError> {
        // `take_changes` lists each row once, so upserts and deletes are independent.
        let (upserts, deletes): (Vec<&RowChange>, Vec<&RowChange>) =
            changes.iter().partition(|ch| ch.value.is_some());
        let mut c = self.conn.lock().await;
        let mut tx = c.begin().await?;
        for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT OR REPLACE INTO rows (tbl, key, value) ");
            q.push_values(chunk, |mut b, ch| {
                b.push_bind(i64::from(ch.table as u8))
                    .push_bind(ch.key.as_str())
                    .push_bind(ch.value.as_deref().unwrap_or_default());
            });
            q.build().execute(&mut *tx).await?;
        }
        for chunk in deletes.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM rows WHERE (tbl, key) IN (");
            let mut list = q.separated(", ");
            for ch in chunk {
                list.push("(")
                    .push_bind_unseparated(i64::from(ch.table as u8))
                    .push_unseparated(", ")
                    .push_bind_unseparated(ch.key.as_str())
                    .push_unseparated(")");
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        write_meta(&mut tx, meta).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores `data` as the current snapshot, durably (FULL sync).
    pub async fn save_snapshot(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StoreError> {
        let meta = serde_json::to_vec(meta).map_err(StoreError::json("snapshot meta"))?;
        let mut c = self.conn.lock().await;
        with_full_sync(&mut c, async |c| {
            sqlx::query("INSERT OR REPLACE INTO snapshot (id, meta, data) VALUES (1, ?, ?)")
                .bind(meta)
                .bind(data)
                .execute(&mut *c)
                .await?;
            Ok(())
        })
        .await
    }

    /// Replaces all rows, the metadata and the current snapshot (installing a snapshot), in one
    /// durable (FULL sync) transaction.
    pub async fn replace_all(
        &self,
        rows: &[Row],
        meta: &SmMeta,
        snap_meta: &SnapshotMeta,
        data: &[u8],
    ) -> Result<(), StoreError> {
        let snap_meta = serde_json::to_vec(snap_meta).map_err(StoreError::json("snapshot meta"))?;
        let mut c = self.conn.lock().await;
        with_full_sync(&mut c, async |c| {
            let mut tx = c.begin().await?;
            sqlx::query("DELETE FROM rows").execute(&mut *tx).await?;
            for r in rows {
                sqlx::query("INSERT INTO rows (tbl, key, value) VALUES (?, ?, ?)")
                    .bind(r.table as u8 as i64)
                    .bind(&r.key)
                    .bind(&r.value)
                    .execute(&mut *tx)
                    .await?;
            }
            write_meta(&mut tx, meta).await?;
            sqlx::query("INSERT OR REPLACE INTO snapshot (id, meta, data) VALUES (1, ?, ?)")
                .bind(snap_meta)
                .bind(data)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The current snapshot, if one was saved.
    pub async fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError> {
        let mut c = self.conn.lock().await;
        let row = sqlx::query("SELECT meta, data FROM snapshot WHERE id = 1")
            .fetch_optional(&mut *c)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let meta: &[u8] = row.try_get(0)?;
        let meta = serde_json::from_slice(meta).map_err(StoreError::json("snapshot meta"))?;
        Ok(Some((meta, row.try_get(1)?)))
    }
}

async fn write_meta(c: &mut SqliteConnection, meta: &SmMeta) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(meta).map_err(StoreError::json("state meta"))?;
    sqlx::query("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)")
        .bind(META_SM)
        .bind(bytes)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Runs `f` with `synchronous=FULL`, so its commit fsyncs the WAL, then returns to NORMAL.
async fn with_full_sync<T>(
    c: &mut SqliteConnection,
    f: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    sqlx::query("PRAGMA synchronous = FULL")
        .execute(&mut *c)
        .await?;
    let res = f(&mut *c).await;
    sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(&mut *c)
        .await?;
    res
}
