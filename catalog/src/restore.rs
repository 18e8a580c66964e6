//! Snapshot restore (`PUT /v1/snapshot`): one raft command that replaces the whole state with
//! a snapshot's rows, so every server applies it at the same log index and a later election
//! cannot bring the old state back. No I/O here.
//!
//! ```text
//!   snapshot rows ──▶ RestoreOp::from_rows (checked: every row decodes) ──▶ raft log
//!                                                                            │
//!   State::apply ◀──────────────────────────────────────────────────────────┘
//!     old rows and new rows are both touched, so take_changes() deletes what the snapshot
//!     lacks and writes what it holds; every table index moves to the restore's index
//! ```
//!
//! Two things are not taken from the snapshot. The remembered client writes (`requests`)
//! describe this cluster's retries, not data, so they stay. And every table index (and the
//! per-service indexes) become the restore's raft index: rows keep the indexes the snapshot
//! gave them, but blocking readers watching a table see it move and read again.

use serde::{Deserialize, Serialize};

use super::State;
use super::rows::{Row, RowError, Table};

/// One row of a restore as it travels in the raft log: the value is the row's JSON text
/// (the log and the forward RPC are JSON; a string embeds it compactly, bytes would not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRow {
    /// Table.
    pub table: Table,
    /// Key within the table.
    pub key: String,
    /// The row's JSON.
    pub value: String,
}

/// The rows a restore installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreOp {
    /// Every row of the snapshot except remembered client writes.
    pub rows: Vec<RestoreRow>,
}

/// Why a snapshot's rows cannot be restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A row's value is not text (rows are JSON).
    #[error("{table:?} row {key:?} is not UTF-8 JSON")]
    NotText {
        /// The table.
        table: Table,
        /// The key.
        key: String,
    },
    /// A row does not decode.
    #[error(transparent)]
    Row(#[from] RowError),
}

impl RestoreOp {
    /// The restore of `rows` (a snapshot's), refused unless every row decodes: a bad
    /// snapshot is turned away before it reaches the log.
    pub fn from_rows(rows: Vec<Row>) -> Result<Self, RestoreError> {
        let rows: Vec<Row> = rows
            .into_iter()
            .filter(|r| r.table != Table::Requests)
            .collect();
        State::restore(rows.iter().cloned())?;
        let rows = rows
            .into_iter()
            .map(|r| match String::from_utf8(r.value) {
                Ok(value) => Ok(RestoreRow {
                    table: r.table,
                    key: r.key,
                    value,
                }),
                Err(_) => Err(RestoreError::NotText {
                    table: r.table,
                    key: r.key,
                }),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rows })
    }

    fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        self.rows.iter().map(|r| Row {
            table: r.table,
            key: r.key.clone(),
            value: r.value.as_bytes().to_vec(),
        })
    }
}

impl State {
    /// Applies a restore at raft `index` (see the module doc).
    pub(crate) fn restore_snapshot(&mut self, index: u64, op: &RestoreOp) -> super::Response {
        let mut new = match State::restore(op.rows()) {
            Ok(s) => s,
            // Checked before proposing; a row that still fails changes nothing, everywhere.
            Err(e) => return super::Response::Rejected(format!("snapshot restore: {e}")),
        };
        let old: Vec<(Table, String)> = self
            .rows()
            .into_iter()
            .filter(|r| r.table != Table::Requests)
            .map(|r| (r.table, r.key))
            .collect();
        let mut names: Vec<String> = self.service_index.keys().cloned().collect();
        names.extend(new.service_index.keys().cloned());
        for name in names {
            new.service_index.insert(name, index);
        }
        new.tables = super::TableIndexes {
            nodes: index,
            services: index,
            checks: index,
            kv: index,
            sessions: index,
            coordinates: index,
            prepared_queries: index,
            config_entries: index,
            acl_tokens: index,
            acl_policies: index,
            acl_roles: index,
        };
        new.applied = index;
        new.restored = index;
        new.requests = std::mem::take(&mut self.requests);
        new.requests_by_age = std::mem::take(&mut self.requests_by_age);
        new.changes = std::mem::take(&mut self.changes);
        *self = new;
        let fresh: Vec<(Table, String)> = self
            .rows()
            .into_iter()
            .filter(|r| r.table != Table::Requests)
            .map(|r| (r.table, r.key))
            .collect();
        for (table, key) in old.into_iter().chain(fresh) {
            self.touch(table, key);
        }
        super::Response::Ok
    }

    /// Raft index of the last snapshot restore (0: never). A blocking read that began
    /// before it returns at once instead of waiting on indexes the restore moved back.
    pub fn restored_index(&self) -> u64 {
        self.restored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, KvOp, KvVerb, Request};

    fn set(s: &mut State, index: u64, key: &str, val: &str) {
        let op = KvOp {
            value: Some(val.as_bytes().to_vec()),
            ..KvOp::new(KvVerb::Set, key)
        };
        s.apply(index, &Request::new(1, Command::Kv(op)));
    }

    fn value(s: &State, key: &str) -> Option<Vec<u8>> {
        s.kv_get(key).and_then(|e| e.value.clone())
    }

    #[test]
    fn a_restore_brings_back_the_snapshot_and_drops_later_rows() {
        let mut s = State::new();
        set(&mut s, 2, "a", "1");
        set(&mut s, 3, "b", "1");
        let saved = s.rows();
        set(&mut s, 4, "a", "2");
        set(&mut s, 5, "c", "new");
        s.take_changes();

        let op = RestoreOp::from_rows(saved).expect("valid rows");
        let resp = s.apply(9, &Request::new(1, Command::Restore(Box::new(op))));
        assert_eq!(resp, crate::Response::Ok);
        assert_eq!(value(&s, "a").as_deref(), Some(&b"1"[..]));
        assert_eq!(value(&s, "b").as_deref(), Some(&b"1"[..]));
        assert_eq!(value(&s, "c"), None);
        assert_eq!(s.table_indexes().kv, 9, "watchers of the table see it move");
        assert_eq!(s.restored_index(), 9);
        assert_eq!(s.applied_index(), 9);

        // What the store is told: "c" deleted, "a" rewritten; replaying the changes onto the
        // old rows gives exactly the new state's rows.
        let changes = s.take_changes();
        let c = changes
            .iter()
            .find(|c| c.table == Table::Kv && c.key == "c")
            .expect("c changed");
        assert_eq!(c.value, None);
        assert!(
            changes
                .iter()
                .any(|c| c.table == Table::Kv && c.key == "a" && c.value.is_some())
        );
    }

    #[test]
    fn rows_that_do_not_decode_are_refused_before_the_log() {
        let bad = vec![Row {
            table: Table::Kv,
            key: "k".into(),
            value: b"{not json".to_vec(),
        }];
        assert!(RestoreOp::from_rows(bad).is_err());
        let not_text = vec![Row {
            table: Table::Kv,
            key: "k".into(),
            value: vec![0xff, 0xfe],
        }];
        assert!(RestoreOp::from_rows(not_text).is_err());
    }
}
