//! Exactly-once: a request applied again under the same id answers its first result and
//! changes nothing, for every kind of write a client retries (set, CAS, delete, session
//! create, transaction); records expire by leader time and by count, and survive a restore.

use super::*;
use crate::{
    Check, Command, HealthStatus, KvOp, KvVerb, Node, RegisterOp, Request, SERF_HEALTH, Session,
    TxnOp, TxnResult,
};

fn id(n: u128) -> RequestId {
    RequestId::from_u128(n)
}

fn once(now_ms: u64, n: u128, cmd: Command) -> Request {
    Request {
        now_ms,
        cmd,
        request_id: Some(id(n)),
    }
}

fn set(key: &str, val: &str) -> Command {
    Command::Kv(KvOp {
        value: Some(val.as_bytes().to_vec()),
        ..KvOp::new(KvVerb::Set, key)
    })
}

fn cas(key: &str, val: &str, index: u64) -> Command {
    Command::Kv(KvOp {
        value: Some(val.as_bytes().to_vec()),
        index,
        ..KvOp::new(KvVerb::Cas, key)
    })
}

/// (value, modify index) of `key`.
fn value(s: &State, key: &str) -> Option<(String, u64)> {
    s.kv_get(key).map(|e| {
        (
            String::from_utf8_lossy(e.value.as_deref().unwrap_or_default()).into_owned(),
            e.modify_index,
        )
    })
}

#[test]
fn a_retried_put_does_not_bring_back_a_value_a_later_write_replaced() {
    let mut s = State::new();
    assert_eq!(
        s.apply(1, &once(10, 1, set("k", "first"))),
        Response::Bool(true)
    );
    assert_eq!(
        s.apply(2, &once(11, 2, set("k", "second"))),
        Response::Bool(true)
    );
    // The retry of request 1 reaches the new leader after request 2 was applied.
    assert_eq!(
        s.apply(3, &once(12, 1, set("k", "first"))),
        Response::Bool(true)
    );
    assert_eq!(value(&s, "k"), Some(("second".into(), 2)));
    assert_eq!(
        s.applied_index(),
        3,
        "the duplicate still advances the applied index"
    );
    assert_eq!(s.remembered_requests(), 2);
}

#[test]
fn a_retried_cas_answers_true_once_and_applies_once() {
    let mut s = State::new();
    s.apply(1, &once(10, 1, set("k", "v0")));
    assert_eq!(
        s.apply(2, &once(11, 2, cas("k", "v1", 1))),
        Response::Bool(true)
    );
    // Without the id, the same CAS now fails its index check: the anomaly of issue #19.
    assert_eq!(
        s.clone().apply(3, &Request::new(12, cas("k", "v1", 1))),
        Response::Bool(false)
    );
    assert_eq!(
        s.apply(3, &once(12, 2, cas("k", "v1", 1))),
        Response::Bool(true)
    );
    assert_eq!(value(&s, "k"), Some(("v1".into(), 2)));
    // And a CAS that failed answers false again, even if it would succeed now.
    assert_eq!(
        s.apply(4, &once(13, 3, cas("k", "v9", 9))),
        Response::Bool(false)
    );
    s.apply(5, &once(14, 4, set("pad", "x")));
    assert_eq!(
        s.apply(6, &once(15, 3, cas("k", "v9", 9))),
        Response::Bool(false)
    );
    assert_eq!(value(&s, "k"), Some(("v1".into(), 2)));
}

#[test]
fn a_retried_delete_does_not_delete_the_key_written_after_it() {
    let mut s = State::new();
    s.apply(1, &once(10, 1, set("k", "a")));
    let delete = Command::Kv(KvOp::new(KvVerb::Delete, "k"));
    assert_eq!(
        s.apply(2, &once(11, 2, delete.clone())),
        Response::Bool(true)
    );
    s.apply(3, &once(12, 3, set("k", "b")));
    assert_eq!(s.apply(4, &once(13, 2, delete)), Response::Bool(true));
    assert_eq!(value(&s, "k"), Some(("b".into(), 3)));
}

