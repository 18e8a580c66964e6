//! Datacenters on loopback joined by `meridian-gateway`s: the gateway process (started from
//! its JSON start line, SIGTERM to stop, killed on drop), two federated datacenters of one
//! server and one gateway each, and `dig` helpers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Agent, wait_until};

/// `meridian-gateway` beside `meridian` (built first if missing: binaries of another
/// package are not built for this one's tests).
pub fn gateway_bin() -> PathBuf {
    let bin = super::bin().with_file_name("meridian-gateway");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-p",
                "meridian-gateway",
                "--bin",
                "meridian-gateway",
            ])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building meridian-gateway failed");
    }
    bin
}

/// A running gateway; killed on drop.
pub struct Gateway {
    pub child: Child,
    pub serf_wan: String,
    pub rpc_lan: String,
}

impl Gateway {
    pub fn start(dc: &str, data: &Path, lan_join: &str, wan_join: Option<&str>) -> Gateway {
        Gateway::start_with(dc, data, lan_join, wan_join, &[])
    }

    pub fn start_with(
        dc: &str,
        data: &Path,
        lan_join: &str,
        wan_join: Option<&str>,
        extra: &[&str],
    ) -> Gateway {
        let dir = data.to_string_lossy().to_string();
        let mut args = vec![
            "-datacenter",
            dc,
            "-node",
            "gw",
            "-bind",
            "127.0.0.1",
            "-data-dir",
            &dir,
            "-server-port",
            "0",
            "-serf-lan-port",
            "0",
            "-serf-wan-port",
            "0",
            "-retry-join",
            lan_join,
            "-retry-interval",
            "200ms",
            "-log-json",
        ];
        if let Some(w) = wan_join {
            args.extend(["-retry-join-wan", w]);
        }
        args.extend_from_slice(extra);
        let mut child = Command::new(gateway_bin())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn meridian-gateway");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (serf_wan, rpc_lan) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("gateway start line");
            if line.contains("gateway running") {
                let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log");
                let field = |k: &str| v["fields"][k].as_str().expect(k).to_string();
                break (field("serf_wan"), field("rpc_lan"));
            }
        };
        // Keep draining so the gateway never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Gateway {
            child,
            serf_wan,
            rpc_lan,
        }
    }
}

impl Gateway {
    /// SIGTERM: the gateway leaves both pools and exits.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(Instant::now() < deadline, "gateway did not exit on SIGTERM");
            std::thread::sleep(super::POLL);
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// dc1 and dc2, a server and a gateway each, plaintext (not yet federated: see
/// [`wait_federated`]).
pub fn two_datacenters(dir: &Path) -> (Agent, Agent, Gateway, Gateway) {
    two_datacenters_with(dir, [&[], &[]], [&[], &[]])
}

/// [`two_datacenters`] with extra flags for the servers and the gateways of dc1 and dc2.
pub fn two_datacenters_with(
    dir: &Path,
    servers: [&[&str]; 2],
    gateways: [&[&str]; 2],
) -> (Agent, Agent, Gateway, Gateway) {
    let server = |n: usize| {
        let dc = format!("dc{n}");
        let args = [&["-datacenter", dc.as_str()][..], servers[n - 1]].concat();
        Agent::server_named(&dir.join(format!("s{n}")), &format!("s{n}"), &args)
    };
    let (s1, s2) = (server(1), server(2));
    let g1 = Gateway::start_with("dc1", &dir.join("g1"), &s1.serf, None, gateways[0]);
    let g2 = Gateway::start_with(
        "dc2",
        &dir.join("g2"),
        &s2.serf,
        Some(&g1.serf_wan),
        gateways[1],
    );
    (s1, s2, g1, g2)
}

/// A client agent `c1` of dc1, joined to dc1's server `s1`, its data under `dir/c1`.
pub fn dc1_client(dir: &Path, s1: &Agent) -> Agent {
    Agent::client_of(&dir.join("c1"), "c1", &s1.serf, &["-datacenter", "dc1"])
}

/// Waits until dc1's server `s1` lists both datacenters.
pub fn wait_federated(s1: &Agent) {
    wait_until(Duration::from_secs(30), "dc1 to see dc2", || {
        s1.get_json("/v1/catalog/datacenters") == json!(["dc1", "dc2"])
    });
}

pub fn dig_short(port: u16, name: &str, qtype: &str) -> Vec<String> {
    super::dig_short_with(port, name, qtype, &[])
}

pub fn dig_status(port: u16, name: &str) -> String {
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+time=8",
            "+tries=1",
            name,
        ])
        .output()
        .expect("dig");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("no answer")
        .to_string()
}
