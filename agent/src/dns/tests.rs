//! Unit tests of answer shaping: health filtering, address and SRV records, and Consul's
//! size limits (`trim`).

use std::collections::BTreeMap;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{Name, RData, RecordType};

use super::answer::{self, Question, Reply};
use super::source::Instance;
use super::trim::{self, Frame, Limits, Transport};
use crate::catalog::HealthStatus;

fn inst(node: &str, addr: &str, svc_addr: &str, status: HealthStatus, tags: &[&str]) -> Instance {
    Instance {
        node: node.into(),
        node_address: addr.into(),
        node_meta: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
        service_address: svc_addr.into(),
        port: 6379,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        status,
    }
}

fn q(name: &str, qtype: RecordType) -> Question {
    Question {
        name: Name::from_ascii(name).expect("name"),
        qtype,
        domain: "consul.".into(),
        dc: "dc1".into(),
    }
}

fn limits() -> Limits {
    Limits {
        udp_answer_limit: 3,
        a_record_limit: 0,
    }
}

#[test]
fn critical_and_maintenance_never_answer_warning_only_without_only_passing() {
    let all = vec![
        inst("a", "10.0.0.1", "", HealthStatus::Passing, &["v1"]),
        inst("b", "10.0.0.2", "", HealthStatus::Warning, &["v1"]),
        inst("c", "10.0.0.3", "", HealthStatus::Critical, &["v1"]),
        inst("d", "10.0.0.4", "", HealthStatus::Maintenance, &["v1"]),
    ];
    let names = |v: Vec<Instance>| v.into_iter().map(|i| i.node).collect::<Vec<_>>();
    assert_eq!(names(answer::healthy(all.clone(), None, false)), ["a", "b"]);
    assert_eq!(names(answer::healthy(all.clone(), None, true)), ["a"]);
    assert_eq!(
        names(answer::healthy(all.clone(), Some("V1"), false)),
        ["a", "b"]
    );
    assert!(answer::healthy(all, Some("v2"), false).is_empty());
}

#[test]
fn a_records_one_per_distinct_address_service_address_wins() {
    let instances = vec![
        inst("a", "10.0.0.1", "", HealthStatus::Passing, &[]),
        inst("a", "10.0.0.1", "", HealthStatus::Passing, &[]),
        inst("b", "10.0.0.2", "192.0.2.9", HealthStatus::Passing, &[]),
    ];
    let r = answer::service(&q("redis.service.consul.", RecordType::A), instances, 0);
    let mut ips: Vec<String> = r
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => a.0.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    ips.sort();
    assert_eq!(ips, ["10.0.0.1", "192.0.2.9"]);
    assert_eq!(r.rcode, ResponseCode::NoError);
}

#[test]
fn no_instances_is_nxdomain_and_aaaa_of_ipv4_is_empty_noerror() {
    let r = answer::service(&q("x.service.consul.", RecordType::A), Vec::new(), 0);
    assert_eq!(r.rcode, ResponseCode::NXDomain);
    assert!(r.soa);
    let one = vec![inst("a", "10.0.0.1", "", HealthStatus::Passing, &[])];
    let r = answer::service(&q("x.service.consul.", RecordType::AAAA), one, 0);
    assert_eq!(r.rcode, ResponseCode::NoError);
    assert!(r.answers.is_empty() && r.soa);
}

#[test]
fn srv_targets_nodes_or_addr_names_with_glue() {
    let instances = vec![
        inst("web-1", "10.0.0.1", "", HealthStatus::Passing, &[]),
        inst(
            "web-2",
            "10.0.0.2",
            "192.0.2.10",
            HealthStatus::Passing,
            &[],
        ),
    ];
    let r = answer::service(
        &q("_redis._tcp.service.consul.", RecordType::SRV),
        instances,
        5,
    );
    let mut targets: Vec<String> = r
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::SRV(s) => {
                assert_eq!(s.port, 6379);
                s.target.to_ascii()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        ["c000020a.addr.dc1.consul.", "web-1.node.dc1.consul."]
    );
    let glue: Vec<(String, RecordType)> = r
        .additionals
        .iter()
        .map(|r| (r.name.to_ascii(), r.record_type()))
        .collect();
    assert!(glue.contains(&("web-1.node.dc1.consul.".into(), RecordType::A)));
    assert!(glue.contains(&("web-1.node.dc1.consul.".into(), RecordType::TXT)));
    assert!(glue.contains(&("c000020a.addr.dc1.consul.".into(), RecordType::A)));
    assert!(r.answers.iter().all(|a| a.ttl == 5));
}