#[test]
fn a_retried_session_create_returns_the_session_instead_of_already_exists() {
    let mut s = State::new();
    let node = Node {
        node: "n1".into(),
        address: "10.0.0.1".into(),
        ..Node::default()
    };
    let check = Check {
        node: "n1".into(),
        check_id: SERF_HEALTH.into(),
        status: HealthStatus::Passing,
        ..Check::default()
    };
    let register = RegisterOp {
        node,
        checks: vec![check],
        ..RegisterOp::default()
    };
    s.apply(1, &Request::new(10, Command::Register(Box::new(register))));
    let create = Command::SessionCreate(Session {
        id: "s1".into(),
        node: "n1".into(),
        node_checks: vec![SERF_HEALTH.into()],
        ..Session::default()
    });
    let first = s.apply(2, &once(11, 7, create.clone()));
    assert_eq!(first, Response::SessionCreated("s1".into()));
    assert_eq!(s.apply(3, &once(12, 7, create.clone())), first);
    assert_eq!(s.session("s1").map(|x| x.create_index), Some(2));
    // Without the id the retry is refused although the session exists.
    assert!(matches!(
        s.apply(4, &Request::new(13, create)),
        Response::Rejected(_)
    ));
}

#[test]
fn a_retried_txn_answers_its_first_results_and_writes_nothing() {
    let mut s = State::new();
    let ops = vec![
        TxnOp::Kv(KvOp {
            value: Some(b"1".to_vec()),
            ..KvOp::new(KvVerb::Set, "a")
        }),
        TxnOp::Kv(KvOp {
            value: Some(b"1".to_vec()),
            ..KvOp::new(KvVerb::Set, "b")
        }),
    ];
    let first = s.apply(1, &once(10, 5, Command::Txn(ops.clone())));
    assert!(matches!(&first, Response::TxnCommitted(r) if r.len() == 2));
    if let Response::TxnCommitted(r) = &first {
        assert!(matches!(&r[0], TxnResult::Kv(e) if e.modify_index == 1));
    }
    s.apply(2, &once(11, 6, set("a", "2")));
    assert_eq!(s.apply(3, &once(12, 5, Command::Txn(ops))), first);
    assert_eq!(value(&s, "a"), Some(("2".into(), 2)));
    assert_eq!(value(&s, "b"), Some(("1".into(), 1)));
}

#[test]
fn results_expire_by_leader_time_and_then_a_replay_applies_again() {
    let mut s = State::new();
    s.apply(1, &once(1_000, 1, set("k", "a")));
    s.apply(2, &once(1_000 + REQUEST_RETENTION_MS - 1, 2, set("k", "b")));
    assert!(s.request_result(&id(1)).is_some(), "not yet expired");
    // Any later command moves leader time past the retention of request 1.
    s.apply(
        3,
        &Request::new(1_000 + REQUEST_RETENTION_MS + 1, Command::Noop),
    );
    assert!(s.request_result(&id(1)).is_none());
    assert!(s.request_result(&id(2)).is_some());
    let changes = s.take_changes();
    assert!(
        changes
            .iter()
            .any(|c| c.table == Table::Requests && c.value.is_none()),
        "the expired record is deleted from the store"
    );
}

#[test]
fn results_are_bounded_in_number_oldest_first() {
    let mut s = State::new();
    for n in 0..=MAX_REQUESTS as u128 {
        let rec = RequestRecord {
            at_ms: 5_000 + n as u64,
            index: 1,
            response: Response::Ok,
        };
        s.insert_request(id(n), rec);
    }
    s.apply(1, &once(200_000, u128::MAX, Command::Noop));
    assert_eq!(s.remembered_requests(), MAX_REQUESTS);
    assert!(s.request_result(&id(0)).is_none() && s.request_result(&id(1)).is_none());
    assert!(s.request_result(&id(u128::MAX)).is_some());
}

#[test]
fn results_are_persisted_rows_and_survive_a_restore() {
    let mut s = State::new();
    s.apply(1, &once(10, 1, set("k", "a")));
    let changes = s.take_changes();
    assert!(
        changes
            .iter()
            .any(|c| c.table == Table::Requests && c.key == request_key(1, id(1)))
    );
    s.apply(2, &once(11, 2, set("k", "b")));
    let mut restored = State::restore(s.rows()).expect("restore");
    assert_eq!(restored.remembered_requests(), 2);
    assert_eq!(
        restored.apply(3, &once(12, 1, set("k", "a"))),
        Response::Bool(true)
    );
    assert_eq!(value(&restored, "k"), Some(("b".into(), 2)));
}

