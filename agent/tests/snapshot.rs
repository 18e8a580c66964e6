//! `/v1/snapshot` and `meridian snapshot` against real agents: a snapshot saved on one
//! server of a three-server datacenter and restored through another puts every server
//! back to the snapshot's state, and the next leader keeps it; a damaged archive changes
//! nothing; the CLI saves, inspects and restores a file; with ACLs on, only `acl = "write"`
//! may save or restore (py-consul's `tests/api/test_snapshot.py`). Every wait has a deadline.

mod common;

use std::time::Duration;

use common::acl::*;
use common::cluster::{CONVERGE, Ports, agreed_leader, index_of, ports, server};
use common::{Agent, text, wait_until};
use serde_json::json;

fn on(servers: &[Option<Agent>], i: usize) -> &Agent {
    servers[i].as_ref().expect("running")
}

/// `GET /v1/snapshot` → (status, X-Consul-Index, body bytes).
fn save(a: &Agent, token: &str, query: &str) -> (u16, u64, Vec<u8>) {
    let mut req = reqwest::blocking::Client::new().get(format!("{}/v1/snapshot{query}", a.url));
    if !token.is_empty() {
        req = req.header("X-Consul-Token", token);
    }
    let r = req.send().expect("GET /v1/snapshot");
    let status = r.status().as_u16();
    let index = r
        .headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    (status, index, r.bytes().expect("body").to_vec())
}

/// `PUT /v1/snapshot` with `archive` → (status, body).
fn restore(a: &Agent, token: &str, archive: Vec<u8>) -> (u16, String) {
    let mut req = reqwest::blocking::Client::new()
        .put(format!("{}/v1/snapshot", a.url))
        .body(archive);
    if !token.is_empty() {
        req = req.header("X-Consul-Token", token);
    }
    let r = req.send().expect("PUT /v1/snapshot");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

/// A key's raw value read from this server alone (`?stale`); `None` when absent.
fn stale_value(a: &Agent, key: &str) -> Option<String> {
    let (code, _, body) = a.get(&format!("/v1/kv/{key}?raw&stale"));
    (code == 200).then_some(body)
}

fn put_kv(a: &Agent, key: &str, value: &str) {
    let (code, body) = a.put(&format!("/v1/kv/{key}"), value.to_string());
    assert_eq!((code, body.as_str()), (200, "true"), "PUT {key}");
}

/// Waits until every running server shows exactly `want` for these keys.
fn wait_all_show(servers: &[Option<Agent>], want: &[(&str, Option<&str>)], what: &str) {
    wait_until(CONVERGE, what, || {
        servers
            .iter()
            .flatten()
            .all(|s| want.iter().all(|(k, v)| stale_value(s, k).as_deref() == *v))
    });
}

/// Scenario: three servers; `a`, `b` written and saved through the leader; then `a`
/// changed, `b` deleted, `c` added; the snapshot restored through a follower. Every server
/// reads the snapshot's values on its own (`?stale`); a client agent forwards save and
/// restore to a server. A truncated archive is refused with
/// 400 and changes nothing. After the leader stops, the new leader still serves the
/// restored state, and the old leader restarts from its disk with it.
#[test]
fn a_restore_reaches_every_server_and_survives_a_new_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p: Vec<Ports> = (0..3).map(|_| ports()).collect();
    let seed = format!("127.0.0.1:{}", p[0].serf);
    let s1 = server(dir.path(), "s1", &p[0], None);
    let s2 = server(dir.path(), "s2", &p[1], Some(&seed));
    let s3 = server(dir.path(), "s3", &p[2], Some(&seed));
    let mut servers = vec![Some(s1), Some(s2), Some(s3)];
    let lead = index_of(&p, &agreed_leader(&servers, "a leader", |_| true));
    let follower = (lead + 1) % 3;

    put_kv(on(&servers, lead), "a", "1");
    put_kv(on(&servers, lead), "b", "1");
    let (code, index, archive) = save(on(&servers, lead), "", "");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&archive));
    assert_eq!(&archive[..2], &[0x1f, 0x8b], "a gzip archive");
    assert!(index > 1, "X-Consul-Index names the snapshot's index");
    // A stale save from a follower works too.
    let (code, _, stale) = save(on(&servers, follower), "", "?stale");
    assert_eq!(code, 200);
    assert_eq!(&stale[..2], &[0x1f, 0x8b]);

    put_kv(on(&servers, lead), "a", "2");
    assert_eq!(on(&servers, lead).delete("/v1/kv/b").0, 200);
    put_kv(on(&servers, lead), "c", "new");
    wait_all_show(
        &servers,
        &[("a", Some("2")), ("b", None), ("c", Some("new"))],
        "the changes on every server",
    );

    let (code, body) = restore(on(&servers, follower), "", archive.clone());
    assert_eq!(
        (code, body.as_str()),
        (200, ""),
        "restore through a follower"
    );
    let restored = [("a", Some("1")), ("b", Some("1")), ("c", None)];
    wait_all_show(&servers, &restored, "the snapshot's values on every server");

    // A client agent forwards both to a server.
    let client = Agent::client_of(&dir.path().join("c1"), "c1", &seed, &[]);
    wait_until(CONVERGE, "the client reaching a server", || {
        client.get("/v1/kv/a?raw").2 == "1"
    });
    let (code, _, via_client) = save(&client, "", "");
    assert_eq!(code, 200);
    assert_eq!(&via_client[..2], &[0x1f, 0x8b]);
    assert_eq!(restore(&client, "", via_client), (200, String::new()));
    wait_all_show(
        &servers,
        &restored,
        "the same values after the client's restore",
    );

    // A damaged archive is refused before anything changes.
    put_kv(on(&servers, lead), "d", "after");
    let (code, body) = restore(
        on(&servers, lead),
        "",
        archive[..archive.len() / 2].to_vec(),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.starts_with("failed to restore snapshot: "), "{body}");
    let (code, body) = restore(on(&servers, lead), "", b"not an archive".to_vec());
    assert_eq!(code, 400, "{body}");
    wait_all_show(
        &servers,
        &[("a", Some("1")), ("b", Some("1")), ("d", Some("after"))],
        "nothing changed by the damaged archives",
    );

    // The next leader has the restore in its log: the old values do not come back.
    let old = servers[lead].take().expect("leader running");
    old.terminate();
    let old_addr = format!(":{}", p[lead].server);
    agreed_leader(&servers, "a new leader", |l| !l.ends_with(&old_addr));
    let left: Vec<&Agent> = servers.iter().flatten().collect();
    for s in &left {
        assert_eq!(s.get("/v1/kv/a?raw").2, "1");
        assert_eq!(s.get("/v1/kv/c").0, 404);
    }
    // And the datacenter still takes writes after it.
    put_kv(left[0], "e", "later");
    // The stopped server comes back from its own disk (state.db holds the restore: the
    // deleted `c` stays deleted) and catches up.
    let names = ["s1", "s2", "s3"];
    servers[lead] = Some(server(dir.path(), names[lead], &p[lead], Some(&seed)));
    wait_all_show(
        &servers,
        &[("a", Some("1")), ("c", None), ("e", Some("later"))],
        "the restarted server with the restored state",
    );
}

