//! Three-server (or more) datacenters of real processes for the cluster, failover and
//! durability tests: fixed ports per server so a restarted server keeps its raft address,
//! and the waits every such test needs (an agreed leader). Every wait has a deadline.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use super::{Agent, wait_until};

/// How long a cluster may take to converge (gossip, bootstrap, election).
pub const CONVERGE: Duration = Duration::from_secs(30);

/// A free TCP port on loopback (free now; bound by the agent a moment later), never one
/// this test process handed out before: the kernel may give a just-released port again,
/// and two agents given one port would not start.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Fixed ports so a restarted server keeps its raft address.
pub struct Ports {
    /// Server RPC port (raft, forwarding).
    pub server: String,
    /// LAN gossip port.
    pub serf: String,
}

/// Two free ports.
pub fn ports() -> Ports {
    Ports {
        server: free_port().to_string(),
        serf: free_port().to_string(),
    }
}

/// A `-bootstrap-expect 3` server named `name` on `dir/name`, joining `join` if given;
/// returns once its listeners are bound.
pub fn server(dir: &Path, name: &str, p: &Ports, join: Option<&str>) -> Agent {
    server_with(dir, name, p, join, &[])
}

/// [`server`] with `extra` flags.
pub fn server_with(dir: &Path, name: &str, p: &Ports, join: Option<&str>, extra: &[&str]) -> Agent {
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
    args.extend_from_slice(extra);
    Agent::launch(&args)
}

/// The leader `a` names (`""` if none or on error).
pub fn leader(a: &Agent) -> String {
    let (code, _, body) = a.get("/v1/status/leader");
    if code != 200 {
        return String::new();
    }
    serde_json::from_str::<String>(&body).unwrap_or_default()
}

/// Waits until every running server names the same leader and `ok` accepts it.
pub fn agreed_leader(servers: &[Option<Agent>], what: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut agreed = String::new();
    wait_until(CONVERGE, what, || {
        let l: Vec<String> = servers.iter().flatten().map(leader).collect();
        let same = !l[0].is_empty() && l.iter().all(|x| *x == l[0]) && ok(&l[0]);
        if same {
            agreed = l[0].clone();
        }
        same
    });
    agreed
}

/// The index in `p` of the server whose RPC address `leader` names.
pub fn index_of(p: &[Ports], leader: &str) -> usize {
    p.iter()
        .position(|x| leader.ends_with(&format!(":{}", x.server)))
        .expect("leader is one of ours")
}
