//! The testbed end to end, as CI runs it: a small topology (1 DC × 3 servers + 1 client)
//! up, the `leader-failover` scenario, down, and nothing of the run left behind (no
//! namespace in `ip netns list`, no process). Skipped, saying why, where network
//! namespaces cannot be made (not root, no CAP_NET_ADMIN, `ip netns add` refused).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn testbed() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_testbed"))
}

/// `target/<profile>/meridian` beside the testbed binary, built first if missing
/// (`CARGO_BIN_EXE_*` does not cross crates).
fn meridian() -> PathBuf {
    let dir = testbed()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let bin = dir.join("meridian");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "meridian-agent", "--bin", "meridian"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building meridian failed");
    }
    bin
}

/// Why namespaces cannot be used here, if they cannot.
fn skip_reason() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(0);
    if caps & (1 << 12) == 0 {
        return Some("needs CAP_NET_ADMIN (run as root)".into());
    }
    let probe = format!("mtbciprobe{}", std::process::id());
    match Command::new("ip").args(["netns", "add", &probe]).output() {
        Err(e) => Some(format!("`ip` cannot run: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "`ip netns add` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).status();
            None
        }
    }
}

/// A run directory whose testbed is taken down on drop, whatever happened.
struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Run {
        Run {
            dir: tempfile::Builder::new()
                .prefix("testbed-ci")
                .tempdir()
                .expect("tempdir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `testbed --run-dir DIR ARGS`, its output echoed for the test log.
    fn testbed(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let out = Command::new(testbed())
            .arg("--run-dir")
            .arg(self.path())
            .args(args)
            .output()
            .expect("run testbed");
        eprintln!(
            "$ testbed {} ({:.2}s, {})\n{}{}",
            args.join(" "),
            started.elapsed().as_secs_f64(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.testbed(&["down"]);
    }
}

/// Live (non-zombie) processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if cmdline.contains(needle) && !zombie && pid != std::process::id() {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

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
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.path().join("state.json")).expect("state.json"),
    )
    .expect("state json");
    let prefix = state["plan"]["prefix"]
        .as_str()
        .expect("prefix")
        .to_string();

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

    let down = run.testbed(&["down"]);
    assert!(down.status.success(), "down failed");
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let left: Vec<String> = String::from_utf8_lossy(&netns.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("{prefix}-")))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let procs = processes_mentioning(&run.path().to_string_lossy());
    assert!(procs.is_empty(), "processes left: {procs:?}");
    let again = run.testbed(&["down"]);
    assert!(again.status.success(), "a second down is fine");
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
