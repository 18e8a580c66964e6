//! SQLite persistence under the raft layer: the raft log (`raft-log.db`) and the state-machine
//! tables (`state.db`).
//!
//! Owns file layout, schemas, pragmas and durability rules; it does not decide *what* to
//! write (that is `raft/state_machine.rs` and openraft itself).
//!
//! ```text
//!   raft-log.db  WAL, synchronous=FULL   log(idx, log_id, entry) + meta(vote, committed, purged)
//!                one writer task: one transaction (one fsync) per queued batch, then IOFlushed
//!   state.db     WAL, synchronous=NORMAL rows(tbl, key, value) + meta(applied, membership)
//!                + snapshot_file(pointer: file name, length, snapshot meta); switching the
//!                pointer commits with FULL sync, which also makes every earlier row commit
//!                durable (the WAL is synced in order)
//!   snapshot-<index>.bin  the current snapshot body: temp file, fsync, rename, dir fsync,
//!                written before the pointer and without holding state.db's connection
//! ```
//!
//! Each file has exactly one writing connection: `state.db`'s sits behind an async mutex (a
//! single connection lets a write pick its own `synchronous` level), `raft-log.db`'s is owned by
//! its writer task, next to a read connection. WAL checkpoints run from a connection of their
//! own in the background ([`spawn_checkpointer`]), so a commit on the write path does not stall
//! copying the WAL back into the database file.

pub mod log_store;
mod log_tail;
mod log_writer;
pub mod state_store;

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection};
use tokio::sync::Mutex;

pub use log_store::LogStore;
pub use state_store::{LoadedState, SmMeta, StateStore};

use crate::catalog::RowError;

/// File name of the raft log database inside the data directory.
pub const LOG_DB_FILE: &str = "raft-log.db";
/// File name of the state-machine database inside the data directory.
pub const STATE_DB_FILE: &str = "state.db";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite returned an error (I/O, corruption, busy, ...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] sqlx::Error),
    /// A JSON value stored in SQLite (log entry, vote, metadata) could not be encoded/decoded.
    #[error("corrupt {what}: {source}")]
    Json {
        /// What was being encoded or decoded.
        what: &'static str,
        /// The decoder error.
        #[source]
        source: serde_json::Error,
    },
    /// A snapshot body could not be encoded/decoded.
    #[error("corrupt snapshot: {0}")]
    Snapshot(#[from] postcard::Error),
    /// A state row could not be decoded into catalog state.
    #[error(transparent)]
    Row(#[from] RowError),
    /// A row refers to a table id this version does not know.
    #[error("unknown table id {0} in state.db")]
    UnknownTable(i64),
    /// Filesystem error (creating the data directory).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The raft log writer failed to commit a batch (and refuses writes from then on).
    #[error("raft log write failed: {0}")]
    Write(String),
    /// The raft log writer task is gone (the runtime is shutting down).
    #[error("raft log writer stopped")]
    WriterGone,
}

impl StoreError {
    pub(crate) fn json(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
        move |source| StoreError::Json { what, source }
    }
}

/// openraft's storage traits speak `std::io::Error`.
impl From<StoreError> for std::io::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io(e) => e,
            other => std::io::Error::other(other),
        }
    }
}

/// One SQLite connection shared by the clones of a store.
pub(crate) type SharedConn = Arc<Mutex<SqliteConnection>>;

/// WAL size (pages) at which a committing connection checkpoints by itself. Only a backstop:
/// the background checkpointer keeps the WAL well below it, off the write path.
const WAL_AUTOCHECKPOINT_PAGES: &str = "16384";
/// How often the background checkpointer copies the WAL back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// Opens (creating if needed) a WAL-mode SQLite file with the given sync level.
pub(crate) async fn connect_sqlite(
    path: &Path,
    synchronous: SqliteSynchronous,
) -> Result<SqliteConnection, StoreError> {
    Ok(SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .busy_timeout(Duration::from_secs(5))
        .pragma("temp_store", "memory")
        .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .connect()
        .await?)
}