#[test]
fn hostnames_become_cnames() {
    let one = vec![inst(
        "a",
        "10.0.0.1",
        "db.example.com",
        HealthStatus::Passing,
        &[],
    )];
    let r = answer::service(&q("db.service.consul.", RecordType::A), one, 0);
    match &r.answers[0].data {
        RData::CNAME(c) => assert_eq!(c.0.to_ascii(), "db.example.com."),
        other => panic!("{other:?}"),
    }
}

fn many(n: usize, qtype: RecordType) -> Reply {
    let instances = (0..n)
        .map(|i| {
            let addr = format!("10.0.{}.{}", i / 250, i % 250 + 1);
            inst(&format!("n{i}"), &addr, "", HealthStatus::Passing, &[])
        })
        .collect();
    answer::service(&q("web.service.consul.", qtype), instances, 0)
}

/// Trims `r` for `transport` as the handler does (question `web.service.consul.`, EDNS
/// echoed when the client sent it).
fn trim_for(r: &mut Reply, transport: Transport, edns: bool, l: Limits) -> bool {
    let qname = Name::from_ascii("web.service.consul.").expect("name");
    let frame = Frame {
        qname: &qname,
        opt_len: if edns { trim::OPT_LEN } else { 0 },
    };
    trim::trim(r, &frame, transport, &l)
}

/// The reply as hickory sends it over UDP to a `buffer`-byte client: (bytes, TC).
fn wire(r: &Reply, buffer: u16) -> (usize, bool) {
    use hickory_server::proto::op::{Edns, Message, MessageType, OpCode, Query};
    let mut m = Message::new(1, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("web.service.consul.").expect("name"),
        RecordType::A,
    ));
    m.add_answers(r.answers.iter().cloned());
    m.add_additionals(r.additionals.iter().cloned());
    let mut edns = Edns::new();
    edns.set_max_payload(buffer);
    m.set_edns(edns);
    let bytes = m.to_vec().expect("encodes");
    (bytes.len(), m.metadata.truncation)
}

#[test]
fn a_512_byte_buffer_gets_the_udp_answer_limit_with_or_without_edns() {
    for transport in [
        Transport::udp(None),
        Transport::udp(Some(512)),
        Transport::udp(Some(100)),
    ] {
        let mut r = many(10, RecordType::A);
        assert!(trim_for(&mut r, transport, true, limits()), "{transport:?}");
        assert_eq!(r.answers.len(), 3, "{transport:?}");
    }
    let mut r = many(2, RecordType::A);
    assert!(!trim_for(&mut r, Transport::udp(None), false, limits()));
    assert_eq!(r.answers.len(), 2);
    // Consul caps udp_answer_limit at 8.
    let mut r = many(20, RecordType::A);
    let big = Limits {
        udp_answer_limit: 50,
        ..limits()
    };
    assert!(trim_for(&mut r, Transport::udp(None), false, big));
    assert_eq!(r.answers.len(), 8);
}

#[test]
fn larger_edns_buffers_and_tcp_are_limited_by_size_only() {
    let mut r = many(10, RecordType::A);
    assert!(!trim_for(
        &mut r,
        Transport::udp(Some(4096)),
        true,
        limits()
    ));
    assert_eq!(r.answers.len(), 10);
    let mut r = many(10, RecordType::A);
    assert!(!trim_for(&mut r, Transport::Tcp, false, limits()));
    assert_eq!(r.answers.len(), 10);

    // 400 A records (16 bytes each compressed) do not fit 1232 bytes: as many as do, and
    // hickory then has nothing left to cut (it would set TC itself).
    let mut r = many(400, RecordType::A);
    assert!(trim_for(&mut r, Transport::udp(Some(1232)), true, limits()));
    let n = r.answers.len();
    assert!(n > 50 && n < 80, "{n}");
    let (len, tc) = wire(&r, 1232);
    assert!(len <= 1232 - 8 && len > 1232 - 8 - 16, "{len}");
    assert!(!tc);
    let mut r = many(400, RecordType::A);
    assert!(!trim_for(&mut r, Transport::Tcp, false, limits()));
    assert_eq!(r.answers.len(), 400);
}

