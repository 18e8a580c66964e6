//! The fuzz targets' entry points (`meridian_agent::fuzzing` and the public gossip and DNS
//! decoders `fuzz/` calls) decode what the agent itself encodes: real gossip packets from two
//! foca members, sealed and plain; DNS queries built with hickory; forwarded-RPC payloads
//! from the agent's own types. Runs in the normal suite so the targets cannot silently rot
//! (the fuzz crate is built only with nightly).
//!
//! With `MERIDIAN_FUZZ_SEEDS=<dir>` set, it also writes these messages, plus request bodies
//! and config files in Consul's shapes, as the seed corpora `<dir>/<target>/`:
//! `MERIDIAN_FUZZ_SEEDS=$PWD/fuzz/corpus cargo test -p meridian-agent --test fuzz_seeds`.

use std::fs;
use std::path::Path;

use foca::{AccumulatingRuntime, Foca, PostcardCodec};
use hickory_server::proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_server::proto::rr::{Name, RecordType};
use meridian_agent::catalog::{
    Command, KvOp, KvVerb, Node, RegisterOp, Request, RequestId, Service, State,
};
use meridian_agent::fuzzing;
use meridian_agent::gossip::broadcast::{
    Clocks, GossipMessage, Handler, Inbox, LeaveIntent, UserEvent,
};
use meridian_agent::gossip::config::GossipConfig;
use meridian_agent::gossip::coordinate::{Coordinate, VivaldiConfig};
use meridian_agent::gossip::direct::{Direct, WireCoordinate, frame_direct, frame_foca, parse};
use meridian_agent::gossip::keyring::{GossipKey, Keyring};
use meridian_agent::gossip::pushpull::PushPull;
use meridian_agent::gossip::query::{KeyOp, KeyQuery, KeyReply};
use meridian_agent::gossip::transport::unwrap;
use meridian_agent::gossip::{NodeId, Role, Tags, TagsUpdate};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

type F = Foca<NodeId, PostcardCodec, StdRng, Handler>;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let Some(root) = std::env::var_os("MERIDIAN_FUZZ_SEEDS") else {
        return;
    };
    let dir = Path::new(&root).join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

/// A protobuf length-delimited field.
fn pb_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(field << 3 | 2);
    let mut len = bytes.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(bytes);
}

fn member(name: &str, port: u16) -> F {
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let id = NodeId {
        name: name.into(),
        addr,
        bump: 1,
    };
    let handler = Handler::new(Inbox::default(), &Clocks::default(), 64);
    let cfg = GossipConfig::lan(name, addr).foca_config(3);
    Foca::with_custom_broadcast(
        id,
        cfg,
        StdRng::seed_from_u64(port.into()),
        PostcardCodec,
        handler,
    )
}

fn drain(rt: &mut AccumulatingRuntime<NodeId>) -> Vec<(NodeId, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some((to, data)) = rt.to_send() {
        out.push((to, data.to_vec()));
    }
    while rt.to_schedule().is_some() {}
    while rt.to_notify().is_some() {}
    out
}

