//! `terraform/` end to end, as the README walks it: the example's module brings a small
//! testbed (1 DC × 3 servers + 1 client) up with `terraform apply`, its state stored in a
//! real `meridian agent -dev` through terraform's own `consul` backend; the outputs match
//! what `testbed status` reports, the DNS command from the outputs answers inside the DC, and
//! `terraform destroy` leaves nothing of the run (namespaces, processes, run dir) and an
//! empty state in Meridian's KV. Skipped, saying why, where namespaces cannot be made.
//! Also, without root: every `.tf` file under `terraform/` is formatted and validates.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{meridian, namespaces_of, processes_mentioning, skip_reason, testbed, wait_for};
use serde_json::Value;

/// The repository's `terraform/` folder.
fn terraform_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("terraform")
}

/// Runs terraform in one directory with its working data (`.terraform/`) outside the
/// source tree, no CLI configuration of the machine's, and no prompts.
struct Terraform {
    dir: PathBuf,
    data_dir: PathBuf,
    cli_config: PathBuf,
}

impl Terraform {
    fn new(dir: &Path, scratch: &Path) -> Terraform {
        std::fs::create_dir_all(scratch).expect("scratch dir");
        let cli_config = scratch.join("terraformrc");
        std::fs::write(&cli_config, "").expect("empty CLI config");
        Terraform {
            dir: dir.to_path_buf(),
            data_dir: scratch.join("data"),
            cli_config,
        }
    }

