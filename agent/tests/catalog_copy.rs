//! Remote catalogs that survive (#16 item 3), with two real datacenters on loopback joined
//! by `meridian-gateway`s: dc1's gateway streams a copy of dc2's catalog, and once dc2 is
//! cut off (its server killed, then its gateway too) dc1 still answers
//! `?dc=dc2&stale` reads and `web.service.dc2.consul` from that copy within the deadline,
//! marked stale (also through a client agent); reads without `?stale` fail as before.

mod common;

use std::time::{Duration, Instant};

use common::Agent;
use common::federation::{dc1_client, dig_short, two_datacenters, wait_federated};
use serde_json::{Value, json};

/// A catalog registration in `a`'s datacenter: node `node` at `address` with one `web`
/// instance `id`; returns the service's index afterwards.
fn register(a: &Agent, node: &str, address: &str, id: &str) -> u64 {
    let body = json!({
        "Node": node,
        "Address": address,
        "Service": { "ID": id, "Service": "web", "Port": 80, "Tags": [id] },
    });
    let (code, text) = a.put("/v1/catalog/register", body.to_string());
    assert_eq!(code, 200, "{text}");
    let (code, headers, body) = a.get("/v1/health/service/web");
    assert_eq!(code, 200, "{body}");
    header(&headers, "x-consul-index")
        .parse()
        .expect("X-Consul-Index")
}

