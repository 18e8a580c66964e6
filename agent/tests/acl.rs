//! ACLs, phase 1 of #17 (reference/acl.md §7): bootstrap and its reset file, unknown-token
//! texts, token/policy/role CRUD with Consul's validation texts and JSON, redacted secrets
//! and token extraction order. Real `meridian` processes; `acl.enabled = true` needs
//! `MERIDIAN_ACL_PREVIEW=1` for now (see `common::acl`).

mod common;

use std::time::Duration;

use common::acl::*;
use common::{Agent, wait_until};
use serde_json::json;

/// §7.1: with ACLs off the ACL API answers 401 and data needs no token.
#[test]
fn acls_off_answer_401_and_data_needs_no_token() {
    let a = Agent::dev();
    let (s, h, body) = a.get("/v1/acl/tokens");
    assert_eq!((s, body.as_str()), (401, "ACL support disabled"));
    assert_eq!(h["X-Consul-Default-ACL-Policy"], "allow");
    assert_eq!(a.put("/v1/kv/x", "1").0, 200);
    assert_eq!(a.get("/v1/kv/x").0, 200);
}

/// Without `MERIDIAN_ACL_PREVIEW=1` an agent asked to enforce ACLs refuses to start.
#[test]
fn acls_on_without_the_preview_variable_refuse_to_start() {
    let out = std::process::Command::new(common::bin())
        .args([
            "agent",
            "-dev",
            "-http-port",
            "0",
            "-serf-lan-port",
            "0",
            "-hcl",
            "acl { enabled = true }",
        ])
        .env_remove("MERIDIAN_ACL_PREVIEW")
        .output()
        .expect("run meridian");
    assert!(!out.status.success());
    let text = common::text(&out);
    assert!(
        text.contains("acl.enabled") && text.contains("not enforced"),
        "{text}"
    );
}

/// §7.2–7.6: unknown tokens before and after bootstrap, one bootstrap, and the reset file
/// allowing exactly one more.
#[test]
fn bootstrap_happens_once_and_the_reset_file_allows_one_more() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = acl_server(dir.path(), "boot", "  default_policy = \"deny\"");
    // The agent says loudly that ACLs are a preview.
    a.wait_log(Duration::from_secs(10), |l| {
        l.contains("ACLs are on in preview") && l.contains("missing")
    });
    let unknown = "6d4c1b6e-2a1f-4c83-9d55-2f7e3c1b0a99";
    // Before bootstrap (the leader creates the anonymous token at once; wait for it).
    wait_until(Duration::from_secs(20), "the anonymous token", || {
        let (s, b) = with(&a, "", "GET", "/v1/acl/tokens", None);
        s == 403 && b.contains("anonymous token lacks permission 'acl:read'")
    });
    let (s, body) = with(&a, unknown, "GET", "/v1/acl/tokens", None);
    assert_eq!((s, body.as_str()), (403, BOOTSTRAP_404));
    let (s, body) = with(&a, "allow", "GET", "/v1/acl/tokens", None);
    assert_eq!((s, body.as_str()), (500, "Cannot resolve root ACL"));

    let first = ok(&a, "", "PUT", "/v1/acl/bootstrap", None);
    assert_eq!(first["Description"], "Bootstrap Token (Global Management)");
    assert_eq!(
        first["Policies"][0]["ID"],
        "00000000-0000-0000-0000-000000000001"
    );
    assert_eq!(first["Policies"][0]["Name"], "global-management");
    assert_eq!(first["ID"], first["SecretID"]);
    let root = first["SecretID"].as_str().expect("secret").to_string();
    let (s, _, _) = call(
        &a,
        "GET",
        "/v1/acl/tokens",
        &[("X-Consul-Token", &root)],
        None,
    );
    assert_eq!(s, 200);

    let (s, _, body) = call(&a, "PUT", "/v1/acl/bootstrap", &[], None);
    let prefix = "Permission denied: ACL bootstrap no longer allowed (reset index: ";
    assert_eq!(s, 403, "{body}");
    assert!(body.starts_with(prefix), "{body}");
    let index: u64 = body[prefix.len()..]
        .trim_end_matches(')')
        .parse()
        .expect("reset index");
    // After bootstrap an unknown token is plainly not found.
    let (s, body) = with(&a, unknown, "GET", "/v1/acl/tokens", None);
    assert_eq!((s, body.as_str()), (403, "ACL not found"));

    let reset = dir.path().join("data").join("acl-bootstrap-reset");
    std::fs::write(&reset, format!("{}\n", index + 1)).expect("reset file");
    let (s, _, body) = call(&a, "PUT", "/v1/acl/bootstrap", &[], None);
    assert_eq!(s, 500, "{body}");
    assert_eq!(
        body,
        format!(
            "Invalid bootstrap reset index (specified {}, reset index: {index})",
            index + 1
        )
    );
    std::fs::write(&reset, index.to_string()).expect("reset file");
    let second = ok(&a, "", "PUT", "/v1/acl/bootstrap", None);
    assert_ne!(second["SecretID"], first["SecretID"]);
    assert!(!reset.exists(), "the reset file is used up");
    let (s, _, body) = call(&a, "PUT", "/v1/acl/bootstrap", &[], None);
    assert_eq!(s, 403, "{body}");
    assert!(body.starts_with(prefix), "{body}");
    // Both management tokens work.
    for secret in [&root, second["SecretID"].as_str().expect("secret")] {
        assert_eq!(with(&a, secret, "GET", "/v1/acl/policies", None).0, 200);
    }
}

