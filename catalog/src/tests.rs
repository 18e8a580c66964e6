//! Unit tests of the pure state machine.

use super::*;

fn req(now_ms: u64, cmd: Command) -> Request {
    Request::new(now_ms, cmd)
}

fn set(key: &str, val: &str) -> Command {
    Command::Kv(KvOp {
        value: Some(val.as_bytes().to_vec()),
        ..KvOp::new(KvVerb::Set, key)
    })
}

fn kv(verb: KvVerb, key: &str, index: u64, session: Option<&str>) -> Command {
    Command::Kv(KvOp {
        index,
        session: session.map(str::to_string),
        ..KvOp::new(verb, key)
    })
}

fn node(name: &str) -> Node {
    Node {
        node: name.into(),
        address: "10.0.0.1".into(),
        datacenter: "dc1".into(),
        ..Node::default()
    }
}

fn serf_check(node: &str, status: HealthStatus) -> Check {
    Check {
        node: node.into(),
        check_id: SERF_HEALTH.into(),
        name: "Serf Health Status".into(),
        status,
        ..Check::default()
    }
}

fn register_node(s: &mut State, idx: u64, name: &str) {
    let op = RegisterOp {
        node: node(name),
        checks: vec![serf_check(name, HealthStatus::Passing)],
        ..RegisterOp::default()
    };
    assert_eq!(
        s.apply(idx, &req(0, Command::Register(Box::new(op)))),
        Response::Ok
    );
}

fn session(id: &str, node: &str, behavior: SessionBehavior, lock_delay_ms: u64) -> Command {
    Command::SessionCreate(Session {
        id: id.into(),
        node: node.into(),
        behavior,
        lock_delay: lock_delay_ms * 1_000_000,
        node_checks: vec![SERF_HEALTH.into()],
        ..Session::default()
    })
}

#[test]
fn set_keeps_create_index_and_bumps_modify_index() {
    let mut s = State::new();
    assert_eq!(s.apply(5, &req(0, set("a", "1"))), Response::Bool(true));
    assert_eq!(s.apply(7, &req(0, set("a", "2"))), Response::Bool(true));
    let e = s.kv_get("a").unwrap();
    assert_eq!(
        (e.create_index, e.modify_index, e.value.as_deref()),
        (5, 7, Some(&b"2"[..]))
    );
}

#[test]
fn cas_zero_creates_only_and_cas_index_must_match() {
    let mut s = State::new();
    assert_eq!(
        s.apply(2, &req(0, kv(KvVerb::Cas, "k", 0, None))),
        Response::Bool(true)
    );
    assert_eq!(
        s.apply(3, &req(0, kv(KvVerb::Cas, "k", 0, None))),
        Response::Bool(false)
    );
    assert_eq!(
        s.apply(4, &req(0, kv(KvVerb::Cas, "k", 9, None))),
        Response::Bool(false)
    );
    assert_eq!(
        s.apply(5, &req(0, kv(KvVerb::Cas, "k", 2, None))),
        Response::Bool(true)
    );
    assert_eq!(s.kv_get("k").unwrap().modify_index, 5);
}

#[test]
fn key_index_is_scoped_to_the_key_and_survives_delete_as_tombstone() {
    let mut s = State::new();
    s.apply(2, &req(0, set("a", "1")));
    s.apply(3, &req(0, set("b", "1")));
    assert_eq!(s.kv_key_index("a"), 2);
    assert_eq!(s.kv_key_index("missing"), 1);
    s.apply(4, &req(10, kv(KvVerb::Delete, "a", 0, None)));
    assert_eq!(s.kv_key_index("a"), 4);
    assert_eq!(s.kv_prefix_index("a"), 4);
    assert_eq!(s.kv_prefix_index("b"), 3);
    s.apply(5, &req(20, Command::ReapTombstones { before_ms: 11 }));
    assert_eq!(s.kv_key_index("a"), 1);
}

