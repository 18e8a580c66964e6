//! The DNS answer cache seen from outside, asked with `dig`: an answer changes with the
//! very next question after the catalog changes (register, deregister, a check turning
//! critical), over UDP and TCP; cached answers keep being shuffled; answers trimmed to the
//! UDP answer limit keep varying which records they hold.

mod common;

use std::collections::BTreeSet;

use common::Agent;
use serde_json::json;

/// The A records of `name` in the order `dig` got them, asked with `extra` options.
fn addresses(port: u16, name: &str, extra: &[&str]) -> Vec<String> {
    common::dig_short_with(port, name, "A", extra)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn put(a: &Agent, path: &str, body: serde_json::Value) {
    let (code, text) = a.put(path, body.to_string());
    assert_eq!(code, 200, "{path}: {text}");
}

/// Node `n<i>` at 10.2.0.<i+1> with one instance of `web`.
fn register(a: &Agent, i: usize) {
    put(
        a,
        "/v1/catalog/register",
        json!({
            "Node": format!("n{i}"),
            "Address": format!("10.2.0.{}", i + 1),
            "Service": { "Service": "web", "ID": "web", "Port": 80 },
        }),
    );
}

fn addrs(range: std::ops::Range<usize>) -> Vec<String> {
    sorted(range.map(|i| format!("10.2.0.{}", i + 1)).collect())
}

#[test]
fn the_next_question_after_a_catalog_change_sees_it() {
    let a = Agent::dev();
    let p = a.dns;
    for i in 0..4 {
        register(&a, i);
    }
    for transport in ["+notcp", "+tcp"] {
        let ask = || {
            sorted(addresses(
                p,
                "web.service.consul",
                &[transport, "+bufsize=4096"],
            ))
        };
        // Asked again and again: answered from the cache from the second time on.
        for _ in 0..5 {
            assert_eq!(ask(), addrs(0..4), "{transport}");
        }
        register(&a, 4);
        assert_eq!(
            ask(),
            addrs(0..5),
            "{transport}: a registration shows at once"
        );
        put(
            &a,
            "/v1/catalog/deregister",
            json!({ "Node": "n4", "ServiceID": "web" }),
        );
        assert_eq!(
            ask(),
            addrs(0..4),
            "{transport}: a deregistration shows at once"
        );
        put(
            &a,
            "/v1/catalog/register",
            json!({
                "Node": "n0", "Address": "10.2.0.1",
                "Check": { "CheckID": "down", "Name": "down", "Status": "critical" },
            }),
        );
        assert_eq!(
            ask(),
            addrs(1..4),
            "{transport}: a critical node drops at once"
        );
        put(
            &a,
            "/v1/catalog/deregister",
            json!({ "Node": "n0", "CheckID": "down" }),
        );
        assert_eq!(ask(), addrs(0..4), "{transport}: and comes back at once");
    }
}

#[test]
fn cached_answers_are_shuffled_on_every_question() {
    let a = Agent::dev();
    let p = a.dns;
    for i in 0..10 {
        register(&a, i);
    }
    for transport in ["+notcp", "+tcp"] {
        let mut orders = BTreeSet::new();
        for _ in 0..30 {
            let got = addresses(p, "web.service.consul", &[transport, "+bufsize=4096"]);
            assert_eq!(
                sorted(got.clone()),
                addrs(0..10),
                "{transport}: every instance"
            );
            orders.insert(got);
        }
        // 30 uniform shuffles of 10 records repeat an order with probability ~1e-4.
        assert!(
            orders.len() >= 25,
            "{transport}: only {} distinct orders in 30 answers",
            orders.len()
        );
    }
}

#[test]
fn answers_trimmed_to_the_udp_limit_keep_varying_their_records() {
    let a = Agent::dev();
    let p = a.dns;
    for i in 0..10 {
        register(&a, i);
    }
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let got = addresses(p, "web.service.consul", &["+noedns", "+notcp", "+ignore"]);
        assert_eq!(got.len(), 3, "udp_answer_limit: {got:?}");
        seen.extend(got);
    }
    // Frozen, the same 3 would come back every time; random, 20 draws of 3 of 10 miss one
    // given address with probability 0.7^20 ~ 8e-4.
    assert!(seen.len() >= 8, "addresses seen: {seen:?}");
}

/// The cache is used: `dig` asking the same question one after another (the next question
/// leaves as soon as the reply arrives) is answered from the cache from the second time
/// on, as `meridian.dns.cache_hits` counts; the answers stay right.
#[test]
fn a_question_asked_again_is_answered_from_the_cache() {
    let a = Agent::dev_named(
        "cache-node",
        &[
            "-hcl",
            "telemetry {\n  prometheus_retention_time = \"60s\"\n}",
        ],
    );
    for i in 0..3 {
        register(&a, i);
    }
    // No cookie: dig's client cookie is random per run, and it is part of the question.
    for _ in 0..5 {
        assert_eq!(
            sorted(addresses(a.dns, "web.service.consul", &["+nocookie"])),
            addrs(0..3)
        );
    }
    let (code, _, text) = a.get("/v1/agent/metrics?format=prometheus");
    assert_eq!(code, 200, "{text}");
    let hits: f64 = text
        .lines()
        .find(|l| l.starts_with("meridian_dns_cache_hits{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no meridian_dns_cache_hits series in:\n{text}"));
    assert!(hits >= 4.0, "{hits} of 5 questions answered from the cache");
}
