//! One datacenter as a cluster of real server processes: `-bootstrap-expect 3` forms raft
//! over gRPC only once the third server is in the pool, a follower forwards writes and
//! default reads, the cluster survives losing its leader, refuses writes quickly without a
//! quorum while `?stale` reads still answer, and heals on restart without losing an
//! acknowledged write. Every wait has a deadline.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{CONVERGE, Ports, agreed_leader, free_port, leader, ports, server};
use common::{Agent, Health, wait_until};

fn put(a: &Agent, key: &str, value: &str) -> (u16, String) {
    a.put(&format!("/v1/kv/{key}"), value.to_string())
}

fn agent(servers: &[Option<Agent>], i: usize) -> &Agent {
    servers[i].as_ref().expect("running")
}

fn get_raw(a: &Agent, path: &str) -> (u16, String) {
    let (code, _, body) = a.get(path);
    (code, body)
}

#[test]
fn three_servers_bootstrap_fail_over_lose_quorum_and_heal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p: Vec<Ports> = (0..3).map(|_| ports()).collect();
    let seed = format!("127.0.0.1:{}", p[0].serf);
    let mut s1 = server(dir.path(), "s1", &p[0], None);
    let mut s2 = server(dir.path(), "s2", &p[1], Some(&seed));
    // Two of three: both see each other, wait for a third, and elect nobody.
    for s in [&mut s1, &mut s2] {
        s.wait_log(CONVERGE, |l| {
            l.contains("waiting for servers before bootstrapping") && l.contains("\"found\":2")
        });
    }
    assert_eq!(leader(&s1), "");
    assert_eq!(leader(&s2), "");
    let (code, body) = put(&s1, "early", "x");
    assert_ne!(code, 200, "a write before bootstrap must fail: {body}");

    let s3 = server(dir.path(), "s3", &p[2], Some(&seed));
    let names = ["s1", "s2", "s3"];
    let mut servers: Vec<Option<Agent>> = vec![Some(s1), Some(s2), Some(s3)];
    let up = |servers: &[Option<Agent>]| -> Vec<usize> {
        (0..servers.len())
            .filter(|i| servers[*i].is_some())
            .collect()
    };
    // The index of the server whose RPC address `leader` names.
    let leader_index = |addr: &str| {
        p.iter()
            .position(|x| addr.ends_with(&format!(":{}", x.server)))
            .expect("leader is one of ours")
    };
    agreed_leader(&servers, "one leader known to all three", |_| true);
    let peers: Vec<String> =
        serde_json::from_str(&get_raw(agent(&servers, 0), "/v1/status/peers").1).expect("peers");
    assert_eq!(peers.len(), 3, "{peers:?}");

    // Writes through any server, reads (default consistency) from any server.
    let mut acked = Vec::new();
    for i in up(&servers) {
        let key = format!("k/{i}");
        let (code, body) = put(agent(&servers, i), &key, "v");
        assert_eq!(code, 200, "{body}");
        acked.push(key);
    }
    for i in up(&servers) {
        for k in &acked {
            let got = get_raw(agent(&servers, i), &format!("/v1/kv/{k}?raw"));
            assert_eq!(got, (200, "v".into()), "{k} on {}", names[i]);
        }
    }
    // Every server is in the catalog with a passing serfHealth and the consul service.
    wait_until(CONVERGE, "three passing consul instances", || {
        let (code, body) = get_raw(agent(&servers, 0), "/v1/health/service/consul?passing");
        code == 200
            && serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.as_array().map(Vec::len))
                == Some(3)
    });

    // Kill the leader: the other two elect a new one and keep taking writes.
    let old = leader(agent(&servers, 0));
    let first_dead = leader_index(&old);
    if let Some(a) = servers[first_dead].take() {
        a.kill9();
    }
    agreed_leader(&servers, "a new leader", |l| l != old);
    for i in up(&servers) {
        let key = format!("after-failover/{i}");
        let (code, body) = put(agent(&servers, i), &key, "v");
        assert_eq!(code, 200, "{body}");
        acked.push(key);
    }

    // Kill one more: no quorum. Writes fail fast and clearly; stale reads still answer.
    let second_dead = up(&servers)[0];
    if let Some(a) = servers[second_dead].take() {
        a.kill9();
    }
    let lone = up(&servers)[0];
    // Within its lease the last server may still think it leads; after it, it must not.
    wait_until(CONVERGE, "the lone server to report no leader", || {
        leader(agent(&servers, lone)).is_empty()
    });
    let started = Instant::now();
    let (code, body) = put(agent(&servers, lone), "no-quorum", "v");
    let took = started.elapsed();
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("No cluster leader"), "{body}");
    assert!(
        took < Duration::from_secs(10),
        "write failed after {took:?}"
    );
    assert_eq!(
        get_raw(agent(&servers, lone), "/v1/kv/k/0?stale&raw"),
        (200, "v".into())
    );

    // Restart both: the cluster heals and every acknowledged write is there.
    for i in [first_dead, second_dead] {
        let join = format!("127.0.0.1:{}", p[lone].serf);
        servers[i] = Some(server(dir.path(), names[i], &p[i], Some(&join)));
    }
    agreed_leader(&servers, "a leader after the restarts", |_| true);
    for i in up(&servers) {
        for k in &acked {
            let got = get_raw(agent(&servers, i), &format!("/v1/kv/{k}?raw"));
            assert_eq!(got, (200, "v".into()), "{k} on {} after healing", names[i]);
        }
    }
}