#[test]
fn lock_requires_valid_session_and_excludes_others() {
    let mut s = State::new();
    register_node(&mut s, 1, "n1");
    assert!(matches!(
        s.apply(2, &req(0, kv(KvVerb::Lock, "l", 0, Some("nope")))),
        Response::Rejected(_)
    ));
    assert_eq!(
        s.apply(3, &req(0, session("s1", "n1", SessionBehavior::Release, 0))),
        Response::SessionCreated("s1".into())
    );
    assert_eq!(
        s.apply(4, &req(0, session("s2", "n1", SessionBehavior::Release, 0))),
        Response::SessionCreated("s2".into())
    );
    assert_eq!(
        s.apply(5, &req(0, kv(KvVerb::Lock, "l", 0, Some("s1")))),
        Response::Bool(true)
    );
    assert_eq!(
        s.apply(6, &req(0, kv(KvVerb::Lock, "l", 0, Some("s2")))),
        Response::Bool(false)
    );
    assert_eq!(
        s.apply(7, &req(0, kv(KvVerb::Lock, "l", 0, Some("s1")))),
        Response::Bool(true)
    );
    assert_eq!(
        s.kv_get("l").unwrap().lock_index,
        1,
        "re-acquire by the holder keeps LockIndex"
    );
    assert_eq!(
        s.apply(8, &req(0, kv(KvVerb::Unlock, "l", 0, Some("s2")))),
        Response::Bool(false)
    );
    assert_eq!(
        s.apply(9, &req(0, kv(KvVerb::Unlock, "l", 0, Some("s1")))),
        Response::Bool(true)
    );
    assert_eq!(s.kv_get("l").unwrap().session, None);
}

#[test]
fn destroyed_session_releases_with_lock_delay_or_deletes() {
    let mut s = State::new();
    register_node(&mut s, 1, "n1");
    s.apply(
        2,
        &req(0, session("rel", "n1", SessionBehavior::Release, 15_000)),
    );
    s.apply(3, &req(0, session("del", "n1", SessionBehavior::Delete, 0)));
    s.apply(
        4,
        &req(0, session("other", "n1", SessionBehavior::Release, 0)),
    );
    s.apply(5, &req(0, kv(KvVerb::Lock, "a", 0, Some("rel"))));
    s.apply(6, &req(0, kv(KvVerb::Lock, "b", 0, Some("del"))));
    s.apply(7, &req(1_000, Command::SessionDestroy { id: "rel".into() }));
    s.apply(8, &req(1_000, Command::SessionDestroy { id: "del".into() }));
    assert_eq!(s.kv_get("a").unwrap().session, None);
    assert!(s.kv_get("b").is_none());
    // Within the 15 s lock delay another session cannot take the lock; after it, it can.
    assert_eq!(
        s.apply(9, &req(10_000, kv(KvVerb::Lock, "a", 0, Some("other")))),
        Response::Bool(false)
    );
    assert_eq!(
        s.apply(10, &req(16_001, kv(KvVerb::Lock, "a", 0, Some("other")))),
        Response::Bool(true)
    );
}

#[test]
fn critical_serf_health_invalidates_sessions_and_blocks_new_ones() {
    let mut s = State::new();
    register_node(&mut s, 1, "n1");
    s.apply(2, &req(0, session("s1", "n1", SessionBehavior::Release, 0)));
    let update = CheckStatusUpdate {
        node: "n1".into(),
        check_id: SERF_HEALTH.into(),
        status: HealthStatus::Critical,
        output: "dead".into(),
    };
    s.apply(3, &req(0, Command::CheckUpdate(vec![update])));
    assert!(s.session("s1").is_none());
    assert!(
        matches!(s.apply(4, &req(0, session("s2", "n1", SessionBehavior::Release, 0))), Response::Rejected(m) if m.contains("critical"))
    );
    assert!(
        matches!(s.apply(5, &req(0, session("s3", "ghost", SessionBehavior::Release, 0))), Response::Rejected(m) if m.contains("Missing node"))
    );
}

