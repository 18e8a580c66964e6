//! The rule language and decisions against `reference/acl.md` §4 and the rule items of its
//! §7 checklist (numbers in the test names).

use crate::{
    Authorizer, Level, Need, Resource, Root, Rules, RulesError, global_management_rules,
    global_read_only_rules, node_identity, service_identity,
};

fn authz(texts: &[&str], root: Root) -> Authorizer {
    let mut rules = Rules::default();
    for t in texts {
        let parsed = Rules::parse(t);
        assert!(parsed.is_ok(), "{t}: {parsed:?}");
        rules.merge(&parsed.unwrap_or_default());
    }
    Authorizer::new(rules, root, Some("acc-1".into()))
}

const KEY: Resource = Resource::Key;

#[test]
fn hcl_and_json_parse_to_the_same_rules() {
    let hcl = r#"
        key_prefix "app/" { policy = "write" }
        key "app/secret" { policy = "deny" }
        service_prefix "" { policy = "read" }
        service "web" {
          policy = "write"
          intentions = "read"
        }
        operator = "read"
    "#;
    let json = r#"{
        "key_prefix": {"app/": {"policy": "write"}},
        "key": [{"app/secret": {"policy": "deny"}}],
        "service_prefix": {"": {"policy": "read"}},
        "service": {"web": {"policy": "write", "intentions": "read"}},
        "operator": "read"
    }"#;
    let (a, b) = (Rules::parse(hcl), Rules::parse(json));
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    assert_eq!(a, b);
}

