//! ACLs across two datacenters on loopback joined by `meridian-gateway`s (#17, reference/acl.md
//! §6, checklist 35–38): dc1 is the primary, dc2 replicates its policies, roles and global
//! tokens; writes of global objects in dc2 land in dc1; a dc2 local token stays in dc2 and
//! is stripped on `?dc=dc1`; with dc1 gone, dc2 keeps authorizing from its replica (its
//! `down_policy = "deny"` unused). Without token replication, dc2 resolves tokens at dc1,
//! keeps a resolved one through the outage (extend-cache) and refuses local tokens. With
//! dc1 gone, `meridian operator federation promote-primary dc2` moves the ACL authority to
//! dc2; dc1, back, learns it and replicates from dc2.

mod common;

use std::path::Path;
use std::time::Duration;

use common::acl::{MGMT, ok, with};
use common::federation::{Gateway, two_datacenters_with, wait_federated};
use common::wait_until;
use serde_json::{Value, json};

/// An HCL file with ACLs on, dc1 primary, `acl_body` inside the `acl` block; its path.
fn acl_file(dir: &Path, name: &str, acl_body: &str) -> String {
    std::fs::create_dir_all(dir).expect("dir");
    let file = dir.join(name);
    let hcl = format!(
        "primary_datacenter = \"dc1\"\nacl {{\n  enabled = true\n  default_policy = \"deny\"\n{acl_body}\n}}\n"
    );
    std::fs::write(&file, hcl).expect("config");
    file.to_string_lossy().to_string()
}

fn primary_file(dir: &Path) -> String {
    acl_file(
        dir,
        "dc1.hcl",
        &format!("  tokens {{\n    initial_management = \"{MGMT}\"\n  }}"),
    )
}

fn create_policy(a: &common::Agent, name: &str, rules: &str) -> Value {
    ok(
        a,
        MGMT,
        "PUT",
        "/v1/acl/policy",
        Some(json!({ "Name": name, "Rules": rules })),
    )
}

fn create_token(a: &common::Agent, policy: &str, local: bool) -> (String, String) {
    let t = ok(
        a,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({ "Policies": [{ "Name": policy }], "Local": local })),
    );
    let s = |k: &str| t[k].as_str().expect(k).to_string();
    (s("AccessorID"), s("SecretID"))
}