#[test]
fn txn_is_all_or_nothing() {
    let mut s = State::new();
    s.apply(2, &req(0, set("a", "1")));
    let ops = vec![
        TxnOp::Kv(KvOp {
            value: Some(b"x".to_vec()),
            ..KvOp::new(KvVerb::Set, "b")
        }),
        TxnOp::Kv(KvOp {
            index: 99,
            ..KvOp::new(KvVerb::Cas, "a")
        }),
    ];
    let r = s.apply(3, &req(0, Command::Txn(ops)));
    assert!(
        matches!(&r, Response::TxnRolledBack(e) if e.len() == 1 && e[0].op_index == 1),
        "{r:?}"
    );
    assert!(s.kv_get("b").is_none());
    let ops = vec![
        TxnOp::Kv(KvOp {
            value: Some(b"x".to_vec()),
            ..KvOp::new(KvVerb::Set, "b")
        }),
        TxnOp::Kv(KvOp {
            index: 2,
            value: Some(b"y".to_vec()),
            ..KvOp::new(KvVerb::Cas, "a")
        }),
        TxnOp::Kv(KvOp::new(KvVerb::Get, "a")),
    ];
    match s.apply(4, &req(0, Command::Txn(ops))) {
        Response::TxnCommitted(r) => {
            assert_eq!(r.len(), 3);
            let TxnResult::Kv(e) = &r[1];
            assert_eq!((e.modify_index, e.value.as_ref()), (4, None));
            let TxnResult::Kv(e) = &r[2];
            assert_eq!(e.value.as_deref(), Some(&b"y"[..]));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn service_index_moves_only_for_that_service() {
    let mut s = State::new();
    register_node(&mut s, 1, "n1");
    let svc = |name: &str| Service {
        id: name.into(),
        service: name.into(),
        port: 80,
        ..Service::default()
    };
    let op = |name: &str| RegisterOp {
        node: node("n1"),
        service: Some(svc(name)),
        ..RegisterOp::default()
    };
    s.apply(2, &req(0, Command::Register(Box::new(op("web")))));
    s.apply(3, &req(0, Command::Register(Box::new(op("db")))));
    assert_eq!(s.service_index("web"), 2);
    assert_eq!(s.service_index("db"), 3);
    // Re-registering an identical service is not a change.
    s.apply(4, &req(0, Command::Register(Box::new(op("web")))));
    assert_eq!(s.service_index("web"), 2);
    // A node check change touches every service of the node.
    let update = CheckStatusUpdate {
        node: "n1".into(),
        check_id: SERF_HEALTH.into(),
        status: HealthStatus::Warning,
        output: String::new(),
    };
    s.apply(5, &req(0, Command::CheckUpdate(vec![update])));
    assert_eq!((s.service_index("web"), s.service_index("db")), (5, 5));
    let de = DeregisterOp {
        node: "n1".into(),
        service_id: Some("db".into()),
        ..DeregisterOp::default()
    };
    s.apply(6, &req(0, Command::Deregister(de)));
    assert_eq!((s.service_index("web"), s.service_index("db")), (5, 6));
    assert_eq!(s.health_entries("web")[0].checks.len(), 1);
    assert!(s.service_rows("db").is_empty());
}

#[test]
fn service_health_matches_health_entries() {
    let mut s = State::new();
    let svc = |id: &str, name: &str| Service {
        id: id.into(),
        service: name.into(),
        port: 80,
        ..Service::default()
    };
    let check = |node: &str, id: &str, service_id: &str, status| Check {
        node: node.into(),
        check_id: id.into(),
        service_id: service_id.into(),
        status,
        ..Check::default()
    };
    let ops = [
        // n1: a passing node check, web-a critical through its own check, web-b untouched
        // by web-a's check.
        RegisterOp {
            node: node("n1"),
            service: Some(svc("web-a", "web")),
            checks: vec![
                serf_check("n1", HealthStatus::Passing),
                check("n1", "a", "web-a", HealthStatus::Critical),
            ],
            ..RegisterOp::default()
        },
        RegisterOp {
            node: node("n1"),
            service: Some(svc("web-b", "web")),
            ..RegisterOp::default()
        },
        // n2: a warning node check, with a db on the same node.
        RegisterOp {
            node: node("n2"),
            service: Some(svc("web", "web")),
            checks: vec![serf_check("n2", HealthStatus::Warning)],
            ..RegisterOp::default()
        },
        RegisterOp {
            node: node("n2"),
            service: Some(svc("db", "db")),
            checks: vec![check("n2", "d", "db", HealthStatus::Critical)],
            ..RegisterOp::default()
        },
        // n3: no checks at all.
        RegisterOp {
            node: node("n3"),
            service: Some(svc("web", "web")),
            ..RegisterOp::default()
        },
    ];
    for (i, op) in ops.into_iter().enumerate() {
        let idx = u64::try_from(i).unwrap() + 1;
        assert_eq!(
            s.apply(idx, &req(0, Command::Register(Box::new(op)))),
            Response::Ok
        );
    }
    let borrowed: Vec<(String, String, HealthStatus)> = s
        .service_health("web")
        .map(|(n, svc, st)| (n.node.clone(), svc.id.clone(), st))
        .collect();
    let owned: Vec<(String, String, HealthStatus)> = s
        .health_entries("web")
        .iter()
        .map(|e| (e.node.node.clone(), e.service.id.clone(), e.aggregate()))
        .collect();
    assert_eq!(borrowed, owned);
    use HealthStatus::*;
    let want = [
        ("n1", "web-a", Critical),
        ("n1", "web-b", Passing),
        ("n2", "web", Warning),
        ("n3", "web", Passing),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(n, id, st)| (n.to_string(), id.to_string(), *st))
        .collect();
    assert_eq!(borrowed, want);
    assert_eq!(s.service_health("nope").count(), 0);
}

#[test]
fn rows_round_trip_and_changes_match_state() {
    let mut s = State::new();
    register_node(&mut s, 1, "n1");
    s.apply(2, &req(0, set("a/b", "1")));
    s.apply(3, &req(0, session("s1", "n1", SessionBehavior::Release, 0)));
    s.apply(4, &req(5, kv(KvVerb::Delete, "a/b", 0, None)));
    let restored = State::restore(s.rows()).unwrap();
    assert_eq!(restored.rows(), s.rows());
    assert_eq!(restored.applied_index(), 4);

    // Replaying take_changes() onto an empty row set gives the same rows as a full dump.
    let mut t = State::new();
    let mut table: std::collections::BTreeMap<(Table, String), Vec<u8>> = Default::default();
    for (i, cmd) in [
        set("x", "1"),
        set("y", "2"),
        kv(KvVerb::Delete, "x", 0, None),
    ]
    .into_iter()
    .enumerate()
    {
        t.apply(i as u64 + 1, &req(1, cmd));
        for c in t.take_changes() {
            match c.value {
                Some(v) => table.insert((c.table, c.key), v),
                None => table.remove(&(c.table, c.key)),
            };
        }
    }
    let dump: std::collections::BTreeMap<_, _> = t
        .rows()
        .into_iter()
        .map(|r| ((r.table, r.key), r.value))
        .collect();
    assert_eq!(table, dump);
}

#[test]
fn service_rows_follow_the_by_name_index_through_renames_deregisters_and_restore() {
    let mut s = State::new();
    register_node(&mut s, 1, "n1");
    register_node(&mut s, 2, "n2");
    let op = |node_name: &str, id: &str, name: &str| RegisterOp {
        node: node(node_name),
        service: Some(Service {
            id: id.into(),
            service: name.into(),
            port: 80,
            ..Service::default()
        }),
        ..RegisterOp::default()
    };
    let ids = |s: &State, name: &str| -> Vec<(String, String)> {
        s.service_rows(name)
            .into_iter()
            .map(|r| (r.node.node, r.service.id))
            .collect()
    };
    let pair = |n: &str, id: &str| (n.to_string(), id.to_string());
    s.apply(
        3,
        &req(0, Command::Register(Box::new(op("n2", "web-b", "web")))),
    );
    s.apply(
        4,
        &req(0, Command::Register(Box::new(op("n1", "web-a", "web")))),
    );
    s.apply(
        5,
        &req(0, Command::Register(Box::new(op("n1", "db", "db")))),
    );
    // Ordered by node, then instance ID, as a scan of every service would give.
    assert_eq!(ids(&s, "web"), [pair("n1", "web-a"), pair("n2", "web-b")]);
    assert_eq!(ids(&s, "db"), [pair("n1", "db")]);
    // The same ID re-registered under another name moves between names.
    s.apply(
        6,
        &req(0, Command::Register(Box::new(op("n2", "web-b", "api")))),
    );
    assert_eq!(ids(&s, "web"), [pair("n1", "web-a")]);
    assert_eq!(ids(&s, "api"), [pair("n2", "web-b")]);
    assert_eq!(s.service_index("web"), 6);
    // A restored state (snapshot or SQLite rows) rebuilds the index.
    let restored = State::restore(s.rows()).expect("restore");
    for name in ["web", "api", "db", "none"] {
        assert_eq!(ids(&restored, name), ids(&s, name), "{name}");
    }
    // Deregistering a whole node removes its instances from every name; the last instance
    // of a name drops the name.
    let de = DeregisterOp {
        node: "n1".into(),
        ..DeregisterOp::default()
    };
    s.apply(7, &req(0, Command::Deregister(de)));
    assert!(ids(&s, "web").is_empty());
    assert!(ids(&s, "db").is_empty());
    assert_eq!(ids(&s, "api"), [pair("n2", "web-b")]);
    assert!(!s.services_by_name.contains_key("web"));
    assert_eq!(s.services_by_name.len(), 1);
}

/// Every key's (session, modify index), in key order.
fn locks(s: &State) -> Vec<(String, Option<String>, u64)> {
    s.kv_prefix("")
        .map(|e| (e.key.clone(), e.session.clone(), e.modify_index))
        .collect()
}

/// Sessions s1 (release) holding a and c, s2 (delete) holding b and d, s3 holding e; f is
/// unlocked, g was locked by s1 and unlocked, h was locked by s3 and deleted.
fn three_sessions_with_locks() -> State {
    let mut s = State::new();
    register_node(&mut s, 1, "n1");
    s.apply(2, &req(0, session("s1", "n1", SessionBehavior::Release, 0)));
    s.apply(3, &req(0, session("s2", "n1", SessionBehavior::Delete, 0)));
    s.apply(4, &req(0, session("s3", "n1", SessionBehavior::Release, 0)));
    let mut i = 5;
    for (key, sid) in [
        ("a", "s1"),
        ("b", "s2"),
        ("c", "s1"),
        ("d", "s2"),
        ("e", "s3"),
        ("g", "s1"),
        ("h", "s3"),
    ] {
        let r = s.apply(i, &req(0, kv(KvVerb::Lock, key, 0, Some(sid))));
        assert_eq!(r, Response::Bool(true), "lock {key}");
        i += 1;
    }
    s.apply(i, &req(0, set("f", "v")));
    s.apply(i + 1, &req(0, kv(KvVerb::Unlock, "g", 0, Some("s1"))));
    s.apply(i + 2, &req(0, kv(KvVerb::Delete, "h", 0, None)));
    s
}

/// Destroying s1 then s2 changes exactly their keys: s1's are released, s2's deleted.
fn destroy_and_check(mut s: State) {
    assert_eq!(s.session_held_keys("s1"), vec!["a", "c"]);
    assert_eq!(s.session_held_keys("s2"), vec!["b", "d"]);
    assert_eq!(s.session_held_keys("s3"), vec!["e"], "h was deleted");
    let before = locks(&s);
    s.apply(100, &req(1, Command::SessionDestroy { id: "s1".into() }));
    let want: Vec<_> = before
        .iter()
        .map(|(k, sid, idx)| match k.as_str() {
            "a" | "c" => (k.clone(), None, 100),
            _ => (k.clone(), sid.clone(), *idx),
        })
        .collect();
    assert_eq!(locks(&s), want, "only s1's keys released");
    assert!(s.session_held_keys("s1").is_empty());
    s.apply(101, &req(1, Command::SessionDestroy { id: "s2".into() }));
    let keys: Vec<String> = locks(&s).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(keys, vec!["a", "c", "e", "f", "g"], "s2's keys deleted");
    assert_eq!(s.kv_get("e").unwrap().session.as_deref(), Some("s3"));
    // A released key taken by another session moves to that session in the index.
    s.apply(102, &req(1, kv(KvVerb::Lock, "a", 0, Some("s3"))));
    assert_eq!(s.session_held_keys("s3"), vec!["a", "e"]);
}

#[test]
fn destroying_a_session_releases_exactly_its_keys() {
    destroy_and_check(three_sessions_with_locks());
}

#[test]
fn the_session_index_is_rebuilt_by_a_snapshot_restore() {
    let saved = three_sessions_with_locks().rows();
    // A restore over a state with other locks: the index must be the snapshot's only.
    let mut s = State::new();
    register_node(&mut s, 1, "n1");
    s.apply(2, &req(0, session("s1", "n1", SessionBehavior::Release, 0)));
    s.apply(3, &req(0, kv(KvVerb::Lock, "zz", 0, Some("s1"))));
    let op = restore::RestoreOp::from_rows(saved.clone()).expect("valid rows");
    assert_eq!(
        s.apply(50, &req(0, Command::Restore(Box::new(op)))),
        Response::Ok
    );
    destroy_and_check(s);
    // And a state loaded from the rows (a snapshot install) has it too.
    destroy_and_check(State::restore(saved).expect("rows decode"));
}