/// Opened payloads (kind byte + body): a join exchange, broadcasts, direct messages.
fn gossip_payloads() -> Vec<Vec<u8>> {
    let (mut a, mut b) = (member("a", 8301), member("b", 8302));
    let mut rt = AccumulatingRuntime::new();
    let mut foca_packets = Vec::new();
    a.announce(b.identity().clone(), &mut rt).expect("announce");
    let mut inflight = drain(&mut rt);
    for _ in 0..4 {
        let mut next = Vec::new();
        for (to, data) in inflight {
            foca_packets.push(data.clone());
            let target = if to.name == "a" { &mut a } else { &mut b };
            let _ = target.handle_data(&data, &mut rt);
            next.extend(drain(&mut rt));
        }
        inflight = next;
    }
    let user = GossipMessage::User(UserEvent {
        ltime: 3,
        name: "deploy".into(),
        payload: b"v2".to_vec(),
        origin: "a".into(),
    });
    let leave = GossipMessage::Leave(LeaveIntent {
        name: "b".into(),
        bump: 1,
        ltime: 2,
        prune: true,
    });
    let query = GossipMessage::Query(KeyQuery {
        ltime: 1,
        id: 9,
        origin: "a".into(),
        reply_to: "127.0.0.1:8301".parse().expect("addr"),
        op: KeyOp::Install(vec![1; 32]),
    });
    for msg in [user, leave, query] {
        a.add_broadcast(&msg.encode().expect("encode"))
            .expect("add broadcast");
    }
    a.gossip(&mut rt).expect("gossip");
    foca_packets.extend(drain(&mut rt).into_iter().map(|(_, d)| d));
    let mut out: Vec<Vec<u8>> = foca_packets
        .iter()
        .map(|p| frame_foca(p).to_vec())
        .collect();
    let coord = Coordinate::new(&VivaldiConfig::default());
    for d in [
        Direct::Ping { seq: 1 },
        Direct::Pong {
            seq: 1,
            coord: WireCoordinate::from(&coord),
        },
        Direct::TagsRequest {
            names: vec!["a".into()],
        },
        Direct::Tags(vec![TagsUpdate {
            name: "a".into(),
            bump: 1,
            tags: Tags::new(Role::Server, "dc1").with_raft_id(1),
        }]),
        Direct::PushPull(PushPull {
            reply: true,
            want_tags: false,
            entries: Vec::new(),
        }),
        Direct::KeyReply(KeyReply {
            id: 9,
            node: "b".into(),
            keys: vec!["AAAA".into()],
            error: None,
        }),
    ] {
        out.push(frame_direct(&d).expect("frame").to_vec());
    }
    out
}

fn gossip_seeds() {
    let ring = Keyring::new(GossipKey::from_bytes(&[7; 32]).expect("key")).expect("ring");
    let payloads = gossip_payloads();
    assert!(
        payloads.len() >= 6,
        "a join exchange, a gossip round and direct messages"
    );
    for (i, p) in payloads.into_iter().enumerate() {
        assert!(parse(&p).is_ok(), "payload {i} parses");
        let sealed = ring.seal(&p).expect("seal");
        assert_eq!(unwrap(&ring, true, &sealed), Ok(p.clone()));
        let mut plain = vec![0u8];
        plain.extend_from_slice(&p);
        write("gossip_packet", &format!("plain-{i:02}"), &plain);
        if i % 3 == 0 {
            write("gossip_packet", &format!("sealed-{i:02}"), &sealed);
        }
        let mut sealed_in = vec![(i % 2) as u8, 0, 0];
        sealed_in.extend_from_slice(&[i as u8; 32][..if i % 2 == 0 { 16 } else { 32 }]);
        sealed_in.extend_from_slice(&p);
        write("gossip_sealed", &format!("seed-{i:02}"), &sealed_in);
    }
}

fn dns_seeds() {
    let names: &[(&str, RecordType)] = &[
        ("web.service.consul.", RecordType::A),
        ("web.service.dc1.consul.", RecordType::AAAA),
        ("_web._tcp.service.consul.", RecordType::SRV),
        ("v1.web.service.consul.", RecordType::SRV),
        ("primary.web.service.alt.example.", RecordType::ANY),
        ("big.service.consul.", RecordType::A),
        ("big.service.consul.", RecordType::TXT),
        ("db.service.consul.", RecordType::AAAA),
        ("web-1.node.consul.", RecordType::A),
        ("db-1.node.dc1.consul.", RecordType::ANY),
        ("named.service.consul.", RecordType::A),
        ("consul.", RecordType::SOA),
        ("consul.", RecordType::NS),
        ("consul.service.consul.", RecordType::A),
        ("1.0.0.10.in-addr.arpa.", RecordType::PTR),
        ("7f000001.addr.dc1.consul.", RecordType::A),
        ("pq.query.consul.", RecordType::SRV),
        ("web.service.dc2.consul.", RecordType::A),
        ("example.com.", RecordType::A),
    ];
    for (i, (name, qtype)) in names.iter().enumerate() {
        let mut msg = Message::new(0x1200 + i as u16, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(Name::from_ascii(name).expect("name"), *qtype));
        if i % 3 == 0 {
            let mut edns = Edns::new();
            edns.set_max_payload(if i % 2 == 0 { 4096 } else { 1232 });
            msg.edns = Some(edns);
        }
        let bytes = msg.to_vec().expect("encode");
        let back = Message::from_vec(&bytes).expect("decode");
        assert_eq!(back.queries.len(), 1);
        write("dns_request", &format!("q-{i:02}"), &bytes);
    }
}