/// Scenario: `meridian snapshot save` writes a verified file and says its index; `inspect`
/// prints Consul's ID/Size/Index/Term/Version block for it; `restore` puts a changed key back
/// and wakes a blocking read of it.
#[test]
fn the_cli_saves_inspects_and_restores_a_file() {
    let a = Agent::dev();
    a.wait_for_leader(Duration::from_secs(20));
    put_kv(&a, "app/config", "v1");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup.snap");
    let file_s = file.to_string_lossy().to_string();

    let out = a.cli(&["snapshot", "save", &file_s]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    let index: u64 = said
        .trim()
        .strip_prefix("Saved and verified snapshot to index ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output: {said}"));
    assert!(!dir.path().join("backup.snap.part").exists());

    let out = a.cli(&["snapshot", "inspect", &file_s]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    for label in [" ID ", " Size ", " Term ", " Version "] {
        assert!(shown.contains(label), "{label} missing: {shown}");
    }
    assert!(
        shown
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Index", &index.to_string()]),
        "{shown}"
    );
    assert!(shown.contains(" Version      1"), "{shown}");
    assert!(shown.contains(" Kv "), "per-table counts: {shown}");

    put_kv(&a, "app/config", "v2");
    // A watcher of the key, blocked past its current index: the restore moves the key's
    // index back, so only the restore itself can wake it (Consul abandons the old state).
    let (_, h, _) = a.get("/v1/kv/app/config");
    let at: u64 = h["X-Consul-Index"]
        .to_str()
        .expect("index")
        .parse()
        .expect("u64");
    let url = format!("{}/v1/kv/app/config?raw&index={at}&wait=30s", a.url);
    let watcher = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let body = reqwest::blocking::get(url).and_then(|r| r.text());
        (started.elapsed(), body.unwrap_or_default())
    });
    let out = a.cli(&["snapshot", "restore", &file_s]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out).trim(), "Restored snapshot");
    assert_eq!(a.get("/v1/kv/app/config?raw").2, "v1");
    let (waited, body) = watcher.join().expect("watcher");
    assert_eq!(body, "v1");
    assert!(
        waited < Duration::from_secs(15),
        "woken by the restore, not the wait: {waited:?}"
    );

    // A file that is not a snapshot is refused by inspect and by the agent.
    let junk = dir.path().join("junk.snap");
    std::fs::write(&junk, b"junk").expect("write");
    let junk = junk.to_string_lossy().to_string();
    let out = a.cli(&["snapshot", "inspect", &junk]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("Error verifying snapshot"),
        "{}",
        text(&out)
    );
    let out = a.cli(&["snapshot", "restore", &junk]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("Error restoring snapshot"),
        "{}",
        text(&out)
    );
    assert_eq!(a.get("/v1/kv/app/config?raw").2, "v1");
}