/// §7.10, 7.11, 7.21–7.28: CRUD of tokens, policies and roles with Consul's texts.
#[test]
fn tokens_policies_and_roles_answer_as_consul() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = acl_server(
        dir.path(),
        "crud",
        &format!("  tokens {{\n    initial_management = \"{MGMT}\"\n  }}"),
    );
    wait_initialized(&a);
    // §7.10: default allow still never grants acl rights to the anonymous token.
    let (s, h, body) = call(&a, "GET", "/v1/acl/tokens", &[], None);
    assert_eq!(s, 403);
    assert_eq!(h["X-Consul-Default-ACL-Policy"], "allow");
    assert_eq!(
        body,
        "Permission denied: anonymous token lacks permission 'acl:read'. The anonymous token \
         is used implicitly when a request does not specify a token."
    );

    // A reader policy and a token holding it, linked by name.
    let reader = ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/policy",
        Some(json!({"Name": "reader", "Rules": "acl = \"read\""})),
    );
    let reader_id = reader["ID"].as_str().expect("id").to_string();
    assert!(reader.get("Datacenters").is_none(), "omitempty: {reader}");
    assert!(reader["Hash"].as_str().is_some_and(|h| !h.is_empty()));
    let r = ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"Description": "r", "Policies": [{"Name": "reader"}]})),
    );
    let (r_id, r_secret) = (
        r["AccessorID"].as_str().expect("a").to_string(),
        r["SecretID"].as_str().expect("s").to_string(),
    );
    assert_eq!(r["Policies"], json!([{"ID": reader_id, "Name": "reader"}]));
    assert!(
        r.get("Roles").is_none() && r.get("ExpirationTime").is_none(),
        "{r}"
    );
    assert_eq!(r["Local"], false);
    assert!(r["CreateTime"].as_str().is_some_and(|t| t.contains('T')));

    // §7.21: acl:read sees <hidden> secrets, acl:write the real ones.
    let me = ok(&a, MGMT, "GET", "/v1/acl/token/self", None);
    let mgmt_id = me["AccessorID"].as_str().expect("accessor").to_string();
    assert_eq!(me["Description"], "Initial Management Token");
    let seen = ok(
        &a,
        &r_secret,
        "GET",
        &format!("/v1/acl/token/{mgmt_id}"),
        None,
    );
    assert_eq!(seen["SecretID"], "<hidden>");
    assert_eq!(
        ok(&a, MGMT, "GET", &format!("/v1/acl/token/{mgmt_id}"), None)["SecretID"],
        MGMT
    );
    // A reader cannot write.
    let (s, body) = with(
        &a,
        &r_secret,
        "PUT",
        "/v1/acl/policy",
        Some(json!({"Name": "x"})),
    );
    assert_eq!(s, 403);
    assert_eq!(
        body,
        format!("Permission denied: token with AccessorID '{r_id}' lacks permission 'acl:write'")
    );

    // §7.11: ?token= beats the header; a bearer token alone is used.
    let path = format!("/v1/acl/token/{mgmt_id}?token={r_secret}");
    let (_, _, body) = call(&a, "GET", &path, &[("X-Consul-Token", MGMT)], None);
    assert!(body.contains("<hidden>"), "{body}");
    let (_, _, body) = call(
        &a,
        "GET",
        &format!("/v1/acl/token/{mgmt_id}"),
        &[("Authorization", &format!("bearer {MGMT}"))],
        None,
    );
    assert!(body.contains(MGMT), "{body}");

    // Lists: sorted stubs, policy filter, policy stubs without Rules.
    let tokens = ok(
        &a,
        MGMT,
        "GET",
        &format!("/v1/acl/tokens?policy={reader_id}"),
        None,
    );
    assert_eq!(tokens.as_array().map(Vec::len), Some(1), "{tokens}");
    assert_eq!(tokens[0]["AccessorID"], r_id.as_str());
    let all = ok(&a, MGMT, "GET", "/v1/acl/tokens", None);
    let ids: Vec<&str> = all
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["AccessorID"].as_str())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]) && ids.len() == 3,
        "{ids:?}"
    );
    let policies = ok(&a, MGMT, "GET", "/v1/acl/policies", None);
    let stub = policies
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["ID"] == reader_id.as_str())
        .expect("stub");
    assert!(
        stub.get("Rules").is_none() && stub["Datacenters"].is_null(),
        "{stub}"
    );
    let by_name = ok(
        &a,
        MGMT,
        "GET",
        "/v1/acl/policy/name/builtin%2Fglobal-read-only",
        None,
    );
    assert_eq!(by_name["ID"], "00000000-0000-0000-0000-000000000002");

    // §7.22: unknown accessors. A token read answers Consul's "ACL not found" error as 403
    // (what py-consul's suite, run against Consul 1.20-1.22, expects), a policy read 404.
    let ghost = "2b7e1516-28ae-4d2a-abf7-158809cf4f3c";
    assert_eq!(
        with(&a, MGMT, "GET", &format!("/v1/acl/token/{ghost}"), None),
        (403, "Requested token does not exist: ACL not found".into())
    );
    assert_eq!(
        with(&a, MGMT, "DELETE", &format!("/v1/acl/token/{ghost}"), None),
        (404, "Cannot find token to delete".into())
    );
    assert_eq!(
        with(&a, MGMT, "GET", &format!("/v1/acl/policy/{ghost}"), None),
        (404, "Requested policy does not exist: ACL not found".into())
    );
    assert_eq!(
        with(&a, ghost, "GET", "/v1/acl/token/self", None),
        (404, "Supplied token does not exist".into())
    );

    // §7.23: the anonymous token and one's own token cannot be deleted.
    let anon = "00000000-0000-0000-0000-000000000002";
    assert_eq!(
        with(&a, MGMT, "DELETE", &format!("/v1/acl/token/{anon}"), None),
        (
            500,
            "Delete operation not permitted on the anonymous token".into()
        )
    );
    assert_eq!(
        with(
            &a,
            MGMT,
            "DELETE",
            &format!("/v1/acl/token/{mgmt_id}"),
            None
        ),
        (
            500,
            "Deletion of the request's authorization token is not permitted".into()
        )
    );

    // §7.24: global-management keeps its rules; a rename is fine.
    let gm_path = "/v1/acl/policy/00000000-0000-0000-0000-000000000001";
    let gm = ok(&a, MGMT, "GET", gm_path, None);
    let (s, body) = with(
        &a,
        MGMT,
        "PUT",
        gm_path,
        Some(json!({"Name": "global-management", "Rules": "acl = \"read\""})),
    );
    assert_eq!(
        (s, body.as_str()),
        (
            500,
            "Changing the Rules for the builtin global-management policy is not permitted"
        )
    );
    let renamed = ok(
        &a,
        MGMT,
        "PUT",
        gm_path,
        Some(json!({"Name": "root-policy", "Rules": gm["Rules"]})),
    );
    assert_eq!(renamed["Name"], "root-policy");
    assert_eq!(
        ok(&a, MGMT, "GET", "/v1/acl/token/self", None)["Policies"][0]["Name"],
        "root-policy"
    );

    // §7.25: policy names.
    for bad in ["builtin/x", "a b"] {
        let (s, body) = with(
            &a,
            MGMT,
            "PUT",
            "/v1/acl/policy",
            Some(json!({"Name": bad})),
        );
        assert_eq!(
            (s, body.as_str()),
            (
                500,
                "Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"
            ),
            "{bad}"
        );
    }
    let (s, body) = with(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/policy",
        Some(json!({"Name": "reader"})),
    );
    assert_eq!(
        (s, body.as_str()),
        (
            500,
            "Invalid Policy: A Policy with Name \"reader\" already exists"
        )
    );
    let (s, body) = with(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/policy",
        Some(json!({"Name": "y", "ID": ghost})),
    );
    assert_eq!(
        (s, body.as_str()),
        (400, "Cannot specify the ID when creating a new policy")
    );
    let (s, body) = with(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/policy",
        Some(json!({"Name": "bad-rules", "Rules": "key_prefix \"\" {"})),
    );
    assert_eq!(s, 500);
    assert!(body.starts_with("Failed to parse ACL rules"), "{body}");

    // §7.26: expiry bounds.
    let (s, body) = with(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"ExpirationTTL": "30s"})),
    );
    assert_eq!(
        (s, body.as_str()),
        (
            500,
            "ExpirationTime cannot be less than 1m0s in the future (was 30s)"
        )
    );
    let short = ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"ExpirationTTL": "5m"})),
    );
    assert!(
        short["ExpirationTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{short}"
    );

    // §7.27: a link by name shows the policy's current name.
    ok(
        &a,
        MGMT,
        "PUT",
        &format!("/v1/acl/policy/{reader_id}"),
        Some(json!({"Name": "acl-reader", "Rules": "acl = \"read\""})),
    );
    let again = ok(&a, MGMT, "GET", &format!("/v1/acl/token/{r_id}"), None);
    assert_eq!(again["Policies"][0]["Name"], "acl-reader");

    // §7.28: Local and SecretID cannot change; Description and links are replaced.
    let path = format!("/v1/acl/token/{r_id}");
    let (s, body) = with(&a, MGMT, "PUT", &path, Some(json!({"Local": true})));
    assert_eq!(
        (s, body),
        (500, format!("Cannot toggle local mode of {r_id}"))
    );
    let (s, body) = with(&a, MGMT, "PUT", &path, Some(json!({"SecretID": ghost})));
    assert_eq!(
        (s, body.as_str()),
        (500, "Changing a token's SecretID is not permitted")
    );
    let (s, body) = with(&a, MGMT, "PUT", &path, Some(json!({"AccessorID": ghost})));
    assert_eq!(
        (s, body.as_str()),
        (400, "Token Accessor ID in URL and payload do not match")
    );
    let updated = ok(
        &a,
        MGMT,
        "PUT",
        &path,
        Some(json!({"Description": "now bare"})),
    );
    assert_eq!(updated["SecretID"], r_secret.as_str());
    assert!(
        updated.get("Policies").is_none(),
        "links replaced: {updated}"
    );

    // Roles: created with a policy by name, listed by policy, linked from a token, deleted.
    let role = ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/role",
        Some(
            json!({"Name": "ops", "Policies": [{"Name": "acl-reader"}], "ServiceIdentities": [{"ServiceName": "web"}]}),
        ),
    );
    let role_id = role["ID"].as_str().expect("id").to_string();
    assert_eq!(
        role["Policies"],
        json!([{"ID": reader_id, "Name": "acl-reader"}])
    );
    assert_eq!(role["ServiceIdentities"], json!([{"ServiceName": "web"}]));
    let (s, body) = with(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/role",
        Some(json!({"Name": "ops"})),
    );
    assert_eq!(
        (s, body.as_str()),
        (500, "Invalid Role: A Role with Name \"ops\" already exists")
    );
    assert_eq!(
        ok(
            &a,
            MGMT,
            "GET",
            &format!("/v1/acl/roles?policy={reader_id}"),
            None
        )
        .as_array()
        .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        ok(&a, MGMT, "GET", "/v1/acl/role/name/ops", None)["ID"],
        role_id.as_str()
    );
    let holder = ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"Roles": [{"Name": "ops"}]})),
    );
    let holder_secret = holder["SecretID"].as_str().expect("secret");
    // The role's policy gives acl:read.
    assert_eq!(
        with(&a, holder_secret, "GET", "/v1/acl/policies", None).0,
        200
    );
    let cloned = ok(
        &a,
        MGMT,
        "PUT",
        &format!(
            "/v1/acl/token/{}/clone",
            holder["AccessorID"].as_str().expect("a")
        ),
        Some(json!({"Description": "copy"})),
    );
    assert_eq!(cloned["Roles"], holder["Roles"]);
    assert_ne!(cloned["AccessorID"], holder["AccessorID"]);
    assert_eq!(cloned["Description"], "copy");
    // ?expanded lists the role's policy and the identity's synthetic policy.
    let path = format!(
        "/v1/acl/token/{}?expanded",
        holder["AccessorID"].as_str().expect("a")
    );
    let x = ok(&a, MGMT, "GET", &path, None);
    let names: Vec<&str> = x["ExpandedPolicies"]
        .as_array()
        .expect("policies")
        .iter()
        .filter_map(|p| p["Name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{x}");
    assert_eq!(names[0], "acl-reader");
    assert!(names[1].starts_with("synthetic-policy-"), "{names:?}");
    assert_eq!(x["ExpandedRoles"][0]["Name"], "ops");
    assert_eq!(
        (
            x["AgentACLDefaultPolicy"].as_str(),
            x["ResolvedByAgent"].as_str()
        ),
        (Some("allow"), Some("crud"))
    );
    assert_eq!(
        ok(&a, MGMT, "DELETE", &format!("/v1/acl/role/{role_id}"), None),
        json!(true)
    );
    assert_eq!(
        with(&a, MGMT, "GET", &format!("/v1/acl/role/{role_id}"), None),
        (404, "Requested role does not exist: ACL not found".into())
    );
    assert_eq!(
        with(&a, MGMT, "DELETE", &format!("/v1/acl/role/{role_id}"), None),
        (404, "Cannot find role to delete".into())
    );
    // Without its role the token holds nothing: default allow still denies acl.
    assert_eq!(
        with(&a, holder_secret, "GET", "/v1/acl/policies", None).0,
        403
    );
    assert_eq!(
        ok(
            &a,
            MGMT,
            "DELETE",
            &format!("/v1/acl/policy/{reader_id}"),
            None
        ),
        json!(true)
    );
    let (s, body) = with(&a, MGMT, "GET", "/v1/acl/list", None);
    assert_eq!(
        (s, body.as_str()),
        (
            410,
            "Endpoint /v1/acl/list for the legacy ACL system was removed in Consul 1.11."
        )
    );
    let repl = ok(&a, "", "GET", "/v1/acl/replication", None);
    assert_eq!(repl["Enabled"], false);
}