fn cli_ok(a: &Agent, args: &[&str]) -> String {
    let o = a.cli(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "meridian {args:?}: {text}");
    text
}

/// `list-peers` rows as (node, state, voter).
fn peers(a: &Agent) -> Vec<(String, String, String)> {
    let o = a.cli(&["operator", "raft", "list-peers"]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() >= 5).then(|| (cols[0].into(), cols[3].into(), cols[4].into()))
        })
        .collect()
}

#[test]
fn new_servers_join_as_non_voters_autopilot_promotes_and_removes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p: Vec<Ports> = (0..5).map(|_| ports()).collect();
    let seed = format!("127.0.0.1:{}", p[0].serf);
    let names = ["s1", "s2", "s3", "s4", "s5"];
    let mut servers: Vec<Option<Agent>> = (0..3)
        .map(|i| {
            Some(server(
                dir.path(),
                names[i],
                &p[i],
                (i > 0).then_some(seed.as_str()),
            ))
        })
        .collect();
    agreed_leader(&servers, "a leader", |_| true);
    let s2 = agent(&servers, 1);
    // Autopilot settings live in raft: set through one server, read through another.
    let out = cli_ok(
        s2,
        &[
            "operator",
            "autopilot",
            "set-config",
            "-server-stabilization-time=3s",
            "-cleanup-dead-servers=false",
        ],
    );
    assert!(out.contains("Configuration updated!"), "{out}");
    let cfg = cli_ok(agent(&servers, 2), &["operator", "autopilot", "get-config"]);
    assert!(cfg.contains("ServerStabilizationTime = 3s"), "{cfg}");
    assert!(cfg.contains("CleanupDeadServers = false"), "{cfg}");

    // Servers 4 and 5 enter as non-voters, then become voters.
    for i in 3..5 {
        servers.push(Some(server(dir.path(), names[i], &p[i], Some(&seed))));
    }
    let s1 = agent(&servers, 0);
    let mut saw_non_voter = false;
    wait_until(CONVERGE, "five voters", || {
        let rows = peers(s1);
        saw_non_voter |= rows
            .iter()
            .any(|(n, _, v)| (n == "s4" || n == "s5") && v == "false");
        rows.len() == 5 && rows.iter().all(|(_, _, v)| v == "true")
    });
    assert!(
        saw_non_voter,
        "s4/s5 should have been non-voters before promotion"
    );
    let rows = peers(s1);
    assert_eq!(rows.iter().filter(|(_, s, _)| s == "leader").count(), 1);

    // Health, answered by the leader wherever it is asked.
    wait_until(
        CONVERGE,
        "a healthy cluster tolerating two failures",
        || {
            let (code, body) = get_raw(agent(&servers, 4), "/v1/operator/autopilot/health");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            code == 200 && v["Healthy"] == true && v["FailureTolerance"] == 2
        },
    );
    // The same judgement as Consul's AutopilotState, keyed by server ID.
    let (code, body) = get_raw(agent(&servers, 3), "/v1/operator/autopilot/state");
    assert_eq!(code, 200, "{body}");
    let st: serde_json::Value = serde_json::from_str(&body).expect("state JSON");
    assert_eq!(st["Voters"].as_array().map(Vec::len), Some(5), "{st}");
    let rows = st["Servers"].as_object().expect("Servers map");
    assert_eq!(rows.len(), 5);
    let leader_id = st["Leader"].as_str().expect("Leader");
    assert_eq!(rows[leader_id]["Status"], "leader");
    assert_eq!(
        rows.values().filter(|r| r["Status"] == "voter").count(),
        4,
        "{st}"
    );
    assert!(rows.values().all(|r| r["NodeStatus"] == "alive"));

    // Leadership moves on request from any server.
    let before = leader(s1);
    let out = cli_ok(agent(&servers, 3), &["operator", "raft", "transfer-leader"]);
    assert!(out.contains("Success"), "{out}");
    let now = agreed_leader(&servers, "a different leader", |l| l != before);

    // Kill only followers: the leader transfer may have picked any of the five, and killing
    // the new leader would leave the test waiting on an election instead of on autopilot.
    let is_leader = |i: usize| now == format!("127.0.0.1:{}", p[i].server);
    let mut followers = (1..5).rev().filter(|&i| !is_leader(i));
    let (Some(gone), Some(cleaned)) = (followers.next(), followers.next()) else {
        panic!("five servers have at least two followers besides s1");
    };

    // Without cleanup, a dead server stays until an operator removes it.
    let gone_addr = format!("127.0.0.1:{}", p[gone].server);
    if let Some(a) = servers[gone].take() {
        a.kill9();
    }
    let out = cli_ok(
        first_up(&servers),
        &["operator", "raft", "remove-peer", "-address", &gone_addr],
    );
    assert!(
        out.contains(&format!("Removed peer with address \"{gone_addr}\"")),
        "{out}"
    );
    wait_until(CONVERGE, "four peers", || {
        peers(first_up(&servers)).len() == 4
    });

    // With cleanup, autopilot removes a failed server by itself (quorum permitting).
    cli_ok(
        first_up(&servers),
        &[
            "operator",
            "autopilot",
            "set-config",
            "-cleanup-dead-servers=true",
        ],
    );
    if let Some(a) = servers[cleaned].take() {
        a.kill9();
    }
    wait_until(CONVERGE, "the dead server removed by autopilot", || {
        let rows = peers(first_up(&servers));
        rows.len() == 3 && !rows.iter().any(|(n, _, _)| n == names[cleaned])
    });
    let (code, body) = put(first_up(&servers), "still-writable", "v");
    assert_eq!(code, 200, "{body}");
}