/// [`connect_sqlite`] behind the shared async mutex.
pub(crate) async fn open_sqlite(
    path: &Path,
    synchronous: SqliteSynchronous,
) -> Result<SharedConn, StoreError> {
    Ok(Arc::new(Mutex::new(
        connect_sqlite(path, synchronous).await?,
    )))
}

/// Starts a task that checkpoints `path`'s WAL every [`CHECKPOINT_INTERVAL`] from its own
/// connection (PASSIVE: it never blocks the writer, which keeps committing to the WAL
/// meanwhile). It stops once `alive` can no longer be upgraded, i.e. the store is dropped.
/// Durability does not depend on it: commits are durable in the WAL, checkpoints only bound
/// its size and keep its copy-back off the write path.
pub(crate) async fn spawn_checkpointer<T: Send + Sync + 'static>(
    path: &Path,
    alive: Weak<T>,
) -> Result<(), StoreError> {
    let mut conn = connect_sqlite(path, SqliteSynchronous::Full).await?;
    let path = path.display().to_string();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if alive.strong_count() == 0 {
                break;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut conn)
                .await
            {
                tracing::warn!(db = %path, error = %e, "WAL checkpoint failed");
            }
        }
    });
    Ok(())
}

/// A transaction's statements, sent to SQLite in one round trip: [`Txn::new`] opens it with
/// `BEGIN`, callers append `;`-terminated statements with their bound values, and
/// [`Txn::commit`] runs the whole text at once. sqlx hands every statement it is given to the
/// connection's worker thread and waits for the answer, so `BEGIN`, each `INSERT` and
/// `COMMIT` sent apart cost two context switches each; a write batch here was 4–5 of them per
/// database. sqlx binds `?` values across the statements of one query in order.
///
/// Not cancel-safe, unlike sqlx's own `Transaction`: a `commit` future dropped mid-way can
/// leave the transaction open on the connection, and the next `BEGIN` then fails. Both
/// callers run it to completion: the log writer is a task that owns its connection, and the
/// state machine's apply is only dropped at shutdown, which closes the connection (SQLite
/// rolls an open transaction back on close).
pub(crate) struct Txn {
    q: sqlx::QueryBuilder<sqlx::Sqlite>,
}

impl Txn {
    /// `BEGIN`, nothing else yet.
    pub(crate) fn new() -> Self {
        Self {
            q: sqlx::QueryBuilder::new("BEGIN;"),
        }
    }

    /// The statement text so far, for appending the next one.
    pub(crate) fn sql(&mut self) -> &mut sqlx::QueryBuilder<sqlx::Sqlite> {
        self.q.push("\n");
        &mut self.q
    }

    /// Appends `INSERT OR REPLACE INTO meta (name, value) VALUES (name, value as JSON);`.
    pub(crate) fn upsert_meta(
        &mut self,
        name: &'static str,
        value: &impl serde::Serialize,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(value).map_err(StoreError::json(name))?;
        self.sql()
            .push("INSERT OR REPLACE INTO meta (name, value) VALUES (")
            .push_bind(name)
            .push(", ")
            .push_bind(json)
            .push(");");
        Ok(())
    }

    /// Runs every statement and `COMMIT`. If one fails, the transaction is rolled back (the
    /// connection stays usable) and the error returned: nothing of it is applied.
    pub(crate) async fn commit(mut self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        self.q.push("\nCOMMIT;");
        if let Err(e) = self.q.build().execute(&mut *conn).await {
            // The failed statement ended the batch before its COMMIT; roll back what ran. If
            // BEGIN itself failed there is nothing to roll back, and that error is moot.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(e.into());
        }
        Ok(())
    }
}

/// Converts a raft index to SQLite's signed integer (indexes never reach 2^63).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
