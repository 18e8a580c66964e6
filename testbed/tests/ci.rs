//! The testbed end to end, as CI runs it: a small topology (1 DC × 3 servers + 1 client)
//! up, the `leader-failover` scenario, down, and nothing of the run left behind (no
//! namespace in `ip netns list`, no process). Skipped, saying why, where network
//! namespaces cannot be made (not root, no CAP_NET_ADMIN, `ip netns add` refused).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use common::{Run, down_leaves_nothing, meridian, prefix_of, skip_reason, testbed};

/// Up, leader failover under KV load, down: every acknowledged write survives, and
/// nothing of the run is left afterwards.
#[test]
fn leader_failover_on_a_small_testbed_and_nothing_left_behind() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let started = Instant::now();
    let meridian = meridian();
    let run = Run::new();
    let topo = run.path().join("ci.toml");
    std::fs::write(&topo, "[datacenter.dc1]\nservers = 3\nclients = 1\n").expect("topology");

    let up = run.testbed(&[
        "up",
        &topo.to_string_lossy(),
        "--meridian",
        &meridian.to_string_lossy(),
    ]);
    assert!(up.status.success(), "up failed");
    let prefix = prefix_of(&run);

    let status = run.testbed(&["status"]);
    assert!(status.status.success());
    let table = String::from_utf8_lossy(&status.stdout);
    for host in ["dc1-s1", "dc1-s2", "dc1-s3", "dc1-c1"] {
        assert!(table.contains(host), "{host} missing from status:\n{table}");
    }

    let scenario = run.testbed(&["scenario", "leader-failover"]);
    let results: Vec<PathBuf> = std::fs::read_dir(run.path().join("results"))
        .expect("results dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(results.len(), 1, "one report: {results:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results[0]).expect("report"))
            .expect("report json");
    assert!(scenario.status.success(), "scenario failed: {report:#}");
    assert_eq!(report["ok"], true, "{report:#}");
    let checks = report["checks"].as_array().expect("checks");
    for name in [
        "new_leader_elected",
        "writes_acknowledged_after_failover",
        "no_acknowledged_write_lost",
        "every_server_holds_every_acknowledged_key",
    ] {
        let check = checks.iter().find(|c| c["name"] == name);
        assert_eq!(
            check.map(|c| &c["ok"]),
            Some(&serde_json::json!(true)),
            "{name}: {report:#}"
        );
    }
    assert!(report["counts"]["writes_acknowledged"].as_u64() > Some(0));
    assert_ne!(report["facts"]["old_leader"], report["facts"]["new_leader"]);

    down_leaves_nothing(&run, &prefix);
    eprintln!("whole test: {:.2}s", started.elapsed().as_secs_f64());
}

/// A bad topology is refused with file and line, before anything is made (no root needed).
#[test]
fn bad_topology_is_refused_naming_its_line() {
    let run = Run::new();
    let topo = run.path().join("bad.toml");
    std::fs::write(&topo, "[datacenter.dc1]\nservers = 3\nclients = -1\n").expect("topology");
    let out = run.testbed(&["up", &topo.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3:"), "{err}");
    assert!(!run.path().join("state.json").exists(), "nothing was made");
}

/// Without CAP_NET_ADMIN, `up` says so and makes nothing.
#[test]
fn without_net_admin_up_says_run_as_root() {
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: setpriv (util-linux) is not installed");
        return;
    }
    let run = Run::new();
    let topo = run.path().join("ci.toml");
    std::fs::write(&topo, "[datacenter.dc1]\nservers = 1\n").expect("topology");
    let out = Command::new("setpriv")
        .arg("--bounding-set=-net_admin")
        .arg(testbed())
        .arg("--run-dir")
        .arg(run.path())
        .args(["up", &topo.to_string_lossy()])
        .output()
        .expect("run setpriv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("testbed: needs CAP_NET_ADMIN; run as root"),
        "{err}"
    );
    assert!(!run.path().join("state.json").exists(), "nothing was made");
}