/// The first server still running.
fn first_up(servers: &[Option<Agent>]) -> &Agent {
    servers.iter().flatten().next().expect("a running server")
}

/// A client agent (no `-server`) holds no raft: it joins through gossip and every catalog,
/// KV and status request it gets is answered by a server; the leader registers it with
/// `serfHealth`, which goes critical when the client is killed.
#[test]
fn client_agent_forwards_to_servers_and_is_reconciled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Agent::server_named(&dir.path().join("srv"), "srv", &[]);
    let client = Agent::client_of(
        &dir.path().join("cli"),
        "web-1",
        &server.serf,
        &["-hcl", "sync_coordinate_interval_min = \"500ms\""],
    );
    // The client knows the leader (through a server) and has no RPC port of its own.
    assert_eq!(leader(&client), leader(&server));
    let me = client.get_json("/v1/agent/self");
    assert_eq!(me["Config"]["Server"], false);
    // Writes and reads through the client land on the servers.
    let (code, body) = put(&client, "from/client", "hello");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        get_raw(&server, "/v1/kv/from/client?raw"),
        (200, "hello".into())
    );
    assert_eq!(
        get_raw(&client, "/v1/kv/from/client?raw"),
        (200, "hello".into())
    );
    // The leader reconciles the client into the catalog with a passing serfHealth, and the
    // client's coordinate arrives through a server.
    wait_until(CONVERGE, "web-1 passing in the catalog", || {
        serf_health(&client, "web-1") == "passing"
    });
    wait_until(CONVERGE, "web-1's coordinate", || {
        get_raw(&client, "/v1/coordinate/node/web-1").0 == 200
    });
    let nodes = client.get_json("/v1/catalog/nodes?near=_agent");
    assert_eq!(
        nodes[0]["Node"], "web-1",
        "nearest to the client is itself: {nodes}"
    );
    // Kill the client: its node stays, with serfHealth critical.
    client.kill9();
    wait_until(CONVERGE, "web-1 critical", || {
        serf_health(&server, "web-1") == "critical"
    });
}

