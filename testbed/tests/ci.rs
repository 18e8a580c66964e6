//! The testbed end to end, as CI runs it: a small topology (1 DC × 3 servers + 1 client)
//! up, the `leader-failover` and `client-dns` scenarios, a Jepsen run with network faults, down, and nothing of the run left behind (no
//! namespace in `ip netns list`, no process). Skipped, saying why, where network
//! namespaces cannot be made (not root, no CAP_NET_ADMIN, `ip netns add` refused).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Instant;

use common::{Run, down_leaves_nothing, skip_reason, testbed, up};

/// Runs `scenario NAME`; its output and its JSON report (the newest of that name).
fn run_scenario(run: &Run, name: &str) -> (Output, serde_json::Value) {
    let out = run.testbed(&["scenario", name]);
    let mut reports: Vec<PathBuf> = std::fs::read_dir(run.path().join("results"))
        .expect("results dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(&format!("{name}-")))
        })
        .collect();
    reports.sort();
    assert_eq!(reports.len(), 1, "one {name} report: {reports:?}");
    let report = serde_json::from_str(&std::fs::read_to_string(&reports[0]).expect("report"))
        .expect("report json");
    (out, report)
}

/// The report names `n` plots, each a PNG file.
fn assert_plots(report: &serde_json::Value, n: usize) {
    let plots = report["plots"].as_array().expect("plots");
    assert_eq!(plots.len(), n, "{report:#}");
    for p in plots {
        let bytes = std::fs::read(p.as_str().expect("path")).expect("plot file");
        assert!(bytes.starts_with(b"\x89PNG"), "{p}");
    }
}

/// Up, leader failover under KV load, a client joining and its service in every agent's
/// DNS, down: every acknowledged write survives, and nothing of the run is left afterwards.
/// (`lan-partition` is not run here: it holds its cut until gossip notices, 10–30 s.)
#[test]
fn leader_failover_on_a_small_testbed_and_nothing_left_behind() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let started = Instant::now();
    let run = Run::new();
    let topo = run.path().join("ci.toml");
    std::fs::write(&topo, "[datacenter.dc1]\nservers = 3\nclients = 1\n").expect("topology");

    let prefix = up(&run, &topo, false);

    let status = run.testbed(&["status"]);
    assert!(status.status.success());
    let table = String::from_utf8_lossy(&status.stdout);
    for host in ["dc1-s1", "dc1-s2", "dc1-s3", "dc1-c1"] {
        assert!(table.contains(host), "{host} missing from status:\n{table}");
    }

    let (scenario, report) = run_scenario(&run, "leader-failover");
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
    assert_plots(&report, 1);

    // A new client joins, registers a service, and every agent answers it over DNS.
    let (scenario, report) = run_scenario(&run, "client-dns");
    assert!(scenario.status.success(), "scenario failed: {report:#}");
    assert_eq!(report["ok"], true, "{report:#}");
    let checks = report["checks"].as_array().expect("checks");
    for name in [
        "client_joins",
        "service_registered",
        "service_answered_by_dns_on_every_agent",
    ] {
        let check = checks.iter().find(|c| c["name"] == name);
        assert_eq!(
            check.map(|c| &c["ok"]),
            Some(&serde_json::json!(true)),
            "{name}: {report:#}"
        );
    }
    for host in ["dc1-s1", "dc1-s2", "dc1-s3", "dc1-c1", "dc1-c2"] {
        let t = &report["timings"][format!("dns_visible_{host}_s")];
        assert!(t.as_f64().is_some(), "{host}: {report:#}");
    }
    assert_plots(&report, 1);
    let status = run.testbed(&["status"]);
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        !table.contains("dc1-c2"),
        "the added client is removed again:\n{table}"
    );

    // The Jepsen run with network faults: partitions, an isolated server, a flapping link,
    // kills and pauses, for 20 s; every key linearizable, and the faults healed after.
    let out = run.testbed(&[
        "jepsen",
        "--testbed",
        "--seed",
        "11",
        "--time",
        "20s",
        "--nemesis",
        "partition,isolate,flap,kill,pause",
    ]);
    let result = run.path().join("jepsen/seed-11/result.json");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).expect("jepsen result"))
            .expect("result json");
    assert!(out.status.success(), "jepsen failed: {report:#}");
    assert_eq!(report["ok"], true, "{report:#}");
    assert!(report["counts"]["writes"].as_u64() > Some(50), "{report:#}");
    let faults = report["faults"].as_array().expect("faults");
    assert!(
        faults.iter().filter(|f| !f["fault"].is_null()).count() >= 2,
        "{report:#}"
    );
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.path().join("state.json")).expect("state file"),
    )
    .expect("state json");
    assert_eq!(state["partitions"], serde_json::json!([]), "healed");
    assert_eq!(state["isolated"], serde_json::json!([]), "healed");

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
