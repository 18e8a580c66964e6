//! Unit tests of prepared queries: validation, apply and persistence, resolution order,
//! template rendering and the execution filters.

use std::collections::BTreeMap;

use super::*;
use crate::{
    Check, Command, HealthStatus, Node, RegisterOp, Request, Response, SERF_HEALTH, Service,
    Session, State,
};

const ID1: &str = "11111111-1111-1111-1111-111111111111";
const ID2: &str = "22222222-2222-2222-2222-222222222222";
const ID3: &str = "33333333-3333-3333-3333-333333333333";

fn req(cmd: Command) -> Request {
    Request::new(1, cmd)
}

fn query(id: &str, name: &str, service: &str) -> PreparedQuery {
    PreparedQuery {
        id: id.into(),
        name: name.into(),
        service: ServiceQuery {
            service: service.into(),
            ..ServiceQuery::default()
        },
        ..PreparedQuery::default()
    }
}

fn template(id: &str, name: &str, regexp: &str, service: &str) -> PreparedQuery {
    PreparedQuery {
        template: QueryTemplate {
            kind: TEMPLATE_NAME_PREFIX_MATCH.into(),
            regexp: regexp.into(),
            remove_empty_tags: false,
        },
        ..query(id, name, service)
    }
}

fn create(s: &mut State, index: u64, q: PreparedQuery) -> Response {
    s.apply(index, &req(Command::PreparedQueryCreate(Box::new(q))))
}

/// Registers `node` running `redis` (ID `redis-<node>`) with `tags`, `meta` and one
/// service check in `status`.
fn register(s: &mut State, index: u64, node: &str, tags: &[&str], status: HealthStatus) {
    let meta = BTreeMap::from([("env".to_string(), format!("env-{node}"))]);
    let sid = format!("redis-{node}");
    let op = RegisterOp {
        node: Node {
            node: node.into(),
            address: "10.0.0.1".into(),
            meta: BTreeMap::from([("rack".to_string(), node.to_string())]),
            ..Node::default()
        },
        service: Some(Service {
            id: sid.clone(),
            service: "redis".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            meta,
            ..Service::default()
        }),
        checks: vec![
            Check {
                node: node.into(),
                check_id: SERF_HEALTH.into(),
                status: HealthStatus::Passing,
                ..Check::default()
            },
            Check {
                node: node.into(),
                check_id: format!("service:{sid}"),
                service_id: sid,
                service_name: "redis".into(),
                status,
                ..Check::default()
            },
        ],
        ..RegisterOp::default()
    };
    assert_eq!(
        s.apply(index, &req(Command::Register(Box::new(op)))),
        Response::Ok
    );
}

fn exec_nodes(s: &State, q: &PreparedQuery) -> Vec<String> {
    let r = execute_query(s, q, &ExecuteRequest::default());
    let mut names: Vec<String> = r.nodes.into_iter().map(|e| e.node.node).collect();
    names.sort();
    names
}