/// The status of `node`'s serfHealth check as `a` sees it.
fn serf_health(a: &Agent, node: &str) -> String {
    let (_, body) = get_raw(a, &format!("/v1/health/node/{node}"));
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.as_array()?
                .iter()
                .find(|c| c["CheckID"] == "serfHealth")
                .and_then(|c| c["Status"].as_str().map(String::from))
        })
        .unwrap_or_default()
}

fn passing_instances(a: &Agent, service: &str) -> usize {
    let (code, body) = get_raw(a, &format!("/v1/health/service/{service}?passing"));
    if code != 200 {
        return usize::MAX;
    }
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(usize::MAX)
}

/// Issue #4's client acceptance: a client agent owns a service with an HTTP check; the
/// instance leaves `?passing` soon after its endpoint stops; killing the client turns its
/// `serfHealth` critical; a restart brings the service back without re-registration.
#[test]
fn client_agent_runs_http_checks_and_keeps_its_services_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Agent::server_named(&dir.path().join("srv"), "srv", &[]);
    let cdata = dir.path().join("cli");
    let cdata = cdata.to_string_lossy().to_string();
    let serf_port = free_port().to_string();
    let client_args = |join: &str| -> Vec<String> {
        [
            "agent",
            "-data-dir",
            &cdata,
            "-node",
            "web-1",
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
            "-http-port",
            "0",
            "-serf-lan-port",
            &serf_port,
            "-retry-join",
            join,
            "-log-json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let args = client_args(&server.serf);
    let client = Agent::start(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let port = free_port();
    let health = Health::start(port);
    let reg = serde_json::json!({
        "Name": "web", "Port": port,
        "Check": {"HTTP": format!("http://127.0.0.1:{port}/health"), "Interval": "500ms", "Timeout": "1s"}
    });
    let (code, body) = client.put("/v1/agent/service/register", reg.to_string());
    assert_eq!(code, 200, "{body}");
    wait_until(CONVERGE, "web passing", || {
        passing_instances(&server, "web") == 1
    });

    // The endpoint goes away: the instance leaves ?passing within interval + timeout.
    let stopped = Instant::now();
    health.stop();
    wait_until(CONVERGE, "web no longer passing", || {
        passing_instances(&server, "web") == 0
    });
    let took = stopped.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} (interval 500ms + timeout 1s)"
    );

    // Kill the client: its serfHealth goes critical on the servers.
    let health = Health::start(port);
    client.kill9();
    wait_until(CONVERGE, "web-1 serfHealth critical", || {
        serf_health(&server, "web-1") == "critical"
    });
    // Restart with the same data dir and no registration: the service is back, passing.
    let client = Agent::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let services = client.get_json("/v1/agent/services");
    assert_eq!(services["web"]["Port"], port, "{services}");
    wait_until(CONVERGE, "web passing again after the restart", || {
        passing_instances(&server, "web") == 1
    });
    health.stop();
}