fn pack(header: &serde_json::Value, body: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).expect("json");
    let mut out = (h.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    out
}

fn forward_seeds() {
    let register = Command::Register(Box::new(RegisterOp {
        node: Node {
            node: "n1".into(),
            address: "10.0.0.1".into(),
            ..Node::default()
        },
        service: Some(Service {
            id: "web".into(),
            service: "web".into(),
            port: 80,
            ..Service::default()
        }),
        ..RegisterOp::default()
    }));
    let kv = Command::Kv(KvOp {
        value: Some(b"v".to_vec()),
        ..KvOp::new(KvVerb::Set, "k")
    });
    let cmds = [
        register.clone(),
        kv.clone(),
        Command::Noop,
        Command::SessionDestroy { id: "x".into() },
    ];
    let id = RequestId::from_u128(42);
    let mut n = 0;
    let mut seed = |pick: u8, payload: Vec<u8>, wrap: &dyn Fn(Vec<u8>) -> Vec<u8>| {
        let mut raw = vec![pick];
        raw.extend_from_slice(&payload);
        write("forward_rpc", &format!("s-{n:02}"), &raw);
        let mut wrapped = vec![pick];
        wrapped.extend(wrap(payload));
        write("forward_rpc", &format!("s-{n:02}-pb"), &wrapped);
        n += 1;
    };
    let fwd = |payload: Vec<u8>| {
        let mut out = Vec::new();
        pb_field(&mut out, 1, b"dc1");
        pb_field(&mut out, 5, &payload);
        out
    };
    for cmd in &cmds {
        let p = pack(&json!({ "ApplyOnce": { "cmd": cmd, "id": id } }), b"");
        assert!(
            matches!(fuzzing::forward_request(&p), Ok(Some(_))),
            "forward seed decodes"
        );
        seed(0, p, &fwd);
    }
    let http = pack(
        &json!({ "Http": { "method": "PUT", "uri": "/v1/kv/a", "headers": [["Content-Type", "application/json"]] } }),
        b"{}",
    );
    seed(0, http, &fwd);
    seed(
        0,
        pack(&json!({ "ReadIndex": { "consistent": true } }), b""),
        &fwd,
    );
    let reply = |payload: Vec<u8>| {
        let mut out = Vec::new();
        pb_field(&mut out, 4, &payload);
        out
    };
    for h in [
        json!({ "Applied": { "index": 5, "response": { "Bool": true } } }),
        json!({ "ReadIndex": { "index": 7 } }),
        json!({ "Failed": { "kind": "NoLeader", "message": "No cluster leader" } }),
        json!({ "Http": { "status": 200, "headers": [] } }),
    ] {
        let p = pack(&h, b"[]");
        assert!(fuzzing::forward_reply(&p).is_ok(), "reply decodes: {h}");
        seed(1, p, &reply);
    }
    let raft = |payload: Vec<u8>| {
        let mut out = Vec::new();
        pb_field(&mut out, 1, b"dc1");
        pb_field(&mut out, 2, &payload);
        out
    };
    let log_id = json!({ "leader_id": { "term": 1, "node_id": 1 }, "index": 3 });
    let entries: Vec<_> = cmds
        .iter()
        .enumerate()
        .map(|(i, cmd)| {
            json!({
                "log_id": { "leader_id": { "term": 1, "node_id": 1 }, "index": i + 4 },
                "payload": { "Normal": Request::new(1_700_000_000_000, cmd.clone()) },
            })
        })
        .collect();
    let ae = json!({
        "vote": { "leader_id": { "term": 1, "node_id": 1 }, "committed": true },
        "prev_log_id": log_id, "entries": entries, "leader_commit": log_id,
    });
    let ae = serde_json::to_vec(&ae).expect("json");
    let reqs = fuzzing::append_entries(&ae).expect("append entries decodes");
    assert_eq!(reqs.len(), cmds.len());
    seed(2, ae, &raft);
    let vote = json!({ "req": { "vote": { "leader_id": { "term": 2, "node_id": 1 }, "committed": false }, "last_log_id": log_id }, "pre_vote": false });
    let vote = serde_json::to_vec(&vote).expect("json");
    fuzzing::vote(&vote).expect("vote decodes");
    seed(3, vote, &raft);
    let mut state = State::new();
    for (i, cmd) in cmds.iter().enumerate() {
        state.apply(i as u64 + 1, &Request::new(1_700_000_000_000, cmd.clone()));
    }
    #[derive(serde::Serialize)]
    struct SnapshotBody {
        format: u8,
        meta_json: Vec<u8>,
        rows: Vec<meridian_agent::catalog::Row>,
    }
    let meta = json!({ "last_log_id": log_id, "last_membership": { "log_id": null, "membership": { "configs": [[1]], "nodes": { "1": { "rpc_addr": "127.0.0.1:8300", "name": "s1" } } } }, "snapshot_id": "1-3" });
    let body = postcard::to_allocvec(&SnapshotBody {
        format: 1,
        meta_json: serde_json::to_vec(&meta).expect("json"),
        rows: state.rows(),
    })
    .expect("postcard");
    let snap = pack(
        &json!({ "vote": { "leader_id": { "term": 1, "node_id": 1 }, "committed": true }, "meta": meta }),
        &body,
    );
    let restored = fuzzing::install_snapshot(&snap).expect("snapshot installs");
    assert_eq!(restored.rows(), state.rows());
    seed(4, snap, &raft);
}