/// Scenario (py-consul `test_snapshot`): with ACLs on and default deny, the management
/// token saves a gzip archive, a changed key is restored to the saved value; anonymous and
/// a KV-only token are refused with Consul's 403 texts, for both save and restore, and the
/// CLI's -token-file works.
#[test]
fn with_acls_only_acl_write_may_save_or_restore() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = acl_server(
        dir.path(),
        "snap1",
        &format!(
            "  default_policy = \"deny\"\n  tokens {{\n    initial_management = \"{MGMT}\"\n  }}"
        ),
    );
    wait_initialized(&a);
    ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/policy",
        Some(json!({"Name": "kv-all", "Rules": "key_prefix \"\" { policy = \"write\" }"})),
    );
    let kv_token = ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"Description": "kv", "Policies": [{"Name": "kv-all"}]})),
    );
    let kv_secret = kv_token["SecretID"].as_str().expect("secret").to_string();
    let kv_id = kv_token["AccessorID"]
        .as_str()
        .expect("accessor")
        .to_string();

    assert_eq!(
        with(&a, MGMT, "PUT", "/v1/kv/foo", Some(json!("bar"))).0,
        200
    );
    let (code, _, archive) = save(&a, MGMT, "");
    assert_eq!(code, 200);
    assert_eq!(&archive[..2], &[0x1f, 0x8b]);
    assert_eq!(
        with(&a, MGMT, "PUT", "/v1/kv/foo", Some(json!("bar2"))).0,
        200
    );

    let anon = "Permission denied: anonymous token lacks permission 'acl:write'. The anonymous \
                token is used implicitly when a request does not specify a token.";
    let kv_only =
        format!("Permission denied: token with AccessorID '{kv_id}' lacks permission 'acl:write'");
    let (code, _, body) = save(&a, "", "");
    assert_eq!((code, String::from_utf8_lossy(&body).as_ref()), (403, anon));
    let (code, _, body) = save(&a, &kv_secret, "");
    assert_eq!(
        (code, String::from_utf8_lossy(&body).as_ref()),
        (403, kv_only.as_str())
    );
    assert_eq!(restore(&a, "", archive.clone()), (403, anon.to_string()));
    assert_eq!(restore(&a, &kv_secret, archive.clone()), (403, kv_only));
    let foo = |a: &Agent| with(a, MGMT, "GET", "/v1/kv/foo?raw", None).1;
    assert_eq!(foo(&a), "\"bar2\"", "a refused restore changes nothing");

    assert_eq!(restore(&a, MGMT, archive), (200, String::new()));
    assert_eq!(foo(&a), "\"bar\"");
    // The management token came back with the snapshot: it still works.
    assert_eq!(with(&a, MGMT, "GET", "/v1/acl/token/self", None).0, 200);

    // The CLI with -token-file.
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, MGMT).expect("token file");
    let token_file = token_file.to_string_lossy().to_string();
    let snap = dir.path().join("acl.snap").to_string_lossy().to_string();
    let out = acl_cli(
        &a,
        &[],
        &["snapshot", "save", "-token-file", &token_file, &snap],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = acl_cli(&a, &[], &["snapshot", "save", &snap]);
    assert!(!out.status.success());
    assert!(text(&out).contains("403"), "{}", text(&out));
}
