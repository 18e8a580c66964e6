//! One datacenter as a cluster of real server processes: `-bootstrap-expect 3` forms raft
//! over gRPC only once the third server is in the pool, a follower forwards writes and
//! default reads, the cluster survives losing its leader, refuses writes quickly without a
//! quorum while `?stale` reads still answer, and heals on restart without losing an
//! acknowledged write. Every wait has a deadline.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Agent, wait_until};

const CONVERGE: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Fixed ports so a restarted server keeps its raft address.
struct Ports {
    server: String,
    serf: String,
}

fn ports() -> Ports {
    Ports {
        server: free_port().to_string(),
        serf: free_port().to_string(),
    }
}

fn server(dir: &Path, name: &str, p: &Ports, join: Option<&str>) -> Agent {
    let data = dir.join(name);
    let data = data.to_string_lossy();
    let mut args = vec![
        "agent",
        "-server",
        "-bootstrap-expect",
        "3",
        "-data-dir",
        &data,
        "-node",
        name,
        "-bind",
        "127.0.0.1",
        "-client",
        "127.0.0.1",
        "-http-port",
        "0",
        "-serf-lan-port",
        &p.serf,
        "-server-port",
        &p.server,
        "-log-json",
    ];
    if let Some(j) = join {
        args.extend(["-retry-join", j, "-retry-interval", "200ms"]);
    }
    Agent::launch(&args)
}

fn leader(a: &Agent) -> String {
    let (code, _, body) = a.get("/v1/status/leader");
    if code != 200 {
        return String::new();
    }
    serde_json::from_str::<String>(&body).unwrap_or_default()
}

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
    wait_until(CONVERGE, "one leader known to all three", || {
        let l: Vec<String> = servers.iter().flatten().map(leader).collect();
        !l[0].is_empty() && l.iter().all(|x| *x == l[0])
    });
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
    wait_until(CONVERGE, "a new leader", || {
        let l: Vec<String> = servers.iter().flatten().map(leader).collect();
        !l[0].is_empty() && l[0] != old && l.iter().all(|x| *x == l[0])
    });
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
    wait_until(CONVERGE, "a leader after the restarts", || {
        let l: Vec<String> = servers.iter().flatten().map(leader).collect();
        !l[0].is_empty() && l.iter().all(|x| *x == l[0])
    });
    for i in up(&servers) {
        for k in &acked {
            let got = get_raw(agent(&servers, i), &format!("/v1/kv/{k}?raw"));
            assert_eq!(got, (200, "v".into()), "{k} on {} after healing", names[i]);
        }
    }
}