#[test]
fn the_issue_token_can_do_exactly_that() {
    let a = authz(
        &[r#"key_prefix "app/" { policy = "write" }
             service_prefix "" { policy = "read" }"#],
        Root::Deny,
    );
    assert!(a.allowed(KEY, "app/x", Need::Write));
    assert!(a.allowed(KEY, "app/", Need::Read));
    assert!(!a.allowed(KEY, "other", Need::Read));
    assert!(!a.allowed(KEY, "ap", Need::Read));
    assert!(a.allowed(Resource::Service, "anything", Need::Read));
    assert!(!a.allowed(Resource::Service, "web", Need::Write));
    assert!(!a.allowed(Resource::Node, "n1", Need::Read));
    assert!(!a.allowed(Resource::Operator, "", Need::Read));
}

#[test]
fn item12_exact_beats_prefix_but_covers_only_its_name() {
    let a = authz(
        &[r#"key_prefix "" { policy = "deny" }
             key "foo" { policy = "read" }"#],
        Root::Allow,
    );
    assert!(a.allowed(KEY, "foo", Need::Read));
    assert!(!a.allowed(KEY, "foo/bar", Need::Read));
    assert!(!a.allowed(KEY, "foo", Need::Write));
}

#[test]
fn item13_longest_prefix_wins_whatever_its_level() {
    let a = authz(
        &[r#"key_prefix "" { policy = "deny" }
             key_prefix "a/" { policy = "write" }
             key_prefix "a/b/" { policy = "read" }"#],
        Root::Allow,
    );
    assert!(a.allowed(KEY, "a/b", Need::Write));
    assert!(!a.allowed(KEY, "a/b/c", Need::Write));
    assert!(a.allowed(KEY, "a/b/c", Need::Read));
    assert!(!a.allowed(KEY, "b", Need::Read));
}

#[test]
fn item14_15_merge_per_identical_rule_deny_wins() {
    let a = authz(
        &[
            r#"service_prefix "" { policy = "write" }"#,
            r#"service_prefix "" { policy = "deny" }"#,
        ],
        Root::Allow,
    );
    assert!(!a.allowed(Resource::Service, "web", Need::Write));
    assert!(!a.allowed(Resource::Service, "web", Need::Read));
    let b = authz(
        &[
            r#"key_prefix "" { policy = "deny" }"#,
            r#"key "x" { policy = "read" }"#,
        ],
        Root::Deny,
    );
    assert!(b.allowed(KEY, "x", Need::Read));
    assert!(!b.allowed(KEY, "y", Need::Read));
    let c = authz(
        &[
            r#"key "x" { policy = "read" }"#,
            r#"key "x" { policy = "write" }"#,
        ],
        Root::Deny,
    );
    assert!(c.allowed(KEY, "x", Need::Write), "write > read when merged");
}

#[test]
fn item16_exact_service_rule_does_not_cover_its_sidecar_but_an_identity_does() {
    let a = authz(&[r#"service "web" { policy = "write" }"#], Root::Deny);
    assert!(!a.allowed(Resource::Service, "web-sidecar-proxy", Need::Write));
    let id = Authorizer::new(service_identity("web"), Root::Deny, None);
    assert!(id.allowed(Resource::Service, "web", Need::Write));
    assert!(id.allowed(Resource::Service, "web-sidecar-proxy", Need::Write));
    assert!(id.allowed(Resource::Service, "db", Need::Read));
    assert!(!id.allowed(Resource::Service, "db", Need::Write));
    assert!(id.allowed(Resource::Node, "n1", Need::Read));
    let node = Authorizer::new(node_identity("n1"), Root::Deny, None);
    assert!(node.allowed(Resource::Node, "n1", Need::Write));
    assert!(!node.allowed(Resource::Node, "n2", Need::Read));
    assert!(node.allowed(Resource::Service, "web", Need::Read));
}

#[test]
fn levels_against_needs_as_consul_enforces_them() {
    for (level, read, list, write) in [
        ("write", true, true, true),
        ("list", true, true, false),
        ("read", true, false, false),
        ("deny", false, false, false),
    ] {
        let a = authz(
            &[&format!("key_prefix \"\" {{ policy = \"{level}\" }}")],
            Root::Allow,
        );
        assert_eq!(a.allowed(KEY, "k", Need::Read), read, "{level} read");
        assert_eq!(a.allowed(KEY, "k", Need::List), list, "{level} list");
        assert_eq!(a.allowed(KEY, "k", Need::Write), write, "{level} write");
    }
}

#[test]
fn item19_recursive_delete_needs_write_on_everything_below() {
    let a = authz(
        &[r#"key_prefix "a" { policy = "write" }
             key "a/secret" { policy = "read" }"#],
        Root::Allow,
    );
    assert!(a.key_write_prefix("a").is_err());
    assert!(a.key_write_prefix("a/other/").is_ok());
    let b = authz(&[r#"key_prefix "a/" { policy = "read" }"#], Root::Allow);
    assert!(b.key_write_prefix("a/x/").is_err());
    // No rule at all: the root decides.
    let c = authz(&[], Root::Allow);
    assert!(c.key_write_prefix("z/").is_ok());
    assert!(authz(&[], Root::Deny).key_write_prefix("z/").is_err());
}

#[test]
fn the_roots_allow_never_grants_acl_rights() {
    let a = authz(&[], Root::Allow);
    assert!(a.allowed(KEY, "k", Need::Write));
    assert!(a.allowed(Resource::Operator, "", Need::Write));
    assert!(!a.allowed(Resource::Acl, "", Need::Read));
    assert!(!a.is_manager());
    let d = authz(&[], Root::Deny);
    assert!(!d.allowed(KEY, "k", Need::Read));
    assert!(Authorizer::manage().is_manager());
    assert!(Authorizer::manage().allowed(Resource::Acl, "", Need::Write));
}

#[test]
fn mesh_and_peering_fall_back_to_operator() {
    let a = authz(&["operator = \"write\""], Root::Deny);
    assert!(a.allowed(Resource::Mesh, "", Need::Write));
    assert!(a.allowed(Resource::Peering, "", Need::Read));
    let b = authz(&["operator = \"write\"\nmesh = \"read\""], Root::Deny);
    assert!(!b.allowed(Resource::Mesh, "", Need::Write));
    assert!(b.allowed(Resource::Peering, "", Need::Write));
}

#[test]
fn global_management_grants_everything_and_read_only_reads() {
    let m = authz(&[&global_management_rules()], Root::Deny);
    assert!(m.is_manager());
    for r in [
        Resource::Agent,
        Resource::Event,
        KEY,
        Resource::Node,
        Resource::Query,
        Resource::Service,
        Resource::Session,
    ] {
        assert!(m.allowed(r, "x", Need::Write), "{r:?}");
    }
    let ro = authz(&[&global_read_only_rules()], Root::Deny);
    assert!(ro.allowed(Resource::Acl, "", Need::Read));
    assert!(!ro.allowed(Resource::Acl, "", Need::Write));
    assert!(ro.allowed(KEY, "x", Need::Read));
    assert!(!ro.allowed(KEY, "x", Need::Write));
    assert!(!ro.allowed(KEY, "x", Need::List));
}

#[test]
fn refusal_texts_are_consuls() {
    let a = authz(&[], Root::Deny);
    let e = a.check(KEY, "foo", Need::Read).err().map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some(
            "Permission denied: token with AccessorID 'acc-1' lacks permission 'key:read' on \"foo\""
        )
    );
    let anon = Authorizer::new(Rules::default(), Root::Deny, None);
    let e = anon
        .check(KEY, "foo", Need::Read)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some(
            "Permission denied: anonymous token lacks permission 'key:read' on \"foo\". The \
             anonymous token is used implicitly when a request does not specify a token."
        )
    );
    let e = anon
        .check(Resource::Operator, "", Need::Write)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some(
            "Permission denied: anonymous token lacks permission 'operator:write'. The \
             anonymous token is used implicitly when a request does not specify a token."
        )
    );
}

#[test]
fn read_all_needs_a_catch_all_and_no_deny() {
    let a = authz(&[r#"service_prefix "" { policy = "read" }"#], Root::Deny);
    assert!(a.read_all(Resource::Service));
    let b = authz(
        &[r#"service_prefix "" { policy = "read" }
             service "secret" { policy = "deny" }"#],
        Root::Deny,
    );
    assert!(!b.read_all(Resource::Service));
    assert!(
        !authz(&[r#"service "web" { policy = "read" }"#], Root::Allow).read_all(Resource::Service)
    );
    assert!(authz(&[], Root::Allow).read_all(Resource::Node));
}

#[test]
fn bad_rules_are_refused_with_consuls_words() {
    let cases: &[(&str, &str)] = &[
        ("key \"a\" { }", "Invalid key policy"),
        ("key \"a\" { policy = \"admin\" }", "Invalid key policy"),
        (
            "service \"a\" { policy = \"list\" }",
            "Invalid service policy",
        ),
        (
            "node_prefix \"\" {\n policy = \"read\"\n intentions = \"read\"\n}",
            "Invalid node_prefix policy",
        ),
        ("operator = \"list\"", "Invalid operator policy"),
        (
            "namespace \"ns\" { policy = \"read\" }",
            "Invalid namespace policy",
        ),
        (
            "key_prefix { policy = \"read\" }",
            "Invalid key_prefix policy",
        ),
        ("key \"a\" { policy = ", "Failed to parse ACL rules: "),
        ("{\"key\": 3}", "Invalid key policy"),
        ("{\"key\": ", "Failed to parse ACL rules: "),
    ];
    for (text, want) in cases {
        let got = Rules::parse(text);
        let msg = got
            .as_ref()
            .err()
            .map(RulesError::to_string)
            .unwrap_or_default();
        assert!(msg.starts_with(want), "{text:?}: {got:?}");
    }
}

#[test]
fn unknown_resources_grant_nothing_and_empty_rules_are_valid() {
    let r = Rules::parse("kye_prefix \"\" { policy = \"write\" }");
    assert!(matches!(&r, Ok(r) if r.is_empty()), "{r:?}");
    assert!(matches!(Rules::parse(""), Ok(r) if r.is_empty()));
    assert!(matches!(Rules::parse("{}"), Ok(r) if r.is_empty()));
}

#[test]
fn hcl1_object_form_and_utf8_names() {
    let a = authz(&[r#"key = { "ä/" = { policy = "write" } }"#], Root::Deny);
    assert!(a.allowed(KEY, "ä/", Need::Write));
    let b = authz(&[r#"key_prefix "ä" { policy = "write" }"#], Root::Deny);
    assert!(b.allowed(KEY, "äb", Need::Write));
    assert!(!b.allowed(KEY, "a", Need::Read));
    assert_eq!(Level::List.to_string(), "list");
}

/// The lookup tries only the lengths of the prefixes written (merged from several policies
/// too), and the read-everything shortcut never hides a rule that denies one name.
#[test]
fn prefix_cuts_across_merged_policies_and_the_read_all_shortcut_keep_consuls_answers() {
    let a = authz(
        &[
            "service_prefix \"\" { policy = \"read\" }",
            "service_prefix \"ab\" { policy = \"deny\" }\nservice_prefix \"abcd\" { policy = \"write\" }",
            "service \"abc\" { policy = \"write\" }",
        ],
        Root::Deny,
    );
    let svc = Resource::Service;
    assert!(a.allowed(svc, "x", Need::Read) && !a.allowed(svc, "x", Need::Write));
    assert!(!a.allowed(svc, "ab", Need::Read) && !a.allowed(svc, "abz", Need::Read));
    assert!(
        a.allowed(svc, "abc", Need::Write),
        "exact beats the ab prefix"
    );
    assert!(
        a.allowed(svc, "abcde", Need::Write),
        "abcd is the longest prefix"
    );
    assert!(!a.allowed(svc, "abcX", Need::Read), "back to ab: denied");
    assert!(a.allowed(svc, "a", Need::Read) && a.allowed(svc, "", Need::Read));
    // A cut that falls inside a multi-byte character matches nothing and is skipped.
    assert!(!a.allowed(svc, "abcé", Need::Read));
    assert!(!a.read_all(svc), "the ab deny rules out reading everything");
    // Without the deny, every name reads without matching rules, and writes still do.
    let b = authz(&["service_prefix \"\" { policy = \"read\" }"], Root::Deny);
    assert!(b.read_all(svc) && b.allowed(svc, "anything", Need::Read));
    assert!(!b.allowed(svc, "anything", Need::Write));
    assert!(
        !b.allowed(Resource::Node, "n1", Need::Read),
        "other resources unaffected"
    );
}
