//! The state-machine tables on SQLite (`state.db`): catalog rows, the applied log id and
//! membership, and which snapshot file is current.
//!
//! Plain persistence: it stores what `raft/state_machine.rs` hands it and never applies
//! commands. Row writes commit with `synchronous=NORMAL` (they survive a process crash; after
//! power loss the raft log replays what is missing).
//!
//! A snapshot body (several MB) lives in a file of its own next to `state.db`
//! (`snapshot-<index>.bin`: temp file, fsync, rename, directory fsync), written without holding
//! `state.db`'s connection, so applies do not stall behind it. `state.db` keeps only a small
//! pointer row (file name, length, snapshot metadata), switched with a FULL-sync commit after
//! the file is durable: the log is purged behind a snapshot, and that fsync also covers every
//! earlier row commit. A crash between the two leaves a stray file, removed at the next open.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteSynchronous;
use sqlx::{Row as _, SqliteConnection};

use super::{SharedConn, StoreError, Txn, open_sqlite, spawn_checkpointer};
use crate::catalog::{Row, RowChange, Table};
use crate::raft::type_config::{LogId, SnapshotMeta, StoredMembership};

const META_SM: &str = "sm";
/// Snapshot files are `snapshot-<index>.bin` in the raft directory (next to `state.db`).
const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".bin";
/// Suffix of a snapshot file being written (renamed over the final name once fsynced).
const SNAPSHOT_TMP_SUFFIX: &str = ".tmp";
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

/// Handle on `state.db` and the snapshot file next to it. Clones share the connection (the
/// snapshot builder runs in its own task and writes the snapshot through a clone).
#[derive(Clone)]
pub struct StateStore {
    conn: SharedConn,
    /// Directory of `state.db`, where snapshot files live.
    dir: PathBuf,
    /// Serializes snapshot file changes and reads (taken before `conn`, never while holding it),
    /// so a reader never sees the current file removed under it.
    snap_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").finish_non_exhaustive()
    }
}

