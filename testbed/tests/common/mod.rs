//! What the end-to-end tests share: the binaries, the reason to skip where namespaces
//! cannot be made, a run directory whose testbed is taken down on drop, and the checks
//! that nothing of a run is left.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub(crate) fn testbed() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_testbed"))
}

/// `target/<profile>/meridian` beside the testbed binary, built first if missing
/// (`CARGO_BIN_EXE_*` does not cross crates).
pub(crate) fn meridian() -> PathBuf {
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

/// `target/<profile>/meridian-gateway` beside the testbed binary, built first if missing.
pub(crate) fn gateway() -> PathBuf {
    let dir = testbed()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let bin = dir.join("meridian-gateway");
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

/// Why namespaces cannot be used here, if they cannot.
pub(crate) fn skip_reason() -> Option<String> {
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
pub(crate) struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    pub(crate) fn new() -> Run {
        Run {
            dir: tempfile::Builder::new()
                .prefix("testbed-ci")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `testbed --run-dir DIR ARGS`, its output echoed for the test log.
    pub(crate) fn testbed(&self, args: &[&str]) -> Output {
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

/// The newest `results/<scenario>-*.json` report of the run.
pub(crate) fn newest_report(run: &Run, scenario: &str) -> serde_json::Value {
    let mut reports: Vec<PathBuf> = std::fs::read_dir(run.path().join("results"))
        .expect("results dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(&format!("{scenario}-")))
        })
        .collect();
    reports.sort();
    let last = reports.last().expect("a report");
    serde_json::from_str(&std::fs::read_to_string(last).expect("report")).expect("report json")
}

/// Live (non-zombie) processes whose command line mentions `needle`.
pub(crate) fn processes_mentioning(needle: &str) -> Vec<String> {
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

/// `testbed up topo` with this build's `meridian` (and `meridian-gateway` when the topology
/// has gateways), asserted to succeed; the run's namespace prefix.
pub(crate) fn up(run: &Run, topo: &Path, gateways: bool) -> String {
    let (meridian, topo) = (meridian(), topo.to_string_lossy().into_owned());
    let mut args = vec!["up".to_string(), topo, "--meridian".into()];
    args.push(meridian.to_string_lossy().into_owned());
    if gateways {
        args.push("--gateway".into());
        args.push(gateway().to_string_lossy().into_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let up = run.testbed(&args);
    assert!(up.status.success(), "up failed");
    prefix_of(run)
}

/// The run's namespace prefix, from its state file.
pub(crate) fn prefix_of(run: &Run) -> String {
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.path().join("state.json")).expect("state.json"),
    )
    .expect("state json");
    state["plan"]["prefix"]
        .as_str()
        .expect("prefix")
        .to_string()
}

/// `down`, then no namespace of `prefix` and no process of the run is left, and a second
/// `down` is fine.
pub(crate) fn down_leaves_nothing(run: &Run, prefix: &str) {
    let down = run.testbed(&["down"]);
    assert!(down.status.success(), "down failed");
    let left = namespaces_of(prefix);
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let procs = processes_mentioning(&run.path().to_string_lossy());
    assert!(procs.is_empty(), "processes left: {procs:?}");
    let again = run.testbed(&["down"]);
    assert!(again.status.success(), "a second down is fine");
}

/// Network namespaces whose name starts with `<prefix>-`.
pub(crate) fn namespaces_of(prefix: &str) -> Vec<String> {
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&netns.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("{prefix}-")))
        .map(str::to_string)
        .collect()
}

/// Polls `f` until it returns `Some`, or panics naming `what` after `timeout`.
pub(crate) fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