/// §7.26: a token made with `ExpirationTTL: "1m"` (the minimum) works, then is
/// `ACL not found`, and is no longer read or listed.
#[test]
fn a_token_with_a_one_minute_ttl_expires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = acl_server(
        dir.path(),
        "ttl",
        &format!("  tokens {{\n    initial_management = \"{MGMT}\"\n  }}"),
    );
    wait_initialized(&a);
    ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/policy",
        Some(json!({"Name": "reader", "Rules": "acl = \"read\""})),
    );
    let t = ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"Policies": [{"Name": "reader"}], "ExpirationTTL": "1m"})),
    );
    let (id, secret) = (
        t["AccessorID"].as_str().expect("a"),
        t["SecretID"].as_str().expect("s"),
    );
    let created = humantime::parse_rfc3339_weak(t["CreateTime"].as_str().expect("create"));
    let expires = humantime::parse_rfc3339_weak(t["ExpirationTime"].as_str().expect("expiry"));
    let lifetime = expires
        .expect("expiry")
        .duration_since(created.expect("create"))
        .expect("after");
    assert_eq!(lifetime, Duration::from_secs(60));
    assert_eq!(with(&a, secret, "GET", "/v1/acl/policies", None).0, 200);
    wait_until(Duration::from_secs(90), "the token to expire", || {
        with(&a, secret, "GET", "/v1/acl/policies", None) == (403, "ACL not found".into())
    });
    let path = format!("/v1/acl/token/{id}");
    assert_eq!(with(&a, MGMT, "GET", &path, None).0, 404);
    let listed = ok(&a, MGMT, "GET", "/v1/acl/tokens", None);
    assert!(!listed.to_string().contains(id), "{listed}");
}