fn text_seeds() {
    let bodies: &[(u8, serde_json::Value)] = &[
        (
            0,
            json!({"Datacenter":"dc1","ID":"40e4a748-2192-161a-0510-9bf59fe950b5","Node":"foo","Address":"192.168.10.10","TaggedAddresses":{"lan":"192.168.10.10","wan":"10.0.10.10"},"NodeMeta":{"somekey":"somevalue"},"Service":{"ID":"redis1","Service":"redis","Tags":["primary","v1"],"Address":"127.0.0.1","TaggedAddresses":{"lan":{"address":"127.0.0.1","port":8000}},"Meta":{"redis_version":"4.0"},"Port":8000,"Weights":{"Passing":10,"Warning":1}},"Check":{"Node":"foo","CheckID":"service:redis1","Name":"Redis health check","Notes":"Script based health check","Status":"passing","ServiceID":"redis1","Definition":{"TCP":"localhost:8888","Interval":"5s","Timeout":"1s","DeregisterCriticalServiceAfter":"30s"}},"SkipNodeUpdate":false}),
        ),
        (
            1,
            json!({"Datacenter":"dc1","Node":"foo","ServiceID":"redis1"}),
        ),
        (
            2,
            json!({"ID":"redis1","Name":"redis","Tags":["primary","v1"],"Address":"127.0.0.1","Port":8000,"Meta":{"redis_version":"4.0"},"EnableTagOverride":false,"Check":{"DeregisterCriticalServiceAfter":"90m","HTTP":"http://localhost:5000/health","Interval":"10s","Timeout":"5s"},"Weights":{"Passing":10,"Warning":1}}),
        ),
        (
            2,
            json!({"name":"web","port":80,"checks":[{"ttl":"30s"},{"tcp":"localhost:80","interval":"10s"}],"connect":{"sidecar_service":{}}}),
        ),
        (
            3,
            json!({"ID":"mem","Name":"Memory utilization","Notes":"Ensure we don't oversubscribe memory","DeregisterCriticalServiceAfter":"90m","HTTP":"https://example.com","Method":"POST","Header":{"Content-Type":["application/json"]},"Body":"{}","Interval":"10s","Timeout":"5s","TLSSkipVerify":true}),
        ),
        (
            3,
            json!({"Name":"ttl","TTL":"15s","ServiceID":"","SuccessBeforePassing":2}),
        ),
        (
            4,
            json!([{"KV":{"Verb":"set","Key":"a","Value":"aGVsbG8=","Flags":3}},{"KV":{"Verb":"cas","Key":"b","Value":"","Index":5}},{"KV":{"Verb":"get-tree","Key":"a/"}},{"KV":{"Verb":"lock","Key":"l","Session":"adf4238a-882b-9ddc-4a9d-5b6758e4159e"}}]),
        ),
        (
            5,
            json!({"LockDelay":"15s","Name":"my-service-lock","Node":"foobar","Checks":["a","b","c"],"Behavior":"release","TTL":"30s"}),
        ),
        (
            5,
            json!({"NodeChecks":["serfHealth"],"ServiceChecks":[{"ID":"foo","Namespace":"default"}],"LockDelay":10}),
        ),
        (
            6,
            json!({"Name":"my-query","Session":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","Token":"","Service":{"Service":"redis","Failover":{"NearestN":3,"Datacenters":["dc1","dc2"]},"Near":"node1","OnlyPassing":false,"Tags":["primary","!experimental"],"NodeMeta":{"instance_type":"m3.large"},"ServiceMeta":{"environment":"production"}},"DNS":{"TTL":"10s"}}),
        ),
        (
            6,
            json!({"Name":"geo-db","Template":{"Type":"name_prefix_match","Regexp":"^geo-db-(.*?)-([^\\-]+?)$","RemoveEmptyTags":true},"Service":{"Service":"mysql-${match(1)}","Tags":["${match(2)}"]}}),
        ),
        (
            7,
            json!({"Kind":"service-defaults","Name":"web","Protocol":"http","Meta":{"a":"b"}}),
        ),
        (
            7,
            json!({"Kind":"proxy-defaults","Name":"global","Config":{"local_connect_timeout_ms":1000,"Handshake_Timeout_MS":10000}}),
        ),
        (
            7,
            json!({"Kind":"service-resolver","Name":"web","DefaultSubset":"v1","Subsets":{"v1":{"Filter":"Service.Meta.version == v1"}},"ConnectTimeout":"15s"}),
        ),
        (
            8,
            json!({"Node":"agent-one","Segment":"","Coord":{"Adjustment":0,"Error":1.5,"Height":0,"Vec":[0,0,0,0,0,0,0,0]}}),
        ),
    ];
    for (i, (pick, body)) in bodies.iter().enumerate() {
        let mut raw = vec![*pick];
        raw.extend_from_slice(&serde_json::to_vec_pretty(body).expect("json"));
        write("http_bodies", &format!("b-{i:02}"), &raw);
    }
    let tests = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/src/tests_consul.rs"
    ))
    .expect("config tests");
    let between = |start: &str| -> String {
        let from = tests.find(start).expect("const in tests") + start.len();
        let to = from + tests[from..].find("\"#;").expect("end of const");
        tests[from..to].to_string()
    };
    let configs: &[(u8, String)] = &[
        (1, between("const DOCS_HCL: &str = r#\"")),
        (0, between("const DOCS_JSON: &str = r#\"")),
        (1, "node_name = \"n1\"\nserver = true\nbootstrap_expect = 3\nretry_join = [\"10.0.0.2\", \"10.0.0.3\"]\nencrypt = \"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=\"\nservice {\n  name = \"web\"\n  port = 80\n  check {\n    http = \"http://localhost/health\"\n    interval = \"10s\"\n  }\n}\n".into()),
        (0, json!({"services":[{"name":"redis","tags":["v1"],"port":6379,"checks":[{"args":["/bin/check"],"interval":"5s"}]}],"watches":[{"type":"key","key":"a","handler_type":"script","args":["x"]}],"dns_config":{"service_ttl":{"*":"5s","web":"30s"},"recursor_timeout":"2s"},"recursors":["8.8.8.8"],"domain":"corp","alt_domain":"example"}).to_string()),
        (0, r#"{"ports":{"https":-1,"dns":-1,"grpc_tls":-1},"performance":{"raft_multiplier":1},"enable_script_checks":true}"#.into()),
        (1, "bind_addr = \"{{ GetPrivateIP }}\"\nlimits { http_max_conns_per_client = 10 }\nacl { enabled = false }\nui_config { enabled = true }\n".into()),
    ];
    for (i, (pick, text)) in configs.iter().enumerate() {
        let mut raw = vec![*pick];
        raw.extend_from_slice(text.as_bytes());
        write("config_parse", &format!("c-{i:02}"), &raw);
    }
}

#[test]
fn the_fuzz_entry_points_decode_what_the_agent_encodes() {
    gossip_seeds();
    dns_seeds();
    forward_seeds();
    text_seeds();
}