#[test]
fn a_secondary_replicates_routes_global_writes_to_the_primary_and_survives_its_loss() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let dc1 = primary_file(dirs.path());
    // down_policy = deny: were it applied while dc1 is gone, every token would be denied.
    let dc2 = acl_file(
        dirs.path(),
        "dc2.hcl",
        &format!(
            "  down_policy = \"deny\"\n  enable_token_replication = true\n  tokens {{\n    replication = \"{MGMT}\"\n  }}"
        ),
    );
    let (s1, s2, g1, _g2) = two_datacenters_with(
        dirs.path(),
        [&["-config-file", &dc1], &["-config-file", &dc2]],
        [&[], &[]],
    );
    wait_federated(&s1);
    common::acl::wait_initialized(&s1);
    // The initial management token is a global token: it reaches dc2 by replication.
    wait_until(Duration::from_secs(20), "MGMT replicated to dc2", || {
        with(&s2, MGMT, "GET", "/v1/acl/token/self", None).0 == 200
    });

    // Checklist 38: a policy written in dc2 lands in dc1 and comes back by replication.
    let p = create_policy(
        &s2,
        "app-write",
        "key_prefix \"app/\" { policy = \"write\" }",
    );
    let id = p["ID"].as_str().expect("policy id");
    ok(&s1, MGMT, "GET", &format!("/v1/acl/policy/{id}"), None);
    wait_until(Duration::from_secs(10), "the policy replicated", || {
        with(&s2, MGMT, "GET", &format!("/v1/acl/policy/{id}"), None).0 == 200
    });
    // A global token made in dc2 lives in dc1 and works in dc2 once replicated.
    let (global_id, global) = create_token(&s2, "app-write", false);
    ok(
        &s1,
        MGMT,
        "GET",
        &format!("/v1/acl/token/{global_id}"),
        None,
    );
    wait_until(
        Duration::from_secs(10),
        "the global token works in dc2",
        || with(&s2, &global, "PUT", "/v1/kv/app/a", Some(json!("v"))).0 == 200,
    );
    let (code, body) = with(&s2, &global, "PUT", "/v1/kv/other", Some(json!("v")));
    assert_eq!(code, 403, "{body}");
    // A local token stays in dc2.
    let (local_id, local) = create_token(&s2, "app-write", true);
    // Not in dc1: Consul's "ACL not found" error for a missing token is a 403.
    let (code, body) = with(&s1, MGMT, "GET", &format!("/v1/acl/token/{local_id}"), None);
    assert_eq!(
        (code, body.trim()),
        (403, "Requested token does not exist: ACL not found"),
        "a local token of dc2 is not in dc1"
    );
    let (code, body) = with(&s2, &local, "PUT", "/v1/kv/app/b", Some(json!("v")));
    assert_eq!((code, body.trim()), (200, "true"));

    // Checklist 37: `?dc=dc1` carries a global token, which dc1 checks; a local one is
    // stripped, so dc1 runs the request as its anonymous token.
    let (code, body) = with(&s2, &global, "PUT", "/v1/kv/app/c?dc=dc1", Some(json!("v")));
    assert_eq!((code, body.trim()), (200, "true"));
    let (code, body) = with(&s2, &global, "PUT", "/v1/kv/other?dc=dc1", Some(json!("v")));
    assert_eq!(code, 403, "{body}");
    let (code, body) = with(&s2, &local, "GET", "/v1/kv/app/c?dc=dc1", None);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.starts_with(
            "Permission denied: anonymous token lacks permission 'key:read' on \"app/c\""
        ),
        "{body}"
    );

    // Replication status (Consul's fields).
    let r = ok(&s2, MGMT, "GET", "/v1/acl/replication", None);
    assert_eq!(r["Enabled"], true, "{r}");
    assert_eq!(r["Running"], true, "{r}");
    assert_eq!(r["SourceDatacenter"], "dc1", "{r}");
    assert_eq!(r["ReplicationType"], "tokens", "{r}");
    for k in [
        "ReplicatedIndex",
        "ReplicatedRoleIndex",
        "ReplicatedTokenIndex",
    ] {
        assert!(r[k].as_u64() > Some(0), "{k}: {r}");
    }
    let primary = ok(&s1, MGMT, "GET", "/v1/acl/replication", None);
    assert_eq!(primary["Enabled"], false, "{primary}");

    // Checklist 35: dc1 gone. dc2 keeps authorizing from its replica (down_policy unused),
    // and the status shows the failing rounds.
    s1.kill9();
    drop(g1);
    let (code, body) = with(&s2, &global, "PUT", "/v1/kv/app/d", Some(json!("v")));
    assert_eq!((code, body.trim()), (200, "true"));
    let (code, _) = with(&s2, &global, "PUT", "/v1/kv/other", Some(json!("v")));
    assert_eq!(code, 403);
    wait_until(
        Duration::from_secs(60),
        "LastError after LastSuccess",
        || {
            let r = ok(&s2, MGMT, "GET", "/v1/acl/replication", None);
            let t = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            !r["LastErrorMessage"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
                && t("LastError") > t("LastSuccess")
        },
    );
    let (code, _) = with(&s2, &global, "GET", "/v1/kv/app/d", None);
    assert_eq!(code, 200);
}

#[test]
fn without_token_replication_the_primary_resolves_and_a_cached_token_outlives_it() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let dc1 = primary_file(dirs.path());
    let dc2 = acl_file(
        dirs.path(),
        "dc2.hcl",
        &format!(
            "  down_policy = \"extend-cache\"\n  token_ttl = \"1s\"\n  tokens {{\n    replication = \"{MGMT}\"\n  }}"
        ),
    );
    let (s1, s2, g1, _g2) = two_datacenters_with(
        dirs.path(),
        [&["-config-file", &dc1], &["-config-file", &dc2]],
        [&[], &[]],
    );
    wait_federated(&s1);
    common::acl::wait_initialized(&s1);
    create_policy(
        &s1,
        "app-write",
        "key_prefix \"app/\" { policy = \"write\" }",
    );
    let (_, token) = create_token(&s1, "app-write", false);
    // Tokens are not copied here; dc2 resolves them at dc1.
    wait_until(Duration::from_secs(20), "the token works in dc2", || {
        with(&s2, &token, "PUT", "/v1/kv/app/a", Some(json!("v"))).0 == 200
    });
    let r = ok(&s2, MGMT, "GET", "/v1/acl/replication", None);
    assert_eq!(r["ReplicationType"], "policies", "{r}");
    // Checklist 38: no local tokens without token replication.
    let (code, body) = with(
        &s2,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({ "Policies": [{ "Name": "app-write" }], "Local": true })),
    );
    assert_eq!((code, body.trim()), (500, "Local tokens are disabled"));
    let unseen = "9d0c9e43-6a41-4f6b-8f7e-5a3c2b1d0e9f";

    // Checklist 36: dc1 gone. The cached token still works (extend-cache); a token dc2
    // never saw gets the default policy (deny), not `ACL not found`.
    s1.kill9();
    drop(g1);
    let (code, body) = with(&s2, &token, "PUT", "/v1/kv/app/b", Some(json!("v")));
    assert_eq!((code, body.trim()), (200, "true"));
    let (code, body) = with(&s2, &token, "PUT", "/v1/kv/other", Some(json!("v")));
    assert_eq!(code, 403, "{body}");
    let (code, body) = with(&s2, unseen, "GET", "/v1/kv/app/b", None);
    assert_eq!(code, 403, "{body}");
    assert!(!body.contains("ACL not found"), "{body}");
}