#[test]
fn two_instances_on_one_node_are_two_srv_answers_with_an_address_each() {
    let mut a = inst("web-1", "10.0.0.1", "", HealthStatus::Passing, &[]);
    let mut b = a.clone();
    a.port = 8080;
    b.port = 8081;
    // The same instance twice (same node, address and port) is one answer, as in Consul.
    let instances = vec![a.clone(), b, a];
    let r = answer::service(
        &q("_web._tcp.service.consul.", RecordType::SRV),
        instances,
        0,
    );
    let mut ports: Vec<u16> = r
        .answers
        .iter()
        .filter_map(|x| match &x.data {
            RData::SRV(s) => Some(s.port),
            _ => None,
        })
        .collect();
    ports.sort();
    assert_eq!(ports, [8080, 8081]);
    let kinds = |r: &Reply, t: RecordType| {
        r.additionals
            .iter()
            .filter(|x| x.record_type() == t)
            .count()
    };
    assert_eq!(kinds(&r, RecordType::A), 2, "one address per SRV record");
    assert_eq!(kinds(&r, RecordType::TXT), 2, "node meta per SRV record");
    assert!(
        r.additionals
            .iter()
            .all(|x| x.name.to_ascii() == "web-1.node.dc1.consul.")
    );
}

#[test]
fn a_srv_trim_keeps_one_address_per_kept_target_as_consul_sync_extra() {
    let mut r = many(10, RecordType::SRV);
    assert!(trim_for(&mut r, Transport::udp(None), false, limits()));
    assert_eq!(r.answers.len(), 3);
    let kept: Vec<Name> = r
        .answers
        .iter()
        .filter_map(|a| match &a.data {
            RData::SRV(s) => Some(s.target.clone()),
            _ => None,
        })
        .collect();
    let names: Vec<Name> = r.additionals.iter().map(|x| x.name.clone()).collect();
    assert_eq!(
        names, kept,
        "the first record (the address) of each kept target"
    );
    assert!(
        r.additionals
            .iter()
            .all(|x| x.record_type() == RecordType::A)
    );

    // Two instances on one node, trimmed to one: one SRV, one address.
    let mut a = inst("web-1", "10.0.0.1", "", HealthStatus::Passing, &[]);
    let mut b = a.clone();
    a.port = 1;
    b.port = 2;
    let mut r = answer::service(&q("web.service.consul.", RecordType::SRV), vec![a, b], 0);
    let one = Limits {
        udp_answer_limit: 1,
        ..limits()
    };
    assert!(trim_for(&mut r, Transport::udp(None), false, one));
    assert_eq!((r.answers.len(), r.additionals.len()), (1, 1));
}

#[test]
fn a_record_limit_applies_on_every_transport_and_is_no_trim() {
    let mut r = many(10, RecordType::A);
    trim::limit_addresses(&mut r, 4);
    assert_eq!(r.answers.len(), 4);
    assert!(!trim_for(&mut r, Transport::Tcp, false, limits()));
    let mut r = many(10, RecordType::A);
    trim::limit_addresses(&mut r, 0);
    assert_eq!(r.answers.len(), 10, "0 is unlimited");
}

#[test]
fn node_answers_carry_meta_as_txt() {
    let node = super::source::NodeRecord {
        node: "web-1".into(),
        address: "10.0.0.1".into(),
        meta: BTreeMap::from([
            ("rack".to_string(), "r1".to_string()),
            ("rfc1035-raw".to_string(), "plain".to_string()),
        ]),
    };
    let r = answer::node(
        &q("web-1.node.consul.", RecordType::TXT),
        Some(node.clone()),
        0,
    );
    let texts: Vec<String> = r
        .answers
        .iter()
        .filter_map(|a| match &a.data {
            RData::TXT(t) => Some(t.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(texts.len(), 2);
    assert!(texts.iter().any(|t| t.contains("rack=r1")), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("plain") && !t.contains('=')),
        "{texts:?}"
    );
    let r = answer::node(&q("web-1.node.consul.", RecordType::A), Some(node), 0);
    assert_eq!(r.answers.len(), 1);
    assert_eq!(r.additionals.len(), 2);
    let r = answer::node(&q("nope.node.consul.", RecordType::A), None, 0);
    assert_eq!(r.rcode, ResponseCode::NXDomain);
}
