//! Store tests: openraft's storage conformance suite run against the SQLite log store and the
//! catalog state machine, plus reopen checks on real files.

use openraft::StorageError;
use openraft::errors::ErrorSource;
use openraft::impls::BoxedErrorSource;
use openraft::impls::leader_id_adv::LeaderId;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::{Entry, EntryPayload, LogId, RaftLogReader};
use tempfile::TempDir;

use super::{LOG_DB_FILE, LogStore, STATE_DB_FILE, StateStore};
use crate::catalog::{Command, Request};
use crate::raft::state_machine::StateMachine;
use crate::raft::type_config::{Entry as RaftEntry, TypeConfig};

struct SqliteBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for SqliteBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir()
            .map_err(|e| StorageError::read(BoxedErrorSource::from_error(&e)))?;
        let log = LogStore::open(&dir.path().join(LOG_DB_FILE))
            .await
            .map_err(to_sto)?;
        let store = StateStore::open(&dir.path().join(STATE_DB_FILE))
            .await
            .map_err(to_sto)?;
        let (sm, _published) = StateMachine::open(store).await.map_err(to_sto)?;
        Ok((dir, log, sm))
    }
}

fn to_sto(e: super::StoreError) -> StorageError<TypeConfig> {
    StorageError::read(BoxedErrorSource::from_error(&e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_stores_pass_the_openraft_storage_suite() {
    Suite::test_all(SqliteBuilder).await.expect("storage suite");
}

fn entry(term: u64, index: u64) -> RaftEntry {
    let log_id = LogId::new(LeaderId { term, node_id: 1 }, index);
    Entry {
        log_id,
        payload: EntryPayload::Normal(Request::new(index, Command::Noop)),
    }
}

#[tokio::test]
async fn appended_entries_vote_and_purge_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(LOG_DB_FILE);
    {
        let mut log = LogStore::open(&path).await.expect("open");
        // `append` commits (fsync) before it returns; the callback fires just before that.
        log.append((1..=10).map(|i| entry(1, i)), IOFlushed::noop())
            .await
            .expect("append");
        log.purge(entry(1, 3).log_id).await.expect("purge");
        log.truncate_after(Some(entry(1, 8).log_id))
            .await
            .expect("truncate");
    }
    let mut log = LogStore::open(&path).await.expect("reopen");
    let st = log.get_log_state().await.expect("log state");
    assert_eq!(st.last_purged_log_id.map(|l| l.index), Some(3));
    assert_eq!(st.last_log_id.map(|l| l.index), Some(8));
    let got = log.try_get_log_entries(0..100).await.expect("read");
    assert_eq!(
        got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
        (4..=8).collect::<Vec<_>>()
    );
    assert_eq!(got[0], entry(1, 4));
}

fn snap_meta(index: u64) -> crate::raft::type_config::SnapshotMeta {
    openraft::SnapshotMeta {
        last_log_id: Some(entry(1, index).log_id),
        last_membership: Default::default(),
    }
}

fn snapshot_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snapshot-"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn snapshot_lives_in_its_own_file_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(STATE_DB_FILE);
    {
        let store = StateStore::open(&path).await.expect("open");
        assert!(store.current_snapshot().await.expect("read").is_none());
        let data = store
            .save_snapshot(&snap_meta(5), vec![5; 1000])
            .await
            .expect("save 5");
        assert_eq!(data, vec![5; 1000]);
        store
            .save_snapshot(&snap_meta(9), vec![9; 2000])
            .await
            .expect("save 9");
        // The superseded file is removed; an older snapshot never becomes current.
        assert_eq!(snapshot_files(dir.path()), vec!["snapshot-9.bin"]);
        store
            .save_snapshot(&snap_meta(7), vec![7; 10])
            .await
            .expect("save 7");
        assert_eq!(snapshot_files(dir.path()), vec!["snapshot-9.bin"]);
        let (meta, data) = store.current_snapshot().await.expect("read").expect("some");
        assert_eq!((meta, data), (snap_meta(9), vec![9; 2000]));
    }
    // Strays from a crash (a file never made current, a half-written temp file) go at open.
    std::fs::write(dir.path().join("snapshot-12.bin"), b"x").expect("stray");
    std::fs::write(dir.path().join("snapshot-13.bin.tmp"), b"x").expect("stray tmp");
    let store = StateStore::open(&path).await.expect("reopen");
    assert_eq!(snapshot_files(dir.path()), vec!["snapshot-9.bin"]);
    let (meta, data) = store.current_snapshot().await.expect("read").expect("some");
    assert_eq!((meta, data), (snap_meta(9), vec![9; 2000]));

    // A truncated file is reported, not returned.
    std::fs::write(dir.path().join("snapshot-9.bin"), [9; 10]).expect("truncate");
    assert!(store.current_snapshot().await.is_err());
}

/// Installing a snapshot replaces every row in one transaction, however many statements its
/// rows take, and moves the applied index and the snapshot pointer with them.
#[tokio::test]
async fn replace_all_swaps_every_row_and_the_pointer_together() {
    use crate::catalog::{Row, Table};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(STATE_DB_FILE);
    let rows = |n: usize, tag: &str| -> Vec<Row> {
        (0..n)
            .map(|i| Row {
                table: Table::Nodes,
                key: format!("{tag}{i:04}"),
                value: format!("{{\"{tag}\":{i}}}").into_bytes(),
            })
            .collect()
    };
    let meta = |index| super::SmMeta {
        last_applied: Some(entry(1, index).log_id),
        last_membership: Default::default(),
    };
    let store = StateStore::open(&path).await.expect("open");
    // Far more rows than one statement holds.
    let first = rows(1000, "a");
    store
        .replace_all(&first, &meta(5), &snap_meta(5), vec![5; 10])
        .await
        .expect("install 5");
    let second = rows(300, "b");
    store
        .replace_all(&second, &meta(9), &snap_meta(9), vec![9; 10])
        .await
        .expect("install 9");
    drop(store);
    let store = StateStore::open(&path).await.expect("reopen");
    let loaded = store.load().await.expect("load");
    let mut got = loaded.rows;
    got.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(got, second, "only the second snapshot's rows, all of them");
    assert_eq!(loaded.meta, meta(9));
    let (snap, data) = store.current_snapshot().await.expect("read").expect("some");
    assert_eq!((snap, data), (snap_meta(9), vec![9; 10]));
}

/// One [`super::Txn`] is all or nothing: values bound in several statements land where
/// they were bound, a failing statement leaves none of the transaction behind, and the
/// connection takes the next transaction.
#[tokio::test]
async fn a_txn_sent_in_one_round_trip_is_all_or_nothing() {
    use sqlx::Row as _;
    use sqlx::sqlite::SqliteSynchronous;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = super::connect_sqlite(&dir.path().join("t.db"), SqliteSynchronous::Full)
        .await
        .expect("open");
    sqlx::query("CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)")
        .execute(&mut c)
        .await
        .expect("schema");
    let rows = async |c: &mut sqlx::SqliteConnection| -> Vec<(String, Vec<u8>)> {
        sqlx::query("SELECT name, value FROM meta ORDER BY name")
            .fetch_all(c)
            .await
            .expect("select")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };

    let mut txn = super::Txn::new();
    txn.upsert_meta("a", &1).expect("json");
    txn.sql()
        .push("INSERT INTO meta (name, value) VALUES (")
        .push_bind("b")
        .push(", ")
        .push_bind(b"2".to_vec())
        .push(");");
    txn.upsert_meta("c", &3).expect("json");
    txn.commit(&mut c).await.expect("commit");
    let want = |v: &[(&str, &[u8])]| -> Vec<(String, Vec<u8>)> {
        v.iter().map(|(n, b)| (n.to_string(), b.to_vec())).collect()
    };
    assert_eq!(
        rows(&mut c).await,
        want(&[("a", b"1"), ("b", b"2"), ("c", b"3")])
    );

    // The second statement breaks the primary key: the first one's upsert is rolled back.
    let mut txn = super::Txn::new();
    txn.upsert_meta("a", &"changed").expect("json");
    txn.sql()
        .push("INSERT INTO meta (name, value) VALUES (")
        .push_bind("b")
        .push(", x'00');");
    txn.upsert_meta("d", &4).expect("json");
    assert!(
        txn.commit(&mut c).await.is_err(),
        "a duplicate key must fail"
    );
    assert_eq!(
        rows(&mut c).await,
        want(&[("a", b"1"), ("b", b"2"), ("c", b"3")])
    );

    // No transaction was left open: the next one commits.
    let mut txn = super::Txn::new();
    txn.upsert_meta("d", &4).expect("json");
    txn.commit(&mut c).await.expect("commit after a failed one");
    assert_eq!(rows(&mut c).await.len(), 4);
}
