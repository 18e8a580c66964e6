//! The DNS interface against real agents, asked with `dig` (BIND's client, which nobody here
//! wrote) and with raw datagrams: Consul's names, health filtering, SRV with glue (one address
//! per SRV record), the UDP answer limit at 512 bytes with or without EDNS, TC only with
//! `enable_truncate`, TCP for everything, recursors, PTR, other domains, a client agent
//! answering through its servers, and garbage that must not stop the server.

mod common;

use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::{Agent, Health, wait_until};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// `dig @127.0.0.1 -p PORT ARGS...` → stdout.
fn dig(port: u16, args: &[&str]) -> String {
    dig_at("127.0.0.1", port, args)
}

/// `dig @IP -p PORT ARGS...` → stdout.
fn dig_at(ip: &str, port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args([
            &format!("@{ip}"),
            "-p",
            &port.to_string(),
            "+time=3",
            "+tries=1",
        ])
        .args(args)
        .output()
        .expect("dig (bind9-dnsutils) must be installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The sorted `+short` lines.
fn short(port: u16, args: &[&str]) -> Vec<String> {
    let mut v = short_at("127.0.0.1", port, args);
    v.sort();
    v
}

/// `status: NOERROR` → "NOERROR".
fn status(out: &str) -> String {
    out.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("no answer")
        .to_string()
}

/// The flags of the reply header (`qr aa tc ...`).
fn flags(out: &str) -> Vec<String> {
    out.split(";; flags: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .map(|f| f.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Record lines of the answer section.
fn answers(out: &str) -> Vec<String> {
    section(out, "ANSWER")
}

/// Record lines of the section `name` (`ANSWER`, `ADDITIONAL`, ...).
fn section(out: &str, name: &str) -> Vec<String> {
    out.split(&format!(";; {name} SECTION:"))
        .nth(1)
        .map(|s| {
            s.lines()
                .skip(1)
                .take_while(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn register(a: &Agent, body: serde_json::Value) {
    let (code, text) = a.put("/v1/agent/service/register", body.to_string());
    assert_eq!(code, 200, "{text}");
}

#[test]
fn consul_names_answer_and_a_failing_check_leaves_the_answers() {
    let a = Agent::dev_named("web-node", &["-node-meta", "rack:r1"]);
    let p = a.dns;
    assert_ne!(p, 0, "the agent reports its DNS port");

    // The servers answer for consul.service.consul, A and SRV.
    assert_eq!(short(p, &["consul.service.consul"]), ["127.0.0.1"]);
    let srv = short(p, &["_consul._tcp.service.consul", "SRV"]);
    assert_eq!(srv.len(), 1, "{srv:?}");
    assert!(srv[0].ends_with("web-node.node.dc1.consul."), "{srv:?}");

    // redis with tags primary,v1 and an HTTP check on a real local endpoint.
    let health_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let health = Health::start(health_port);
    register(
        &a,
        json!({
            "Name": "redis", "ID": "redis1", "Tags": ["primary", "v1"], "Port": 6379,
            "Check": {
                "HTTP": format!("http://127.0.0.1:{health_port}/"),
                "Interval": "1s", "Timeout": "500ms"
            }
        }),
    );
    wait_until(WAIT, "redis passing in DNS", || {
        short(p, &["redis.service.consul"]) == ["127.0.0.1"]
    });
    for name in [
        "primary.redis.service.consul",
        "v1.redis.service.consul",
        "redis.service.dc1.consul",
        "redis.service.dc1.dc.consul",
        "REDIS.Service.Consul",
    ] {
        assert_eq!(short(p, &[name]), ["127.0.0.1"], "{name}");
    }
    let srv = dig(p, &["_redis._tcp.service.consul", "SRV"]);
    assert!(
        answers(&srv)
            .iter()
            .any(|l| l.contains("SRV") && l.contains("1 1 6379 web-node.node.dc1.consul.")),
        "{srv}"
    );
    let additional = srv.split(";; ADDITIONAL SECTION:").nth(1).unwrap_or("");
    assert!(additional.contains("web-node.node.dc1.consul."), "{srv}");
    assert!(additional.contains("127.0.0.1"), "{srv}");
    assert_eq!(
        short(p, &["_redis._primary.service.consul", "SRV"]),
        ["1 1 6379 web-node.node.dc1.consul."]
    );

    // Nodes, with meta as TXT.
    assert_eq!(short(p, &["web-node.node.consul"]), ["127.0.0.1"]);
    assert_eq!(short(p, &["web-node.node.dc1.consul"]), ["127.0.0.1"]);
    assert_eq!(short(p, &["web-node.node.consul", "TXT"]), ["\"rack=r1\""]);

    // Names that do not exist: NXDOMAIN with the SOA.
    for name in [
        "v2.redis.service.consul",
        "nope.service.consul",
        "redis.service.dc2.consul",
        "nope.node.consul",
        "a.b.redis.service.consul",
        "whatever.consul",
    ] {
        let out = dig(p, &[name]);
        assert_eq!(status(&out), "NXDOMAIN", "{name}: {out}");
        assert!(
            out.contains("SOA\tns.consul. postmaster.consul."),
            "{name}: {out}"
        );
    }
    let soa = short(p, &["consul.", "SOA"]);
    assert!(
        soa[0].starts_with("ns.consul. postmaster.consul. "),
        "{soa:?}"
    );
    assert_eq!(short(p, &["7f000001.addr.dc1.consul"]), ["127.0.0.1"]);
    assert_eq!(
        short(p, &["-x", "127.0.0.1"]),
        ["web-node.node.dc1.consul."]
    );

    // A failing check takes the instance out within the check's interval (plus timeout).
    health.stop();
    wait_until(WAIT, "redis gone from DNS", || {
        status(&dig(p, &["redis.service.consul"])) == "NXDOMAIN"
    });
    assert_eq!(short(p, &["consul.service.consul"]), ["127.0.0.1"]);
}

/// Registers `n` nodes `n0..` with one instance each of `service` on port 80.
fn register_nodes(a: &Agent, service: &str, n: usize) {
    for i in 0..n {
        let body = json!({
            "Node": format!("n{i}"),
            "Address": format!("10.1.{}.{}", i / 100, i % 100 + 1),
            "Service": { "Service": service, "ID": service, "Port": 80 },
        });
        let (code, text) = a.put("/v1/catalog/register", body.to_string());
        assert_eq!(code, 200, "{text}");
    }
}

fn has_tc(out: &str) -> bool {
    flags(out).iter().any(|f| f == "tc")
}

/// Consul's rule: `udp_answer_limit` whenever the client's buffer is 512 bytes (no EDNS, or
/// EDNS 512), the EDNS size otherwise, 64 KiB over TCP; and no TC without `enable_truncate`.
#[test]
fn two_hundred_instances_are_trimmed_silently_over_udp_and_whole_over_tcp() {
    let a = Agent::dev();
    register_nodes(&a, "big", 200);
    let p = a.dns;
    for buffer in ["+noedns", "+bufsize=512"] {
        let out = dig(p, &["big.service.consul", buffer, "+notcp", "+ignore"]);
        let n = answers(&out).len();
        assert!((1..=3).contains(&n), "{buffer}: {out}");
        assert!(
            !has_tc(&out),
            "no TC without enable_truncate ({buffer}): {out}"
        );
        let srv = dig(p, &["big.service.consul", "SRV", buffer, "+ignore"]);
        let n = answers(&srv).len();
        assert!((1..=3).contains(&n), "{buffer}: {srv}");
        assert_eq!(
            section(&srv, "ADDITIONAL").len(),
            n,
            "one address per kept SRV: {srv}"
        );
        assert!(!has_tc(&srv), "{srv}");
    }

    let edns = dig(p, &["big.service.consul", "+bufsize=4096", "+ignore"]);
    let n = answers(&edns).len();
    assert!(n > 3 && n < 200, "as many as fit in 4096 bytes: {n}");
    assert!(!has_tc(&edns), "{edns}");
    assert!(
        edns.contains("udp: 4096"),
        "the EDNS size is echoed: {edns}"
    );

    let tcp = dig(p, &["big.service.consul", "+tcp"]);
    assert_eq!(answers(&tcp).len(), 200, "{tcp}");
    assert!(!has_tc(&tcp), "{tcp}");
    let srv = dig(p, &["big.service.consul", "SRV", "+tcp"]);
    assert_eq!(answers(&srv).len(), 200);
    assert_eq!(section(&srv, "ADDITIONAL").len(), 200, "{srv}");
}

/// `dns_config.enable_truncate = true`: a trimmed UDP answer says so with TC (dig then
/// retries over TCP and gets everything); an answer that fits does not.
#[test]
fn enable_truncate_sets_tc_on_trimmed_udp_answers_only() {
    let a = Agent::dev_named(
        "tc-node",
        &["-hcl", "dns_config { enable_truncate = true }"],
    );
    register_nodes(&a, "big", 10);
    let p = a.dns;
    for buffer in ["+noedns", "+bufsize=512"] {
        let out = dig(p, &["big.service.consul", buffer, "+ignore"]);
        assert!((1..=3).contains(&answers(&out).len()), "{buffer}: {out}");
        assert!(has_tc(&out), "{buffer}: {out}");
    }
    let retried = dig(p, &["big.service.consul", "+noedns"]);
    assert_eq!(
        answers(&retried).len(),
        10,
        "dig retries over TCP: {retried}"
    );
    let fits = dig(p, &["big.service.consul", "+bufsize=4096", "+ignore"]);
    assert_eq!(answers(&fits).len(), 10, "{fits}");
    assert!(!has_tc(&fits), "{fits}");
    let one = dig(p, &["consul.service.consul", "+noedns", "+ignore"]);
    assert!(!has_tc(&one), "{one}");
}

/// Two instances of a service on one node, different ports: two SRV answers, and one
/// address per SRV record in the additional section (Consul does not de-duplicate them; load
/// balancers resolving backends through SRV would otherwise see one instance per host).
#[test]
fn two_instances_on_one_node_are_two_srv_answers_with_two_addresses() {
    let a = Agent::dev_named("host-1", &[]);
    register(&a, json!({"Name": "api", "ID": "api-1", "Port": 8080}));
    register(&a, json!({"Name": "api", "ID": "api-2", "Port": 8081}));
    let p = a.dns;
    wait_until(WAIT, "both api instances in DNS", || {
        short(p, &["api.service.consul", "SRV"]).len() == 2
    });
    assert_eq!(
        short(p, &["api.service.consul", "SRV"]),
        [
            "1 1 8080 host-1.node.dc1.consul.",
            "1 1 8081 host-1.node.dc1.consul."
        ]
    );
    for transport in ["+notcp", "+tcp"] {
        let out = dig(p, &["_api._tcp.service.consul", "SRV", transport]);
        assert_eq!(answers(&out).len(), 2, "{out}");
        let glue: Vec<String> = section(&out, "ADDITIONAL")
            .into_iter()
            .filter(|l| l.split_whitespace().nth(3) == Some("A"))
            .collect();
        assert_eq!(glue.len(), 2, "{transport}: {out}");
        assert!(
            glue.iter()
                .all(|l| l.starts_with("host-1.node.dc1.consul.") && l.ends_with("127.0.0.1")),
            "{out}"
        );
    }
    assert_eq!(
        short(p, &["api.service.consul"]),
        ["127.0.0.1"],
        "one A per address"
    );
}

/// Sends `bytes` and waits briefly for any reply.
fn poke(port: u16, bytes: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    sock.send_to(bytes, ("127.0.0.1", port)).expect("send");
    let mut buf = [0u8; 4096];
    sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

/// A query for `name` (type A, class IN), id 0x1234.
fn query(name: &str) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        m.push(u8::try_from(label.len()).expect("short label"));
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

#[test]
fn garbage_is_dropped_or_formerr_and_the_server_keeps_answering() {
    let a = Agent::dev();
    let p = a.dns;
    // Shorter than a header: dropped.
    assert_eq!(poke(p, b"\x01\x02\x03"), None);
    // Random bytes with a header: no crash (FORMERR or nothing).
    let mut junk = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    junk.extend((0..200u32).map(|i| (i * 37 % 251) as u8));
    let _ = poke(p, &junk);
    // A question cut in half: FORMERR.
    let q = query("consul.service.consul");
    let cut = poke(p, &q[..q.len() - 6]).expect("an answer to a truncated question");
    assert_eq!(cut[3] & 0x0f, 1, "FORMERR");
    // A label longer than 63 bytes and a name longer than 255: FORMERR or dropped.
    let mut long = vec![0x12, 0x35, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 70];
    long.extend(std::iter::repeat_n(b'a', 70));
    long.extend_from_slice(&[0, 0, 1, 0, 1]);
    if let Some(r) = poke(p, &long) {
        assert_ne!(r[3] & 0x0f, 0, "no NOERROR for a 70-byte label");
    }
    let huge = query(&"abcdefghij.".repeat(30));
    if let Some(r) = poke(p, &huge) {
        assert_ne!(r[3] & 0x0f, 0, "no NOERROR for a 330-byte name");
    }
    // Garbage over TCP closes that connection only.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", p)).expect("tcp");
        let _ = s.write_all(b"\x00\x05hello\xff\xff");
    }
    // Still answering, over both transports.
    assert_eq!(short(p, &["consul.service.consul"]), ["127.0.0.1"]);
    assert_eq!(short(p, &["consul.service.consul", "+tcp"]), ["127.0.0.1"]);
    let ok = poke(p, &query("consul.service.consul")).expect("answer");
    assert_eq!(&ok[..2], &[0x12, 0x34]);
    assert_eq!(ok[3] & 0x0f, 0, "NOERROR");
}

/// Found by `fuzz/fuzz_targets/dns_request.rs` (input kept in `fuzz/regressions/`): a query
/// with several questions is FORMERR. It used to echo the questions, and when they outgrew a
/// 512-byte UDP reply hickory could not encode it and sent a question-less SERVFAIL.
#[test]
fn many_questions_are_formerr_even_when_they_would_not_fit_a_udp_reply() {
    let a = Agent::dev();
    let p = a.dns;
    let found = include_bytes!(
        "../../fuzz/regressions/dns_request/crash-ea318b88d8db87fd13cafb392d77b60c671f239e"
    );
    let r = poke(p, found).expect("an answer");
    assert_eq!(&r[..2], &found[..2], "same ID");
    assert_eq!(r[3] & 0x0f, 1, "FORMERR, not SERVFAIL");
    // Nine 70-byte questions, built on purpose.
    let one = query(&format!("{}.service.consul", "w".repeat(50)));
    let mut nine = one[..12].to_vec();
    nine[5] = 9;
    for _ in 0..9 {
        nine.extend_from_slice(&one[12..]);
    }
    let r = poke(p, &nine).expect("an answer");
    assert_eq!(r[3] & 0x0f, 1, "FORMERR, not SERVFAIL");
    assert!(r.len() <= 512, "{} bytes", r.len());
}

/// Found by `fuzz/fuzz_targets/dns_request.rs` (input kept in `fuzz/regressions/`): the
/// question name ends in a compression pointer to offset 2, the query's flags. The reply
/// echoed the question's bytes, where the same pointer read the reply's flags (0x81) as a
/// label length: a reply no resolver can parse. The question is now encoded afresh.
#[test]
fn a_question_compressed_into_the_header_gets_a_reply_that_parses() {
    use hickory_server::proto::op::{Message, ResponseCode};

    let a = Agent::dev();
    let found = include_bytes!(
        "../../fuzz/regressions/dns_request/crash-bece9405cdd0e918656d193529f08b004a15cf78"
    );
    let r = poke(a.dns, found).expect("an answer");
    assert_eq!(&r[..2], &found[..2], "same ID");
    let reply = Message::from_vec(&r).expect("the reply parses");
    assert_eq!(reply.queries.len(), 1);
    let name = reply.queries[0].name().to_ascii();
    assert!(name.starts_with("big.service.consu"), "{name}");
    // Not in the domain, and a dev agent has no recursors: REFUSED, as Consul.
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn recursors_answer_other_names_refused_without_and_servfail_when_down() {
    // The recursor is another agent, serving its own domain.
    let upstream = Agent::dev_named("up", &["-domain", "example"]);
    let down = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let down_addr = down.local_addr().expect("addr").to_string();
    drop(down);
    let up_addr = format!("127.0.0.1:{}", upstream.dns);
    let a = Agent::dev_named(
        "front",
        &[
            "-recursor",
            &down_addr,
            "-recursor",
            &up_addr,
            "-hcl",
            "dns_config { recursor_timeout = \"500ms\" }",
            "-alt-domain",
            "alt.test",
        ],
    );
    let p = a.dns;
    // Sequential: the dead one first, then the live one answers.
    assert_eq!(short(p, &["consul.service.example"]), ["127.0.0.1"]);
    assert_eq!(short(p, &["consul.service.example", "+tcp"]), ["127.0.0.1"]);
    let out = dig(p, &["up.node.example"]);
    assert_eq!(status(&out), "NOERROR", "{out}");
    assert!(flags(&out).contains(&"ra".to_string()), "{out}");
    assert_eq!(status(&dig(p, &["nope.node.example"])), "NXDOMAIN");
    // Its own domains stay its own, and answers keep the domain asked.
    assert_eq!(short(p, &["front.node.consul"]), ["127.0.0.1"]);
    let srv = short(p, &["_consul._tcp.service.alt.test", "SRV"]);
    assert!(srv[0].ends_with("front.node.dc1.alt.test."), "{srv:?}");

    // Without recursors: REFUSED. With only dead ones: SERVFAIL.
    assert_eq!(status(&dig(upstream.dns, &["example.com"])), "REFUSED");
    drop(upstream);
    wait_until(WAIT, "SERVFAIL once no recursor answers", || {
        status(&dig(p, &["consul.service.example"])) == "SERVFAIL"
    });
    assert_eq!(short(p, &["front.node.consul"]), ["127.0.0.1"]);
}

#[test]
fn a_client_agent_answers_through_its_servers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Agent::server_named(&dir.path().join("s"), "srv", &[]);
    let client = Agent::client_of(&dir.path().join("c"), "cli", &server.serf, &[]);
    register(
        &client,
        json!({"Name": "web", "Port": 8080, "Address": "192.0.2.7", "Tags": ["blue"]}),
    );
    let p = client.dns;
    wait_until(WAIT, "web in the client's DNS", || {
        short(p, &["web.service.consul"]) == ["192.0.2.7"]
    });
    assert_eq!(short(p, &["blue.web.service.consul"]), ["192.0.2.7"]);
    assert_eq!(
        short(p, &["web.service.consul", "SRV"]),
        ["1 1 8080 c0000207.addr.dc1.consul."]
    );
    assert_eq!(short(p, &["consul.service.consul"]), ["127.0.0.1"]);
    assert_eq!(short(p, &["srv.node.consul"]), ["127.0.0.1"]);
    assert_eq!(status(&dig(p, &["nope.service.consul"])), "NXDOMAIN");
    assert_eq!(status(&dig(p, &["web.service.dc9.consul"])), "NXDOMAIN");
    // The server answers the same.
    assert_eq!(short(server.dns, &["web.service.consul"]), ["192.0.2.7"]);
}

#[test]
fn prepared_queries_answer_with_their_filters_and_ttl() {
    let a = Agent::dev();
    for (node, addr, tags) in [
        ("r1", "10.2.0.1", json!(["primary"])),
        ("r2", "10.2.0.2", json!(["replica"])),
    ] {
        let body = json!({
            "Node": node, "Address": addr,
            "Service": { "Service": "redis", "Tags": tags, "Port": 6379 },
        });
        assert_eq!(a.put("/v1/catalog/register", body.to_string()).0, 200);
    }
    let create = |body: serde_json::Value| {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/v1/query", a.url))
            .body(body.to_string())
            .send()
            .expect("POST /v1/query");
        assert_eq!(r.status().as_u16(), 200);
    };
    create(json!({
        "Name": "primary-redis",
        "Service": { "Service": "redis", "Tags": ["primary"] },
        "DNS": { "TTL": "10s" }
    }));
    create(json!({
        "Name": "geo-",
        "Template": { "Type": "name_prefix_match", "Regexp": "^geo-(.*)$" },
        "Service": { "Service": "${match(1)}", "Tags": ["!primary"] }
    }));
    let p = a.dns;
    assert_eq!(short(p, &["primary-redis.query.consul"]), ["10.2.0.1"]);
    let out = dig(p, &["primary-redis.query.dc1.consul"]);
    assert!(
        answers(&out).iter().any(|l| l
            .split_whitespace()
            .skip(1)
            .eq(["10", "IN", "A", "10.2.0.1"])),
        "the query's DNS.TTL: {out}"
    );
    assert_eq!(
        short(p, &["_primary-redis._tcp.query.consul", "SRV"]),
        ["1 1 6379 r1.node.dc1.consul."]
    );
    assert_eq!(short(p, &["geo-redis.query.consul"]), ["10.2.0.2"]);
    assert_eq!(status(&dig(p, &["nope.query.consul"])), "NXDOMAIN");
    assert_eq!(status(&dig(p, &["geo-nothing.query.consul"])), "NXDOMAIN");
}

/// TTL of the first answer record.
fn first_ttl(out: &str) -> Option<u32> {
    answers(out)
        .first()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|t| t.parse().ok())
}

#[test]
fn ttls_come_from_dns_config_and_port_53_binds_when_asked() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let hcl = r#"dns_config {
  node_ttl = "30s"
  service_ttl = { "*" = "5s", "web" = "15s" }
  enable_additional_node_meta_txt = false
}"#;
    // -client moves DNS (and HTTP) to another loopback address; as root, port 53 too.
    let port = if root { "53" } else { "0" };
    let a = Agent::dev_named(
        "ttl-node",
        &[
            "-client",
            "127.0.0.2",
            "-dns-port",
            port,
            "-hcl",
            hcl,
            "-node-meta",
            "k:v",
        ],
    );
    let p = a.dns;
    if root {
        assert_eq!(p, 53);
    }
    register(&a, json!({"Name": "web", "Port": 80}));
    register(&a, json!({"Name": "db", "Port": 5432}));
    wait_until(WAIT, "web in DNS", || {
        !short_at("127.0.0.2", p, &["web.service.consul"]).is_empty()
    });
    let ttl = |name: &str| first_ttl(&dig_at("127.0.0.2", p, &[name]));
    assert_eq!(ttl("web.service.consul"), Some(15));
    assert_eq!(ttl("db.service.consul"), Some(5), "the * entry");
    assert_eq!(ttl("ttl-node.node.consul"), Some(30));
    let srv = dig_at("127.0.0.2", p, &["web.service.consul", "SRV"]);
    assert!(
        !srv.contains("TXT"),
        "no meta TXT in the additional section: {srv}"
    );
}

fn short_at(ip: &str, port: u16, args: &[&str]) -> Vec<String> {
    dig_at(ip, port, &[args, &["+short"]].concat())
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