fn instances(a: &Agent, service: &str) -> usize {
    let (code, body) = get_raw(a, &format!("/v1/catalog/service/{service}"));
    if code != 200 {
        return usize::MAX;
    }
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(usize::MAX)
}

/// The deployment walk-through: two servers with `-bootstrap-expect 2`, a client with
/// `-retry-join`, `-rejoin` and `-config-dir` holding a `jetty` service definition; the
/// definition is registered at start, removed by a reload after its file is deleted, and
/// added back by `SIGHUP`.
#[test]
fn deployment_walkthrough_two_servers_a_client_and_a_config_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p: Vec<Ports> = (0..2).map(|_| ports()).collect();
    let seed = format!("127.0.0.1:{}", p[0].serf);
    let mk_server = |i: usize, join: Option<&str>| {
        let data = dir.path().join(format!("s{i}"));
        let data = data.to_string_lossy().to_string();
        let name = format!("agent-{}", ["one", "two"][i]);
        let mut args = vec![
            "agent".to_string(),
            "-server".into(),
            "-bootstrap-expect".into(),
            "2".into(),
            "-data-dir".into(),
            data,
            "-node".into(),
            name,
            "-bind".into(),
            "127.0.0.1".into(),
            "-client".into(),
            "127.0.0.1".into(),
            "-http-port".into(),
            "0".into(),
            "-serf-lan-port".into(),
            p[i].serf.clone(),
            "-server-port".into(),
            p[i].server.clone(),
            "-log-json".into(),
        ];
        if let Some(j) = join {
            args.extend(["-retry-join".into(), j.to_string()]);
        }
        Agent::launch(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let one = mk_server(0, None);
    let two = mk_server(1, Some(&seed));
    wait_until(CONVERGE, "a leader of two servers", || {
        let l = leader(&one);
        !l.is_empty() && leader(&two) == l
    });

    let conf = dir.path().join("consul.d");
    std::fs::create_dir_all(&conf).expect("config dir");
    let jetty_port = free_port();
    let jetty = conf.join("jetty.json");
    let definition = serde_json::json!({"service": {
        "name": "jetty", "tags": ["primary"], "port": jetty_port,
        "check": {"tcp": format!("127.0.0.1:{jetty_port}"), "interval": "1s"}
    }});
    std::fs::write(&jetty, definition.to_string()).expect("write jetty.json");
    let cdata = dir.path().join("client");
    let (cdata, confs) = (cdata.to_string_lossy(), conf.to_string_lossy());
    let client = Agent::start(&[
        "agent",
        "-data-dir",
        &cdata,
        "-node",
        "agent-three",
        "-bind",
        "127.0.0.1",
        "-client",
        "127.0.0.1",
        "-http-port",
        "0",
        "-serf-lan-port",
        "0",
        "-retry-join",
        &seed,
        "-rejoin",
        "-config-dir",
        &confs,
        "-log-json",
    ]);
    let members = cli_ok(&client, &["members"]);
    for name in ["agent-one", "agent-two", "agent-three"] {
        assert!(members.contains(name), "{members}");
    }
    let peers = peers(&one);
    assert_eq!(peers.len(), 2, "{peers:?}");
    wait_until(CONVERGE, "jetty from the config dir in the catalog", || {
        instances(&two, "jetty") == 1
    });
    let (_, body) = get_raw(&one, "/v1/catalog/service/jetty");
    assert!(
        body.contains("\"agent-three\"") && body.contains("primary"),
        "{body}"
    );

    // Delete the definition and reload over HTTP: the service goes.
    std::fs::remove_file(&jetty).expect("rm jetty.json");
    let (code, body) = client.put("/v1/agent/reload", "");
    assert_eq!(code, 200, "{body}");
    wait_until(CONVERGE, "jetty removed by the reload", || {
        instances(&two, "jetty") == 0
    });
    // Put it back and send SIGHUP: the service returns.
    std::fs::write(&jetty, definition.to_string()).expect("write jetty.json");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &client.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    wait_until(CONVERGE, "jetty back after SIGHUP", || {
        instances(&two, "jetty") == 1
    });
}

/// Anti-entropy: the agent owns its node's services. One registered behind its back through
/// `/v1/catalog/register` is removed by the next full sync (every 3 s in `-dev`), and one the
/// agent owns but the catalog lost is put back.
#[test]
fn anti_entropy_repairs_the_agents_node_both_ways() {
    let a = Agent::dev_named("ae-node", &[]);
    let (code, body) = a.put(
        "/v1/agent/service/register",
        r#"{"Name": "owned", "Port": 1}"#,
    );
    assert_eq!(code, 200, "{body}");
    let rogue = r#"{"Node": "ae-node", "Address": "127.0.0.1", "Service": {"Service": "rogue", "Port": 2}}"#;
    assert_eq!(a.put("/v1/catalog/register", rogue).0, 200);
    let lost = r#"{"Node": "ae-node", "ServiceID": "owned"}"#;
    assert_eq!(a.put("/v1/catalog/deregister", lost).0, 200);
    // (The background pass may already be repairing: only the outcome is checked.)
    wait_until(CONVERGE, "drift repaired", || {
        instances(&a, "rogue") == 0 && instances(&a, "owned") == 1
    });
}

/// Script checks (refused unless enabled), counters, `DeregisterCriticalServiceAfter` and
/// maintenance mode, on real agents.
#[test]
fn script_checks_reaping_and_maintenance_mode() {
    let script = r#"{"Name": "job", "Port": 3, "Check": {"Args": ["sh", "-c", "exit 2"], "Interval": "200ms", "DeregisterCriticalServiceAfter": "1s"}}"#;
    let strict = Agent::dev_named("no-scripts", &[]);
    let (code, body) = strict.put("/v1/agent/service/register", script);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("enable_script_checks"), "{body}");

    let a = Agent::dev_named("scripts", &["-enable-script-checks"]);
    let (code, body) = a.put("/v1/agent/service/register", script);
    assert_eq!(code, 200, "{body}");
    // The script fails, the check goes critical, and after 1 s critical the service is gone.
    wait_until(CONVERGE, "job reaped", || {
        instances(&a, "job") == 0 && a.get_json("/v1/agent/services").get("job").is_none()
    });

    // Maintenance: the node's instances leave ?passing while it is on.
    let (code, body) = a.put(
        "/v1/agent/service/register",
        r#"{"Name": "web", "Port": 4, "Check": {"Args": ["sh", "-c", "exit 0"], "Interval": "200ms"}}"#,
    );
    assert_eq!(code, 200, "{body}");
    wait_until(CONVERGE, "web passing", || {
        passing_instances(&a, "web") == 1
    });
    let (code, body) = a.put("/v1/agent/maintenance?enable=true&reason=upgrading", "");
    assert_eq!(code, 200, "{body}");
    assert_eq!(passing_instances(&a, "web"), 0);
    let checks = a.get_json("/v1/agent/checks");
    assert_eq!(checks["_node_maintenance"]["Notes"], "upgrading");
    assert_eq!(a.put("/v1/agent/maintenance", "").0, 400);
    let (code, _) = a.put("/v1/agent/maintenance?enable=false", "");
    assert_eq!(code, 200);
    assert_eq!(passing_instances(&a, "web"), 1);
    let (code, _) = a.put("/v1/agent/service/maintenance/web?enable=true", "");
    assert_eq!(code, 200);
    assert_eq!(passing_instances(&a, "web"), 0);
    assert_eq!(
        a.put("/v1/agent/service/maintenance/nope?enable=true", "")
            .0,
        404
    );
}