fn header(h: &reqwest::header::HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// dc2's copy as dc1's server reports it (`/v1/operator/federation`).
fn copy_of_dc2(s1: &Agent) -> Value {
    let view = s1.get_json("/v1/operator/federation");
    view["Datacenters"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["Name"] == "dc2"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn addresses(rows: &Value) -> Vec<String> {
    let mut out: Vec<String> = rows
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r["Node"]["Address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// GET `path` from `a`, timed.
fn timed_get(a: &Agent, path: &str) -> (u16, reqwest::header::HeaderMap, Value, Duration) {
    let t = Instant::now();
    let (code, headers, body) = a.get(path);
    let took = t.elapsed();
    (
        code,
        headers,
        serde_json::from_str(&body).unwrap_or(Value::Null),
        took,
    )
}

/// The deadline of a cross-datacenter read (`CROSS_DC_TIMEOUT`, 7 s) plus slack for a
/// debug build on a busy machine.
const READ_DEADLINE: Duration = Duration::from_secs(9);

/// Scenario: web is registered in dc2 (one instance, then a second), dc1's gateway copies
/// dc2's catalog; dc2's server is killed, later its gateway too. Stale reads from dc1 (a
/// filtered one and a blocking one included), `/v1/catalog/services` and DNS answer both
/// instances from the copy, with KnownLeader false, a growing LastContact and the copy's
/// index; a read without `?stale` fails; an unknown datacenter is still unknown.
#[test]
fn a_cut_off_datacenter_is_still_read_stale_from_the_gateways_copy() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let (s1, s2, _g1, g2) = two_datacenters(dirs.path());
    let c1 = dc1_client(dirs.path(), &s1);
    wait_federated(&s1);
    let first = register(&s2, "n1", "10.0.2.1", "web-1");
    common::wait_until(Duration::from_secs(30), "a copy of dc2 with web-1", || {
        copy_of_dc2(&s1)["Copy"]["Index"].as_u64() >= Some(first)
    });
    // A change after the copy was first taken must reach it: the stream follows the index.
    let second = register(&s2, "n2", "10.0.2.2", "web-2");
    common::wait_until(Duration::from_secs(30), "the copy to follow dc2", || {
        copy_of_dc2(&s1)["Copy"]["Index"].as_u64() >= Some(second)
    });
    let copy = copy_of_dc2(&s1)["Copy"].clone();
    assert!(copy["Bytes"].as_u64() > Some(0), "{copy}");
    let copy_index = copy["Index"].as_u64().expect("copy index");
    let status = s1.cli(&["operator", "federation", "status"]);
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(text.contains(&format!("index {copy_index}, ")), "{text}");

    // While dc2 answers, it answers itself: no copy involved.
    let (code, h, rows, _) = timed_get(&s1, "/v1/health/service/web?dc=dc2&stale");
    assert_eq!(code, 200, "{rows}");
    assert_eq!(header(&h, "x-meridian-copy"), "");
    assert_eq!(addresses(&rows), ["10.0.2.1", "10.0.2.2"]);

    s2.kill9();

    let path = "/v1/health/service/web?dc=dc2&stale";
    let (code, h, rows, took) = timed_get(&s1, path);
    assert_eq!(code, 200, "{rows}");
    assert!(took < READ_DEADLINE, "{path} took {took:?}");
    assert_eq!(addresses(&rows), ["10.0.2.1", "10.0.2.2"]);
    assert_eq!(header(&h, "x-meridian-copy"), "dc2");
    assert_eq!(header(&h, "x-consul-knownleader"), "false");
    assert_eq!(header(&h, "x-consul-effective-consistency"), "stale");
    let index: u64 = header(&h, "x-consul-index").parse().expect("index");
    assert!(index >= second && index <= copy_index, "{index}");
    let contact: u64 = header(&h, "x-consul-lastcontact")
        .parse()
        .expect("X-Consul-LastContact");
    common::wait_until(Duration::from_secs(20), "LastContact to grow", || {
        let (code, h, _, _) = timed_get(&s1, path);
        code == 200
            && header(&h, "x-consul-lastcontact")
                .parse::<u64>()
                .is_ok_and(|c| c > contact)
    });

    // Filters and tags work as on a live read: they run in the same handlers.
    let (code, _, rows, _) = timed_get(
        &s1,
        "/v1/health/service/web?dc=dc2&stale&filter=Service.ID%20%3D%3D%20%22web-2%22",
    );
    assert_eq!((code, addresses(&rows)), (200, vec!["10.0.2.2".into()]));
    let (code, _, rows, _) = timed_get(&s1, "/v1/catalog/service/web?dc=dc2&stale&tag=web-1");
    assert_eq!(code, 200, "{rows}");
    let ids: Vec<&str> = rows
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["ServiceID"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["web-1"]);
    let (code, _, services, _) = timed_get(&s1, "/v1/catalog/services?dc=dc2&stale");
    assert_eq!(code, 200, "{services}");
    assert!(services.get("web").is_some(), "{services}");

    // A blocking read the copy cannot satisfy waits out its wait, then answers the copy.
    let blocking = format!("/v1/health/service/web?dc=dc2&stale&index={index}&wait=2s");
    let (code, h, rows, took) = timed_get(&s1, &blocking);
    assert_eq!(
        (code, header(&h, "x-meridian-copy").as_str()),
        (200, "dc2"),
        "{rows}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(2) + READ_DEADLINE,
        "blocking read on a copy took {took:?}"
    );

    // Without ?stale, or for an unknown datacenter, nothing comes from a copy.
    let (code, h, body, took) = timed_get(&s1, "/v1/health/service/web?dc=dc2");
    assert_ne!(code, 200, "{body}");
    assert_eq!(header(&h, "x-meridian-copy"), "");
    assert!(took < READ_DEADLINE, "non-stale read took {took:?}");
    let (code, _, body, _) = timed_get(&s1, "/v1/health/service/web?dc=dc9&stale");
    assert_ne!(code, 200, "{body}");

    // DNS on dc1's server answers dc2's names from the copy; a client agent, which asks
    // its server with ?stale, gets the same, as it does for HTTP.
    for dns in [s1.dns, c1.dns] {
        let mut a = dig_short(dns, "web.service.dc2.consul", "A");
        a.sort();
        assert_eq!(a, ["10.0.2.1", "10.0.2.2"], "DNS port {dns}");
    }
    assert_eq!(dig_short(s1.dns, "n2.node.dc2.consul", "A"), ["10.0.2.2"]);
    let (code, h, rows, took) = timed_get(&c1, path);
    assert_eq!(
        (code, addresses(&rows)),
        (200, vec!["10.0.2.1".into(), "10.0.2.2".into()])
    );
    assert_eq!(header(&h, "x-meridian-copy"), "dc2");
    assert!(took < READ_DEADLINE, "through a client agent: {took:?}");

    // dc2's gateway goes too: the WAN link to dc2 is gone, the copy still answers.
    drop(g2);
    let (code, h, rows, took) = timed_get(&s1, path);
    assert_eq!(code, 200, "{rows}");
    assert!(took < READ_DEADLINE, "{path} took {took:?}");
    assert_eq!(header(&h, "x-meridian-copy"), "dc2");
    assert_eq!(addresses(&rows), ["10.0.2.1", "10.0.2.2"]);
    assert_eq!(dig_short(s1.dns, "web.service.dc2.consul", "A").len(), 2);

    let answers = copy_of_dc2(&s1)["CopyAnswers"].as_u64().unwrap_or(0);
    assert!(answers >= 6, "copy answers counted: {answers}");
}

/// Scenario: dc2's only gateway hangs (SIGSTOP: connections open but nothing answers, as on
/// a WAN link that drops packets). The first stale read of dc2 from dc1 spends the relay's
/// budget less the copy's margin, then answers from the copy, within the deadline; the
/// breaker then opens and later reads answer from the copy at once.
#[test]
fn a_hung_datacenter_is_read_from_the_copy_within_the_deadline() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let (s1, s2, _g1, g2) = two_datacenters(dirs.path());
    wait_federated(&s1);
    let index = register(&s2, "n1", "10.0.2.1", "web-1");
    common::wait_until(Duration::from_secs(30), "a copy of dc2 with web-1", || {
        copy_of_dc2(&s1)["Copy"]["Index"].as_u64() >= Some(index)
    });
    let pid = g2.child.id().to_string();
    let stop = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill -STOP");
    assert!(stop.success());

    let path = "/v1/health/service/web?dc=dc2&stale";
    for round in 0..4 {
        let (code, h, rows, took) = timed_get(&s1, path);
        assert_eq!(code, 200, "round {round}: {rows}");
        assert_eq!(header(&h, "x-meridian-copy"), "dc2", "round {round}");
        assert_eq!(addresses(&rows), ["10.0.2.1"], "round {round}");
        assert!(took < READ_DEADLINE, "round {round} took {took:?}");
    }
    let dc2 = copy_of_dc2(&s1);
    assert_eq!(dc2["Breaker"], "open", "{dc2}");
    let (_, _, _, took) = timed_get(&s1, path);
    assert!(
        took < Duration::from_secs(2),
        "with the breaker open the copy answers at once: {took:?}"
    );
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status();
}