#[test]
fn request_ids_are_32_hex_digits_on_the_wire() {
    let r = once(1, 0xabc, Command::Noop);
    let json = serde_json::to_string(&r).expect("encode");
    assert!(
        json.contains("\"00000000000000000000000000000abc\""),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<Request>(&json).expect("decode"), r);
    // Entries written before ids existed decode without one.
    let old: Request = serde_json::from_str(r#"{"now_ms":1,"cmd":"Noop"}"#).expect("old");
    assert_eq!(old.request_id, None);
    assert!(RequestId::try_from("xyz".to_string()).is_err());
}

#[test]
fn record_rows_are_keyed_in_index_order_and_expire_under_the_same_key() {
    let mut s = State::new();
    // Ids in descending order: the rows' keys still ascend with the raft index.
    s.apply(1, &once(10, 0xff, set("a", "1")));
    s.apply(2, &once(11, 0x01, set("b", "1")));
    let keys: Vec<String> = s
        .take_changes()
        .into_iter()
        .filter(|c| c.table == Table::Requests && c.value.is_some())
        .map(|c| c.key)
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys[0] < keys[1], "{keys:?}");
    assert_eq!(parse_request_key(&keys[1]), Some((Some(2), id(1))));
    // Expiry deletes the row under the key it was written with.
    s.apply(
        3,
        &Request::new(11 + REQUEST_RETENTION_MS + 1, Command::Noop),
    );
    let deleted: Vec<String> = s
        .take_changes()
        .into_iter()
        .filter(|c| c.table == Table::Requests && c.value.is_none())
        .map(|c| c.key)
        .collect();
    assert_eq!(deleted, keys);
}

#[test]
fn a_record_stored_under_its_id_alone_is_kept_and_moved_to_the_new_key() {
    let rec = RequestRecord {
        at_ms: 10,
        index: 7,
        response: Response::Bool(true),
    };
    let legacy = crate::Row {
        table: Table::Requests,
        key: id(5).to_string(),
        value: serde_json::to_vec(&rec).expect("encode"),
    };
    let mut s = State::restore([legacy]).expect("restore");
    assert_eq!(s.request_result(&id(5)), Some(&rec));
    let changes = s.take_changes();
    let old = changes.iter().find(|c| c.key == id(5).to_string());
    let new = changes.iter().find(|c| c.key == request_key(7, id(5)));
    assert!(old.is_some_and(|c| c.value.is_none()), "{changes:?}");
    assert!(new.is_some_and(|c| c.value.is_some()), "{changes:?}");
    // A retry of that request still answers its first result.
    assert_eq!(
        s.apply(8, &once(11, 5, set("k", "x"))),
        Response::Bool(true)
    );
    assert_eq!(value(&s, "k"), None);
}

#[test]
fn a_batch_applies_its_writes_in_order_each_exactly_once_at_one_index() {
    let mut s = State::new();
    s.apply(1, &once(10, 1, set("k", "v0")));
    let batch = Request::new(
        12,
        Command::Batch(vec![
            once(11, 2, cas("k", "v1", 1)),
            // The same write again (a retry that queued behind its first copy): first answer.
            once(11, 2, cas("k", "v1", 1)),
            // A different CAS on the index the first one replaced: fails, as it would after
            // an entry of its own.
            once(12, 3, cas("k", "v2", 1)),
            once(12, 4, set("other", "x")),
            Request::new(12, Command::Batch(vec![once(12, 5, set("nested", "y"))])),
        ]),
    );
    assert_eq!(
        s.apply(2, &batch),
        Response::Batch(vec![
            Response::Bool(true),
            Response::Bool(true),
            Response::Bool(false),
            Response::Bool(true),
            Response::Rejected("nested batch".into()),
        ])
    );
    assert_eq!(value(&s, "k"), Some(("v1".into(), 2)));
    assert_eq!(value(&s, "other"), Some(("x".into(), 2)));
    assert_eq!(value(&s, "nested"), None);
    assert_eq!(s.applied_index(), 2);
    // A retry of a batched write in a later entry still answers its first result.
    assert_eq!(
        s.apply(3, &once(13, 3, cas("k", "v2", 1))),
        Response::Bool(false)
    );
    assert_eq!(s.remembered_requests(), 4);
}