impl StateStore {
    /// Opens or creates the state database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
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
                "CREATE TABLE IF NOT EXISTS snapshot_file (
                    id INTEGER PRIMARY KEY CHECK (id = 1), pointer BLOB NOT NULL
                )",
            )
            .execute(&mut *c)
            .await?;
            let current = read_pointer(&mut c).await?;
            remove_stray_snapshots(&dir, current.as_ref().map(|p| p.file.as_str()))?;
        }
        spawn_checkpointer(path, std::sync::Arc::downgrade(&conn)).await?;
        Ok(Self {
            conn,
            dir,
            snap_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
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

    /// Writes one applied batch: the changed rows and the new metadata, in one transaction
    /// sent as one round trip to SQLite's worker thread ([`Txn`]), with one statement per
    /// [`ROWS_PER_STATEMENT`] upserts or deletes.
    pub async fn persist(&self, changes: &[RowChange], meta: &SmMeta) -> Result<(), StoreError> {
        // `take_changes` lists each row once, so upserts and deletes are independent.
        let (upserts, deletes): (Vec<&RowChange>, Vec<&RowChange>) =
            changes.iter().partition(|ch| ch.value.is_some());
        let mut txn = Txn::new();
        push_upserts(&mut txn, &upserts, |ch| {
            (ch.table, &ch.key, ch.value.as_deref().unwrap_or_default())
        });
        for chunk in deletes.chunks(ROWS_PER_STATEMENT) {
            let q = txn.sql();
            q.push("DELETE FROM rows WHERE (tbl, key) IN (");
            let mut list = q.separated(", ");
            for ch in chunk {
                list.push("(")
                    .push_bind_unseparated(i64::from(ch.table as u8))
                    .push_unseparated(", ")
                    .push_bind_unseparated(ch.key.as_str())
                    .push_unseparated(")");
            }
            q.push(");");
        }
        txn.upsert_meta(META_SM, meta)?;
        let mut c = self.conn.lock().await;
        txn.commit(&mut c).await
    }

    /// Makes `data` the current snapshot. The body goes to a file of its own, written and
    /// fsynced without touching `state.db`'s connection; then a one-row FULL-sync commit points
    /// `state.db` at it. That commit also fsyncs every earlier row commit, so once this returns
    /// `state.db` is durable up to the snapshot's index and the log behind it may be purged.
    ///
    /// A snapshot older than the current one (a builder racing an installed snapshot) is not
    /// made current. Returns `data` back.
    pub async fn save_snapshot(
        &self,
        meta: &SnapshotMeta,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let _files = self.snap_lock.lock().await;
        let name = snapshot_file_name(meta);
        let data = write_durably(self.dir.clone(), name.clone(), data).await?;
        let pointer = encode_pointer(meta, &name, data.len())?;
        let new_index = index_of(meta);
        let replaced = {
            let mut c = self.conn.lock().await;
            let current = read_pointer(&mut c).await?;
            if current
                .as_ref()
                .is_some_and(|p| index_of(&p.meta) > new_index)
            {
                None
            } else {
                let mut txn = Txn::new();
                push_pointer(&mut txn, &pointer);
                with_full_sync(&mut c, async |c| txn.commit(c).await).await?;
                Some(current)
            }
        };
        match replaced {
            // Not current: drop the file just written (unless a current one shares its name).
            None => self.remove_unless_current(&name).await,
            Some(old) => {
                if let Some(old) = old.filter(|o| o.file != name) {
                    remove_file(&self.dir.join(&old.file)).await;
                }
            }
        }
        Ok(data)
    }

    /// Replaces all rows, the metadata and the current snapshot (installing a snapshot). The body
    /// is written to its file first; rows, metadata and the pointer to the file then change in
    /// one durable (FULL sync) transaction. Returns `data` back.
    pub async fn replace_all(
        &self,
        rows: &[Row],
        meta: &SmMeta,
        snap_meta: &SnapshotMeta,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let _files = self.snap_lock.lock().await;
        let name = snapshot_file_name(snap_meta);
        let data = write_durably(self.dir.clone(), name.clone(), data).await?;
        let pointer = encode_pointer(snap_meta, &name, data.len())?;
        let mut txn = Txn::new();
        txn.sql().push("DELETE FROM rows;");
        push_upserts(&mut txn, rows, |r| (r.table, &r.key, &r.value));
        txn.upsert_meta(META_SM, meta)?;
        push_pointer(&mut txn, &pointer);
        let old = {
            let mut c = self.conn.lock().await;
            let old = read_pointer(&mut c).await?;
            with_full_sync(&mut c, async |c| txn.commit(c).await).await?;
            old
        };
        if let Some(old) = old.filter(|o| o.file != name) {
            remove_file(&self.dir.join(&old.file)).await;
        }
        Ok(data)
    }

    /// The current snapshot, if one was saved: its metadata from `state.db`, its body from its
    /// file.
    pub async fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError> {
        let _files = self.snap_lock.lock().await;
        let pointer = {
            let mut c = self.conn.lock().await;
            read_pointer(&mut c).await?
        };
        let Some(p) = pointer else { return Ok(None) };
        let data = tokio::fs::read(self.dir.join(&p.file)).await?;
        if data.len() as u64 != p.len {
            return Err(StoreError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "snapshot file {} is {} bytes, state.db expects {}",
                    p.file,
                    data.len(),
                    p.len
                ),
            )));
        }
        Ok(Some((p.meta, data)))
    }

    /// Path of the current snapshot's file, if any.
    pub async fn current_snapshot_path(&self) -> Result<Option<PathBuf>, StoreError> {
        let mut c = self.conn.lock().await;
        Ok(read_pointer(&mut c).await?.map(|p| self.dir.join(p.file)))
    }

    async fn remove_unless_current(&self, name: &str) {
        let current = {
            let mut c = self.conn.lock().await;
            read_pointer(&mut c).await
        };
        match current {
            Ok(Some(p)) if p.file == name => {}
            // On error keep the file: a stray file is harmless (removed at the next open).
            Err(_) => {}
            _ => remove_file(&self.dir.join(name)).await,
        }
    }
}

