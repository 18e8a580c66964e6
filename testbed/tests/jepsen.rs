//! The Jepsen-style test in CI, on loopback (no root): three real servers, six clients
//! writing, reading and CASing three keys, a seeded nemesis of SIGKILL/restart,
//! SIGSTOP/SIGCONT and graceful restarts; every key's history must be linearizable. The
//! long mode (`scripts/jepsen.sh`) runs the same with many seeds and 60 s each.

mod common;

use common::{Run, meridian};

/// Runs `testbed jepsen` for one seed (with `extra` flags); its exit status and
/// `result.json`.
fn jepsen(
    run: &Run,
    seed: &str,
    reads: &str,
    time: &str,
    extra: &[&str],
) -> (bool, serde_json::Value) {
    let meridian = meridian();
    let mut args = vec!["jepsen", "--seed", seed, "--time", time, "--reads", reads];
    let meridian = meridian.to_string_lossy();
    args.extend(["--meridian", &meridian]);
    args.extend_from_slice(extra);
    let out = run.testbed(&args);
    let path = run
        .path()
        .join("jepsen")
        .join(format!("seed-{seed}"))
        .join("result.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "no {}: {e}\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (
        out.status.success(),
        serde_json::from_str(&text).expect("result.json"),
    )
}

fn assert_linearizable_under_faults(ok: bool, r: &serde_json::Value) {
    assert!(ok, "{r:#}");
    assert_eq!(r["ok"], true, "{r:#}");
    let verdicts = r["verdicts"].as_object().expect("verdicts");
    assert_eq!(verdicts.len(), 3, "{r:#}");
    for (key, v) in verdicts {
        assert_eq!(v["verdict"], "linearizable", "{key}: {r:#}");
    }
    let c = &r["counts"];
    assert!(c["writes"].as_u64() > Some(50), "{r:#}");
    assert!(c["reads"].as_u64() > Some(50), "{r:#}");
    assert!(c["cas_true"].as_u64() > Some(0), "{r:#}");
    let faults = r["faults"].as_array().expect("faults");
    assert!(
        faults.iter().filter(|f| !f["fault"].is_null()).count() >= 2,
        "{r:#}"
    );
    let plot = r["dir"].as_str().expect("dir").to_string() + "/timeline.png";
    assert!(
        std::fs::read(&plot)
            .expect("timeline plot")
            .starts_with(b"\x89PNG")
    );
}

#[test]
fn consistent_reads_writes_and_cas_stay_linearizable_through_kills_and_pauses() {
    let run = Run::new();
    let (ok, r) = jepsen(&run, "7", "consistent", "25s", &[]);
    assert_linearizable_under_faults(ok, &r);
}

#[test]
fn default_reads_never_go_back_in_time_through_kills_and_pauses() {
    let run = Run::new();
    let (ok, r) = jepsen(&run, "8", "default", "25s", &[]);
    assert_linearizable_under_faults(ok, &r);
}

/// Consul users write through their local client agent: a write it forwarded to a server
/// that died before answering is retried on another server with the same request id, and
/// still takes effect once.
#[test]
fn writes_through_client_agents_take_effect_once_through_server_kills() {
    let run = Run::new();
    let (ok, r) = jepsen(&run, "10", "consistent", "25s", &["--agents", "2"]);
    assert_linearizable_under_faults(ok, &r);
}

#[test]
fn network_faults_without_the_testbed_are_refused() {
    let run = Run::new();
    let out = run.testbed(&["jepsen", "--nemesis", "partition", "--time", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs --testbed"), "{err}");
}

/// The checker is not a rubber stamp: `?stale` reads, which any server answers from its own
/// (lagging) state, are found not linearizable against the same servers.
#[test]
fn stale_reads_are_caught_by_the_checker() {
    let run = Run::new();
    let (ok, r) = jepsen(&run, "9", "stale", "8s", &[]);
    assert!(!ok, "{r:#}");
    let verdicts = r["verdicts"].as_object().expect("verdicts");
    let caught = verdicts
        .values()
        .filter(|v| v["verdict"] == "not_linearizable")
        .count();
    assert!(caught >= 1, "{r:#}");
    let history = std::fs::read_to_string(
        run.path()
            .join("jepsen")
            .join("seed-9")
            .join("history.jsonl"),
    )
    .expect("a failed run keeps its history");
    assert!(history.lines().count() > 100);
}
