//! SQLite persistence under the raft layer: the raft log (`raft-log.db`) and the state-machine
//! tables (`state.db`).
//!
//! Owns file layout, schemas, pragmas and durability rules; it does not decide *what* to
//! write (that is `raft/state_machine.rs` and openraft itself).
//!
//! ```text
//!   raft-log.db  WAL, synchronous=FULL   log(idx, log_id, entry) + meta(vote, committed, purged)
//!                one transaction (one fsync) per appended batch, then IOFlushed fires
//!   state.db     WAL, synchronous=NORMAL rows(tbl, key, value) + meta(applied, membership)
//!                + snapshot(meta, data); snapshot writes commit with FULL sync, which also
//!                makes every earlier row commit durable (the WAL is synced in order)
//! ```
//!
//! Each file is driven by exactly one connection behind an async mutex: there is one writer
//! per file anyway, and a single connection lets a write pick its own `synchronous` level.

pub mod log_store;
pub mod state_store;

use std::path::Path;
use std::sync::Arc;
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

/// Opens (creating if needed) a WAL-mode SQLite file with the given sync level.
pub(crate) async fn open_sqlite(
    path: &Path,
    synchronous: SqliteSynchronous,
) -> Result<SharedConn, StoreError> {
    let conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .busy_timeout(Duration::from_secs(5))
        .pragma("temp_store", "memory")
        .connect()
        .await?;
    Ok(Arc::new(Mutex::new(conn)))
}

/// Converts a raft index to SQLite's signed integer (indexes never reach 2^63).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
