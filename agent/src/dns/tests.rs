//! Unit tests of answer shaping: health filtering, address and SRV records, limits.

use std::collections::BTreeMap;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{Name, RData, RecordType};

use super::answer::{self, Question, Reply, Shape};
use super::source::Instance;
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

fn shape() -> Shape {
    Shape {
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

#[test]
fn udp_without_edns_gets_the_answer_limit_and_tc() {
    let mut r = many(10, RecordType::A);
    answer::trim(&mut r, &shape(), true);
    assert_eq!(r.answers.len(), 3);
    assert!(r.truncated);

    let mut r = many(10, RecordType::A);
    answer::trim(&mut r, &shape(), false);
    assert_eq!(r.answers.len(), 10, "EDNS and TCP are limited by size only");
    assert!(!r.truncated);

    let mut r = many(2, RecordType::A);
    answer::trim(&mut r, &shape(), true);
    assert!(!r.truncated);
}

#[test]
fn srv_trim_keeps_only_glue_of_kept_targets_and_a_record_limit_applies_everywhere() {
    let mut r = many(10, RecordType::SRV);
    answer::trim(&mut r, &shape(), true);
    assert_eq!(r.answers.len(), 3);
    let kept: Vec<Name> = r
        .answers
        .iter()
        .filter_map(|a| match &a.data {
            RData::SRV(s) => Some(s.target.clone()),
            _ => None,
        })
        .collect();
    assert!(r.additionals.iter().all(|x| kept.contains(&x.name)));

    let mut r = many(10, RecordType::A);
    let limited = Shape {
        a_record_limit: 4,
        ..shape()
    };
    answer::trim(&mut r, &limited, false);
    assert_eq!(r.answers.len(), 4);
    assert!(r.truncated);
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