#[test]
fn promote_primary_moves_the_acl_authority_and_the_old_primary_follows_when_back() {
    let dirs = tempfile::tempdir().expect("tempdir");
    // The same replication token everywhere: whichever DC ends up secondary replicates.
    let replication = format!(
        "  enable_token_replication = true\n  tokens {{\n    initial_management = \"{MGMT}\"\n    replication = \"{MGMT}\"\n  }}"
    );
    let dc1 = acl_file(&dirs.path().join("c1"), "dc1.hcl", &replication);
    let dc2 = acl_file(&dirs.path().join("c2"), "dc2.hcl", &replication);
    let (s1, s2, g1, g2) = two_datacenters_with(
        dirs.path(),
        [&["-config-file", &dc1], &["-config-file", &dc2]],
        [&[], &[]],
    );
    wait_federated(&s1);
    common::acl::wait_initialized(&s1);
    create_policy(
        &s1,
        "app-write",
        "key_prefix \"app/\" { policy = \"write\" }",
    );
    let (_, global) = create_token(&s1, "app-write", false);
    wait_until(
        Duration::from_secs(20),
        "the global token works in dc2",
        || with(&s2, &global, "PUT", "/v1/kv/app/a", Some(json!("v"))).0 == 200,
    );
    assert_eq!(
        ok(&s2, MGMT, "GET", "/v1/agent/self", None)["Config"]["PrimaryDatacenter"],
        "dc1"
    );

    // dc1 is lost; dc2 takes the ACL authority through the real CLI.
    s1.kill9();
    drop(g1);
    let out = s2.cli(&[
        "operator",
        "federation",
        "promote-primary",
        "-token",
        MGMT,
        "dc2",
    ]);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("ACL primary datacenter is now \"dc2\" (epoch 1)"),
        "{text}"
    );
    let line = |p: &str| {
        text.lines()
            .find(|l| l.starts_with(p))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(line("Acknowledged:"), "Acknowledged: dc2", "{text}");
    assert!(line("Not reached: dc1").contains("dc1"), "{text}");
    // A bad name is a 400 naming the field.
    let (code, body) = with(
        &s2,
        MGMT,
        "PUT",
        "/v1/operator/federation/primary",
        Some(json!({ "Datacenter": "dc9" })),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.starts_with("Datacenter: unknown datacenter"), "{body}");

    // dc2 is the primary in effect: it says so, writes policies itself, and the token it
    // replicated from dc1 keeps working.
    let me = ok(&s2, MGMT, "GET", "/v1/agent/self", None);
    assert_eq!(me["Config"]["PrimaryDatacenter"], "dc2", "{me}");
    let r = ok(&s2, MGMT, "GET", "/v1/acl/replication", None);
    assert_eq!(
        (r["Enabled"].clone(), r["SourceDatacenter"].clone()),
        (json!(false), json!("dc2")),
        "{r}"
    );
    let p = create_policy(
        &s2,
        "made-in-dc2",
        "key_prefix \"new/\" { policy = \"read\" }",
    );
    let new_id = p["ID"].as_str().expect("policy id").to_string();
    let (code, body) = with(&s2, &global, "PUT", "/v1/kv/app/b", Some(json!("v")));
    assert_eq!((code, body.trim()), (200, "true"));

    // dc1 comes back (same data, new ports): it learns dc2 is the primary and replicates
    // the policy made there.
    let s1 = common::Agent::server_named(
        &dirs.path().join("s1"),
        "s1",
        &["-datacenter", "dc1", "-config-file", &dc1],
    );
    let _g1 = Gateway::start("dc1", &dirs.path().join("g1"), &s1.serf, Some(&g2.serf_wan));
    wait_until(Duration::from_secs(30), "dc1 follows dc2", || {
        with(&s1, MGMT, "GET", "/v1/agent/self", None)
            .1
            .contains("\"PrimaryDatacenter\":\"dc2\"")
    });
    wait_until(
        Duration::from_secs(20),
        "dc2's policy replicated to dc1",
        || with(&s1, MGMT, "GET", &format!("/v1/acl/policy/{new_id}"), None).0 == 200,
    );
    let r = ok(&s1, MGMT, "GET", "/v1/acl/replication", None);
    assert_eq!(r["SourceDatacenter"], "dc2", "{r}");
    assert_eq!(r["Enabled"], true, "{r}");
}
