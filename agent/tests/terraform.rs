//! Terraform 1.11's built-in `consul` state backend — a real client nobody here wrote —
//! against a real `meridian agent -dev`: init, apply, workspaces, a lock conflict reported
//! with its lock info, a state over 512 KiB stored in chunks, force-unlock after `kill -9`,
//! and server-side expiry of an abandoned lock session.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{Agent, wait_until};
use serde_json::Value;

fn terraform(dir: &Path, args: &[&str]) -> Output {
    Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .stdin(Stdio::null())
        .output()
        .expect("terraform must be on PATH (the README's test command checks for it)")
}

fn ok(out: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "terraform failed:\n{text}");
    text
}

fn write_config(dir: &Path, addr: &str, payload_bytes: usize) {
    let main = format!(
        r#"terraform {{
  backend "consul" {{
    address = "{addr}"
    scheme  = "http"
    path    = "tf/state"
    lock    = true
  }}
}}

resource "terraform_data" "payload" {{
  input = "{}"
}}
"#,
        "x".repeat(payload_bytes)
    );
    std::fs::write(dir.join("main.tf"), main).unwrap();
}

/// Starts `terraform apply` that holds the state lock while it waits at its approval prompt
/// (`-replace` guarantees there is a change to approve).
fn hold_lock(dir: &Path) -> Child {
    Command::new("terraform")
        .args([
            "apply",
            "-input=true",
            "-no-color",
            "-replace=terraform_data.payload",
        ])
        .current_dir(dir)
        .env("CHECKPOINT_DISABLE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until a `terraform plan` (which takes and releases the lock) succeeds.
fn lock_again_within(dir: &Path, timeout: Duration) {
    wait_until(timeout, "terraform to take the state lock again", || {
        terraform(
            dir,
            &["plan", "-input=false", "-no-color", "-lock-timeout=0s"],
        )
        .status
        .success()
    });
}

#[test]
fn terraform_consul_backend_round_trips_state_locks_and_recovers() {
    let agent = Agent::dev();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &agent.addr, 16);

    ok(terraform(
        dir.path(),
        &["init", "-input=false", "-no-color"],
    ));
    ok(terraform(
        dir.path(),
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    ));
    let state = agent.get("/v1/kv/tf/state?raw").2;
    assert!(
        state.contains("terraform_data"),
        "state stored in KV: {state}"
    );
    assert!(
        agent.get("/v1/kv/tf/state/.lock").0 == 404
            || agent.get_json("/v1/kv/tf/state/.lock")[0]["Session"].is_null(),
        "lock released after apply"
    );

    // Workspaces live under `<path>-env:<name>` and are listed with ?keys&separator=/.
    ok(terraform(
        dir.path(),
        &["workspace", "new", "staging", "-no-color"],
    ));
    ok(terraform(
        dir.path(),
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    ));
    let list = ok(terraform(dir.path(), &["workspace", "list", "-no-color"]));
    assert!(
        list.contains("default") && list.contains("staging"),
        "{list}"
    );
    ok(terraform(
        dir.path(),
        &["workspace", "select", "default", "-no-color"],
    ));

    // A state over 512 KiB is split into 524288-byte chunks and reads back intact.
    write_config(dir.path(), &agent.addr, 700 * 1024);
    ok(terraform(
        dir.path(),
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    ));
    let head: Value =
        serde_json::from_str(&agent.get("/v1/kv/tf/state?raw").2).expect("chunk index JSON");
    assert!(
        head["chunks"].as_array().is_some_and(|c| c.len() >= 2),
        "{head}"
    );
    let plan = ok(terraform(
        dir.path(),
        &["plan", "-input=false", "-no-color", "-detailed-exitcode"],
    ));
    assert!(
        plan.contains("No changes"),
        "the chunked state must read back as applied:\n{plan}"
    );

    // A lock held by another terraform is reported with its lock info.
    let mut holder = hold_lock(dir.path());
    wait_until(
        Duration::from_secs(60),
        "the holder to take the lock",
        || agent.get("/v1/kv/tf/state/.lockinfo").0 == 200,
    );
    let info: Value = serde_json::from_str(&agent.get("/v1/kv/tf/state/.lockinfo?raw").2).unwrap();
    let lock_id = info["ID"].as_str().unwrap().to_string();
    let out = terraform(
        dir.path(),
        &["plan", "-input=false", "-no-color", "-lock-timeout=0s"],
    );
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(
        text.contains("Error acquiring the state lock") && text.contains(&lock_id),
        "{text}"
    );

    // kill -9 the holder: its session is never destroyed. force-unlock releases the lock.
    holder.kill().unwrap();
    let _ = holder.wait();
    let mut rest = String::new();
    let _ = holder
        .stderr
        .take()
        .map(|mut e| e.read_to_string(&mut rest));
    ok(terraform(
        dir.path(),
        &["force-unlock", "-force", "-no-color", &lock_id],
    ));
    assert_eq!(
        agent.get("/v1/kv/tf/state/.lockinfo").0,
        404,
        "force-unlock removes the lock info"
    );
    // Destroying the session starts its 5 s lock delay, as in Consul: until it passes,
    // terraform's lock attempt fails without lock info, then it succeeds.
    lock_again_within(dir.path(), Duration::from_secs(30));

    // Abandoned again, without force-unlock: the server expires the session (TTL 15 s,
    // invalidated within 2×TTL) and the lock frees itself.
    let mut holder = hold_lock(dir.path());
    wait_until(
        Duration::from_secs(60),
        "the holder to take the lock",
        || agent.get("/v1/kv/tf/state/.lockinfo").0 == 200,
    );
    let held = agent.get_json("/v1/kv/tf/state/.lock");
    let sid = held[0]["Session"]
        .as_str()
        .expect("lock held by a session")
        .to_string();
    holder.kill().unwrap();
    let _ = holder.wait();
    wait_until(
        Duration::from_secs(45),
        "the abandoned session to expire",
        || {
            agent
                .get_json(&format!("/v1/session/info/{sid}"))
                .as_array()
                .is_some_and(Vec::is_empty)
        },
    );
    let lock = agent.get_json("/v1/kv/tf/state/.lock");
    assert!(
        lock[0]["Session"].is_null(),
        "lock released by expiry: {lock}"
    );
    // After the 5 s lock delay terraform can lock again.
    lock_again_within(dir.path(), Duration::from_secs(30));
}