fn invalid_field(r: Result<(), QueryError>) -> &'static str {
    match r {
        Err(QueryError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[test]
fn create_update_delete_keep_indexes_and_survive_restore() {
    let mut s = State::new();
    assert_eq!(create(&mut s, 5, query(ID1, "q", "redis")), Response::Ok);
    let mut changed = query(ID1, "q2", "redis");
    changed.dns.ttl = "10s".into();
    let upd = Command::PreparedQueryUpdate(Box::new(changed));
    assert_eq!(s.apply(7, &req(upd)), Response::Ok);
    let q = s.prepared_query(ID1).expect("stored");
    assert_eq!(
        (q.name.as_str(), q.create_index, q.modify_index),
        ("q2", 5, 7)
    );
    assert_eq!(s.table_indexes().prepared_queries, 7);
    let restored = State::restore(s.rows()).expect("restore");
    assert_eq!(restored.prepared_query(ID1), Some(q));
    assert!(
        s.take_changes()
            .iter()
            .any(|c| c.table == crate::Table::PreparedQueries && c.key == ID1)
    );
    let del = || req(Command::PreparedQueryDelete { id: ID1.into() });
    assert_eq!(s.apply(8, &del()), Response::Ok);
    assert_eq!(s.prepared_query(ID1), None);
    assert_eq!(
        s.apply(9, &del()),
        Response::Rejected("Query not found".into())
    );
    let upd = Command::PreparedQueryUpdate(Box::new(query(ID2, "x", "redis")));
    assert_eq!(
        s.apply(10, &req(upd)),
        Response::Rejected("Query not found".into())
    );
}

#[test]
fn validation_names_the_bad_field() {
    let mut s = State::new();
    create(&mut s, 1, query(ID1, "taken", "redis"));
    assert_eq!(
        invalid_field(validate(&s, &query(ID2, "", ""), false)),
        "Service.Service"
    );
    assert_eq!(
        invalid_field(validate(&s, &query(ID2, "taken", "redis"), false)),
        "Name"
    );
    assert_eq!(
        invalid_field(validate(&s, &query(ID2, ID3, "redis"), false)),
        "Name"
    );
    let mut q = query(ID2, "x", "redis");
    q.session = "nope".into();
    assert_eq!(invalid_field(validate(&s, &q, false)), "Session");
    let q = template(ID2, "t", "([", "x");
    assert_eq!(invalid_field(validate(&s, &q, false)), "Template.Regexp");
    let q = template(ID2, "t", "", "${bogus}");
    assert_eq!(invalid_field(validate(&s, &q, false)), "Service.Service");
    let mut q = template(ID2, "t", "", "x");
    q.template.kind = "prefix".into();
    assert_eq!(invalid_field(validate(&s, &q, false)), "Template.Type");
    let mut q = query(ID2, "x", "redis");
    q.dns.ttl = "soon".into();
    assert_eq!(invalid_field(validate(&s, &q, false)), "DNS.TTL");
    // Templates may leave Service to the name; renaming a query to its own name is fine.
    assert_eq!(validate(&s, &template(ID2, "t", "", ""), false), Ok(()));
    assert_eq!(validate(&s, &query(ID1, "taken", "redis"), true), Ok(()));
    // Apply refuses what validate refuses, with the same text.
    let r = create(&mut s, 2, query(ID2, "taken", "redis"));
    assert!(matches!(r, Response::Rejected(m) if m.contains("Name")));
}

#[test]
fn only_one_catch_all_template_but_many_unnamed_static_queries() {
    let mut s = State::new();
    assert_eq!(create(&mut s, 1, query(ID1, "", "a")), Response::Ok);
    assert_eq!(create(&mut s, 2, query(ID2, "", "b")), Response::Ok);
    assert_eq!(create(&mut s, 3, template(ID3, "", "", "c")), Response::Ok);
    let other = template("44444444-4444-4444-4444-444444444444", "", "", "d");
    assert_eq!(invalid_field(validate(&s, &other, false)), "Name");
}

#[test]
fn session_invalidation_deletes_its_queries() {
    let mut s = State::new();
    register(&mut s, 1, "n1", &[], HealthStatus::Passing);
    let sess = Session {
        id: "s1".into(),
        node: "n1".into(),
        node_checks: vec![SERF_HEALTH.into()],
        ..Session::default()
    };
    s.apply(2, &req(Command::SessionCreate(sess)));
    let mut q = query(ID1, "q", "redis");
    q.session = "s1".into();
    assert_eq!(create(&mut s, 3, q), Response::Ok);
    assert_eq!(
        create(&mut s, 4, query(ID2, "other", "redis")),
        Response::Ok
    );
    s.apply(5, &req(Command::SessionDestroy { id: "s1".into() }));
    assert_eq!(s.prepared_query(ID1), None);
    assert!(s.prepared_query(ID2).is_some());
    assert_eq!(s.table_indexes().prepared_queries, 5);
}

#[test]
fn resolution_prefers_id_then_static_name_then_longest_template() {
    let mut s = State::new();
    create(&mut s, 1, query(ID1, "geo-db-exact", "exact"));
    create(&mut s, 2, template(ID2, "geo-", "", "short-${name.suffix}"));
    create(
        &mut s,
        3,
        template(ID3, "geo-db-", "", "long-${name.suffix}"),
    );
    let catch_all = "44444444-4444-4444-4444-444444444444";
    create(&mut s, 4, template(catch_all, "", "", "${name.full}"));
    let svc = |n: &str| s.resolve_query(n).map(|q| q.service.service);
    assert_eq!(svc(ID1).as_deref(), Some("exact"));
    assert_eq!(svc("geo-db-exact").as_deref(), Some("exact"));
    assert_eq!(svc("geo-db-redis").as_deref(), Some("long-redis"));
    assert_eq!(svc("geo-web").as_deref(), Some("short-web"));
    assert_eq!(svc("anything").as_deref(), Some("anything"));
    assert_eq!(svc(""), None);
    // A rendered template keeps its own ID and name.
    let q = s.resolve_query("geo-db-redis").expect("resolved");
    assert_eq!((q.id.as_str(), q.name.as_str()), (ID3, "geo-db-"));
}

#[test]
fn templates_interpolate_captures_into_every_service_string() {
    let mut s = State::new();
    let mut t = template(
        ID1,
        "geo-db-",
        r"^geo-db-(.*?)-([^\-]+?)$",
        "mysql-${match(1)}",
    );
    t.service.tags = vec![
        "${match(2)}".into(),
        "!${match(3)}".into(),
        "${match(4)}".into(),
    ];
    t.service.near = "${name.prefix}node".into();
    t.service.service_meta = BTreeMap::from([("role".into(), "${match(2)}".into())]);
    t.service.failover.datacenters = vec!["dc-${match(2)}".into()];
    t.template.remove_empty_tags = true;
    create(&mut s, 1, t);
    let q = s.resolve_query("geo-db-redis-primary").expect("resolved");
    assert_eq!(q.service.service, "mysql-redis");
    assert_eq!(q.service.tags, vec!["primary", "!"]);
    assert_eq!(q.service.near, "geo-db-node");
    assert_eq!(q.service.service_meta["role"], "primary");
    assert_eq!(q.service.failover.datacenters, vec!["dc-primary"]);
    // No regexp match: captures are empty strings.
    let q = s.resolve_query("geo-db-nomatch").expect("resolved");
    assert_eq!(q.service.service, "mysql-");
}

#[test]
fn execute_filters_health_tags_and_meta() {
    let mut s = State::new();
    register(&mut s, 1, "a", &["Primary", "v1"], HealthStatus::Passing);
    register(
        &mut s,
        2,
        "b",
        &["primary", "experimental"],
        HealthStatus::Passing,
    );
    register(&mut s, 3, "c", &["primary"], HealthStatus::Warning);
    register(&mut s, 4, "d", &["primary"], HealthStatus::Critical);
    let mut q = query(ID1, "q", "redis");
    assert_eq!(exec_nodes(&s, &q), vec!["a", "b", "c"]);
    q.service.only_passing = true;
    assert_eq!(exec_nodes(&s, &q), vec!["a", "b"]);
    q.service.only_passing = false;
    q.service.ignore_check_ids = vec!["service:redis-d".into()];
    assert_eq!(exec_nodes(&s, &q), vec!["a", "b", "c", "d"]);
    q.service.tags = vec!["PRIMARY".into(), "!Experimental".into()];
    assert_eq!(exec_nodes(&s, &q), vec!["a", "c", "d"]);
    q.service.node_meta = BTreeMap::from([("rack".into(), "c".into())]);
    assert_eq!(exec_nodes(&s, &q), vec!["c"]);
    q.service.node_meta.clear();
    q.service.service_meta = BTreeMap::from([("env".into(), "env-a".into())]);
    assert_eq!(exec_nodes(&s, &q), vec!["a"]);
    q.service.service_meta.clear();
    q.service.connect = true;
    assert!(exec_nodes(&s, &q).is_empty());
}

#[test]
fn execute_shuffles_by_seed_sorts_near_and_limits() {
    let mut s = State::new();
    for (i, n) in ["n0", "n1", "n2", "n3", "n4", "n5"].iter().enumerate() {
        register(&mut s, i as u64 + 1, n, &[], HealthStatus::Passing);
    }
    let cfg = meridian_gossip::coordinate::VivaldiConfig::default();
    let updates = (0..6)
        .map(|i| {
            let mut c = meridian_gossip::coordinate::Coordinate::new(&cfg);
            c.vec[0] = f64::from(i) * 0.01;
            crate::CoordinateUpdate {
                node: format!("n{i}"),
                segment: String::new(),
                coord: c,
            }
        })
        .collect();
    s.apply(10, &req(Command::CoordinateUpdate(updates)));
    let q = query(ID1, "q", "redis");
    let order = |req: ExecuteRequest<'_>| -> Vec<String> {
        execute_query(&s, &q, &req)
            .nodes
            .into_iter()
            .map(|e| e.node.node)
            .collect()
    };
    let seeded = |seed| ExecuteRequest {
        shuffle_seed: seed,
        ..ExecuteRequest::default()
    };
    assert_eq!(order(seeded(1)), order(seeded(1)));
    assert_ne!(order(seeded(1)), order(seeded(2)));
    let near = ExecuteRequest {
        near: Some("_agent"),
        agent_node: "n3",
        limit: 3,
        datacenter: "dc1",
        shuffle_seed: 9,
    };
    let got = order(near);
    assert_eq!(got[0], "n3");
    assert_eq!(got.len(), 3);
    assert!(got[1..].iter().all(|n| n == "n2" || n == "n4"), "{got:?}");
    let r = execute_query(&s, &q, &near);
    assert_eq!((r.datacenter.as_str(), r.failovers), ("dc1", 0));
}

#[test]
fn failover_order_is_nearest_n_then_the_list_each_once_never_local() {
    let by_rtt: Vec<String> = ["dc1", "dc3", "dc2", "dc4"].map(String::from).to_vec();
    let f = QueryFailover {
        nearest_n: 2,
        datacenters: vec!["dc4".into(), "dc3".into(), "dc1".into()],
        targets: vec![],
        skip_local: false,
    };
    assert!(f.is_set());
    assert!(!f.skips_local());
    let skip_alone = QueryFailover {
        skip_local: true,
        ..QueryFailover::default()
    };
    assert!(
        !skip_alone.skips_local(),
        "SkipLocal needs failover datacenters"
    );
    assert_eq!(f.datacenters_to_try("dc1", &by_rtt), ["dc3", "dc2", "dc4"]);
    let only_list = QueryFailover {
        datacenters: vec!["dc9".into()],
        ..QueryFailover::default()
    };
    assert_eq!(only_list.datacenters_to_try("dc1", &by_rtt), ["dc9"]);
    let targets = QueryFailover {
        targets: vec![
            QueryFailoverTarget {
                peer_name: "p".into(),
                datacenter: String::new(),
            },
            QueryFailoverTarget {
                peer_name: String::new(),
                datacenter: "dc2".into(),
            },
        ],
        ..QueryFailover::default()
    };
    assert_eq!(targets.datacenters_to_try("dc1", &by_rtt), ["dc2"]);
    assert!(!QueryFailover::default().is_set());
}

#[test]
fn a_template_regexp_is_compiled_once_when_stored() {
    let mut s = State::new();
    assert_eq!(
        create(
            &mut s,
            1,
            template(ID1, "geo-", "^geo-(.*)$", "${match(1)}")
        ),
        Response::Ok
    );
    create(&mut s, 2, query(ID2, "plain", "redis"));
    assert!(s.query_regex(ID2).is_none(), "a static query has no regexp");
    let compiled = s.query_regex(ID1).expect("compiled at create").clone();
    // Executions reuse that compiled regexp: the same one, and it still captures.
    for name in ["geo-a", "geo-b", "geo-c"] {
        let q = s.resolve_query(name).expect("resolved");
        assert_eq!(q.service.service, &name[4..]);
        assert!(std::sync::Arc::ptr_eq(
            &compiled,
            s.query_regex(ID1).unwrap()
        ));
    }
    // An update compiles the new regexp; a restore compiles from the rows; a delete drops it.
    let mut t = template(ID1, "geo-", "^geo-x(.*)$", "${match(1)}");
    t.create_index = 1;
    let r = s.apply(3, &req(Command::PreparedQueryUpdate(Box::new(t))));
    assert_eq!(r, Response::Ok);
    assert_eq!(s.query_regex(ID1).unwrap().as_str(), "^geo-x(.*)$");
    assert_eq!(s.resolve_query("geo-xyz").unwrap().service.service, "yz");
    let restored = State::restore(s.rows()).expect("rows decode");
    assert_eq!(restored.query_regex(ID1).unwrap().as_str(), "^geo-x(.*)$");
    assert_eq!(
        restored.resolve_query("geo-xq").unwrap().service.service,
        "q"
    );
    s.apply(4, &req(Command::PreparedQueryDelete { id: ID1.into() }));
    assert!(s.query_regex(ID1).is_none());
}