/// The `snapshot` row: which file holds the current snapshot, and its metadata.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotPointer {
    meta: SnapshotMeta,
    /// File name inside the raft directory.
    file: String,
    /// Body length in bytes (checked when the file is read).
    len: u64,
}

fn index_of(meta: &SnapshotMeta) -> u64 {
    meta.last_log_id.as_ref().map_or(0, |l| l.index)
}

/// `snapshot-<index>.bin`: a snapshot at a given log index always has the same content.
fn snapshot_file_name(meta: &SnapshotMeta) -> String {
    format!("{SNAPSHOT_PREFIX}{}{SNAPSHOT_SUFFIX}", index_of(meta))
}

fn is_snapshot_file(name: &str) -> bool {
    name.starts_with(SNAPSHOT_PREFIX)
        && (name.ends_with(SNAPSHOT_SUFFIX) || name.ends_with(SNAPSHOT_TMP_SUFFIX))
}

fn encode_pointer(meta: &SnapshotMeta, file: &str, len: usize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&SnapshotPointer {
        meta: meta.clone(),
        file: file.to_string(),
        len: len as u64,
    })
    .map_err(StoreError::json("snapshot pointer"))
}

async fn read_pointer(c: &mut SqliteConnection) -> Result<Option<SnapshotPointer>, StoreError> {
    let row = sqlx::query("SELECT pointer FROM snapshot_file WHERE id = 1")
        .fetch_optional(&mut *c)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let bytes: &[u8] = row.try_get(0)?;
    let p: SnapshotPointer =
        serde_json::from_slice(bytes).map_err(StoreError::json("snapshot pointer"))?;
    if p.file.contains(['/', '\\']) || !is_snapshot_file(&p.file) {
        return Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("state.db names an invalid snapshot file {:?}", p.file),
        )));
    }
    Ok(Some(p))
}

/// Appends the upsert of the current snapshot's pointer to `txn`.
fn push_pointer(txn: &mut Txn, pointer: &[u8]) {
    txn.sql()
        .push("INSERT OR REPLACE INTO snapshot_file (id, pointer) VALUES (1, ")
        .push_bind(pointer)
        .push(");");
}

/// Appends `INSERT OR REPLACE INTO rows` statements for `rows` to `txn`,
/// [`ROWS_PER_STATEMENT`] rows each; `row` gives a row's table, key and value.
fn push_upserts<T>(txn: &mut Txn, rows: &[T], row: fn(&T) -> (Table, &str, &[u8])) {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let q = txn.sql();
        q.push("INSERT OR REPLACE INTO rows (tbl, key, value) ");
        q.push_values(chunk, |mut b, r| {
            let (table, key, value) = row(r);
            b.push_bind(i64::from(table as u8))
                .push_bind(key)
                .push_bind(value);
        });
        q.push(";");
    }
}

/// Writes `data` to `dir/name` so that it is durable and never seen half-written: a temporary
/// file, fsync, rename over `name`, fsync of the directory. Runs on the blocking pool.
async fn write_durably(dir: PathBuf, name: String, data: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let tmp = dir.join(format!("{name}{SNAPSHOT_TMP_SUFFIX}"));
        let res = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, dir.join(&name))?;
            std::fs::File::open(&dir)?.sync_all()
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res.map(|()| data)
    })
    .await
    .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    .map_err(StoreError::Io)
}

/// Best-effort removal of a superseded snapshot file (a leftover is removed at the next open).
async fn remove_file(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), error = %e, "removing old snapshot file failed");
    }
}

/// Removes snapshot files (and temporaries) in `dir` other than `current`: left behind by a
/// crash between writing a file and switching `state.db` to it, or before removing the old one.
fn remove_stray_snapshots(dir: &Path, current: Option<&str>) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_snapshot_file(name) && Some(name) != current {
            tracing::info!(file = name, "removing stray snapshot file");
            std::fs::remove_file(entry.path())?;
        }
    }
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