    /// `terraform ARGS`, its output echoed for the test log.
    fn run(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let out = Command::new("terraform")
            .args(args)
            .arg("-no-color")
            .current_dir(&self.dir)
            .env("TF_DATA_DIR", &self.data_dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_WORKSPACE")
            .stdin(Stdio::null())
            .output()
            .expect("terraform must be on PATH (scripts/test.sh checks for it)");
        eprintln!(
            "$ terraform {} (in {}; {:.2}s, {})\n{}{}",
            args.join(" "),
            self.dir.display(),
            started.elapsed().as_secs_f64(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `terraform ARGS`, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "terraform {} failed", args.join(" "));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A `meridian agent -dev` on free ports, killed on drop: the home of terraform's state.
struct DevAgent {
    child: Child,
    addr: String,
}

impl DevAgent {
    fn start(dir: &Path) -> DevAgent {
        let log = dir.join("dev-agent.log");
        let child = Command::new(meridian())
            .args(["agent", "-dev", "-log-json"])
            .args(["-http-port", "0", "-serf-lan-port", "0"])
            .args(["-server-port", "0", "-dns-port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("agent log"))
            .spawn()
            .expect("spawn meridian");
        let mut agent = DevAgent {
            child,
            addr: String::new(),
        };
        agent.addr = wait_for(Duration::from_secs(30), "the dev agent to run", || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.lines()
                .filter(|l| l.contains("Meridian agent running"))
                .find_map(|l| serde_json::from_str::<Value>(l).ok())
                .and_then(|v| v["fields"]["http"].as_str().map(str::to_string))
        });
        wait_for(Duration::from_secs(30), "the dev agent's leader", || {
            let (code, body) = agent.get("/v1/status/leader");
            (code == 200 && body.trim() != "\"\"").then_some(())
        });
        agent
    }

    fn get(&self, path: &str) -> (u16, String) {
        match reqwest::blocking::get(format!("http://{}{path}", self.addr)) {
            Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    /// The terraform state stored at `path` in the agent's KV.
    fn state(&self, path: &str) -> Value {
        let (code, body) = self.get(&format!("/v1/kv/{path}?raw"));
        assert_eq!(code, 200, "state at {path} in KV: {body}");
        serde_json::from_str(&body).expect("state JSON")
    }
}

impl Drop for DevAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Takes the testbed in `run_dir` down on drop, whatever happened (idempotent).
struct RunGuard {
    run_dir: PathBuf,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let _ = Command::new(testbed())
            .arg("--run-dir")
            .arg(&self.run_dir)
            .args(["down", "--purge"])
            .status();
    }
}

/// `testbed --run-dir DIR status --json`.
fn status_rows(run_dir: &Path) -> Vec<Value> {
    let out = Command::new(testbed())
        .arg("--run-dir")
        .arg(run_dir)
        .args(["status", "--json"])
        .output()
        .expect("testbed status");
    assert!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON: an array of rows")
}

#[test]
fn terraform_applies_a_testbed_with_state_in_meridian_and_destroys_it() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let started = Instant::now();
    let scratch = tempfile::Builder::new()
        .prefix("testbed-tf")
        .tempdir()
        .expect("tempdir");
    let agent = DevAgent::start(scratch.path());
    let run_dir = scratch.path().join("run");
    let _guard = RunGuard {
        run_dir: run_dir.clone(),
    };
    let state_path = format!("meridian/testbed/test-{}", std::process::id());
    let bin_dir = testbed().parent().expect("bin dir").to_path_buf();
    let _ = meridian();

    let tf = Terraform::new(
        &terraform_root().join("examples/three-dcs"),
        &scratch.path().join("tf"),
    );
    tf.ok(&[
        "init",
        "-input=false",
        &format!("-backend-config=address={}", agent.addr),
        &format!("-backend-config=path={state_path}"),
    ]);
    let vars = [
        "-var".to_string(),
        "datacenters={dc1={servers=3,clients=1}}".into(),
        "-var".into(),
        "wan_links=[]".into(),
        "-var".into(),
        format!("run_dir={}", run_dir.display()),
        "-var".into(),
        format!("bin_dir={}", bin_dir.display()),
    ];
    let with_vars = |cmd: &[&str]| -> Vec<String> {
        cmd.iter()
            .map(|s| s.to_string())
            .chain(vars.iter().cloned())
            .collect()
    };
    let apply = with_vars(&["apply", "-auto-approve", "-input=false"]);
    tf.ok(&apply.iter().map(String::as_str).collect::<Vec<_>>());

    // The state is in Meridian's KV, and it holds the testbed.
    let state = agent.state(&state_path);
    let resources = state["resources"].as_array().expect("resources");
    assert!(
        resources
            .iter()
            .any(|r| r["type"] == "terraform_data" && r["module"] == "module.testbed"),
        "the testbed resource in the stored state: {state:#}"
    );
    assert_eq!(
        state["outputs"]["run_dir"]["value"],
        run_dir.to_string_lossy().as_ref()
    );
    let run: Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("state.json")).expect("the testbed's state.json"),
    )
    .expect("state.json");
    let prefix = run["plan"]["prefix"].as_str().expect("prefix").to_string();

    // The outputs' addresses are the testbed's, and every agent sees the same leader.
    let outputs: Value = serde_json::from_str(&tf.ok(&["output", "-json"])).expect("outputs");
    let dc1 = &outputs["datacenters"]["value"]["dc1"];
    let rows = status_rows(&run_dir);
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for row in &rows {
        let host = row["host"].as_str().expect("host");
        let role = if row["role"] == "server" {
            "servers"
        } else {
            "clients"
        };
        assert_eq!(dc1[role][host], row["address"], "{host}: {dc1:#}");
        assert_eq!(row["alive"], "yes", "{row}");
        assert!(row["leader"].is_string(), "{row}");
        assert_eq!(row["leader"], rows[0]["leader"], "one leader: {rows:#?}");
    }

    // The DNS command the outputs print answers inside the DC with the three servers.
    let dig = outputs["commands"]["value"]["dig"]["dc1"]
        .as_str()
        .expect("commands.dig.dc1");
    let answer = Command::new("sh")
        .arg("-c")
        .arg(format!("{dig} +short"))
        .output()
        .expect("run the dig command");
    let text = String::from_utf8_lossy(&answer.stdout);
    assert!(answer.status.success(), "{dig}: {text}");
    let mut got: Vec<&str> = text.lines().map(str::trim).collect();
    got.sort_unstable();
    let mut want: Vec<&str> = dc1["servers"]
        .as_object()
        .expect("servers")
        .values()
        .filter_map(Value::as_str)
        .collect();
    want.sort_unstable();
    assert_eq!(got, want, "{dig}");

    // Destroy: nothing of the run is left, and the stored state has no resources.
    let destroy = with_vars(&["destroy", "-auto-approve", "-input=false"]);
    tf.ok(&destroy.iter().map(String::as_str).collect::<Vec<_>>());
    let left = namespaces_of(&prefix);
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let procs = processes_mentioning(&run_dir.to_string_lossy());
    assert!(procs.is_empty(), "processes left: {procs:?}");
    assert!(!run_dir.exists(), "destroy purges the run dir");
    let state = agent.state(&state_path);
    assert_eq!(state["resources"], serde_json::json!([]), "{state:#}");
    eprintln!("whole test: {:.2}s", started.elapsed().as_secs_f64());
}

/// Every directory of `.tf` files under `root`.
fn tf_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let mut has_tf = false;
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && !name.starts_with('.') {
                todo.push(path);
            } else if name.ends_with(".tf") {
                has_tf = true;
            }
        }
        if has_tf {
            dirs.push(dir);
        }
    }
    dirs.sort();
    dirs
}

/// `terraform fmt -check` of everything, `init -backend=false` + `validate` of every module
/// and example: offline, with no provider to download. No root needed.
#[test]
fn terraform_files_are_formatted_and_valid() {
    let root = terraform_root();
    let scratch = tempfile::tempdir().expect("tempdir");
    let fmt = Terraform::new(&root, &scratch.path().join("fmt"));
    fmt.ok(&["fmt", "-check", "-recursive", "-diff"]);
    let dirs = tf_dirs(&root);
    assert!(
        dirs.iter().any(|d| d.ends_with("modules/testbed"))
            && dirs.iter().any(|d| d.ends_with("examples/three-dcs")),
        "{dirs:?}"
    );
    for (i, dir) in dirs.iter().enumerate() {
        let tf = Terraform::new(dir, &scratch.path().join(i.to_string()));
        tf.ok(&["init", "-backend=false", "-input=false"]);
        let out = tf.ok(&["validate"]);
        assert!(out.contains("The configuration is valid"), "{out}");
    }
}
