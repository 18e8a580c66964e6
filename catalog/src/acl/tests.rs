//! ACL writes in the state machine, with the texts clients see (`reference/acl.md` §2.5, §7).

use meridian_acl::{ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_ID, Need, Resource, Root};

use super::*;
use crate::{Command, Request, Response, State};

const NOW: u64 = 1_700_000_000_000;

fn uuid(n: u32) -> String {
    format!("{n:08x}-1111-2222-3333-444455556666")
}

fn apply(s: &mut State, index: u64, w: AclWrite) -> Response {
    s.apply(index, &Request::new(NOW, Command::Acl(w)))
}

fn token(n: u32, policies: &[&str]) -> AclToken {
    AclToken {
        accessor_id: uuid(n),
        secret_id: uuid(n + 1000),
        policies: policies
            .iter()
            .map(|name| AclLink {
                id: String::new(),
                name: (*name).into(),
            })
            .collect(),
        ..AclToken::default()
    }
}

fn policy(n: u32, name: &str, rules: &str) -> AclPolicy {
    AclPolicy {
        id: uuid(n),
        name: name.into(),
        rules: rules.into(),
        ..AclPolicy::default()
    }
}

fn rejected(r: &Response) -> &str {
    match r {
        Response::Rejected(t) => t,
        _ => "",
    }
}

fn bootstrapped() -> State {
    let mut s = State::new();
    let r = apply(
        &mut s,
        5,
        AclWrite::Bootstrap {
            token: Box::new(token(1, &[])),
            reset_index: None,
        },
    );
    assert_eq!(r, Response::Ok);
    s
}

#[test]
fn bootstrap_once_then_only_with_the_reset_index() {
    let mut s = bootstrapped();
    assert_eq!(s.acl_bootstrap_index(), Some(5));
    let t = s.acl_token_by_secret(&uuid(1001), NOW);
    assert_eq!(
        t.map(|t| t.policies[0].id.as_str()),
        Some(GLOBAL_MANAGEMENT_ID)
    );
    assert!(s.acl_token_by_secret("anonymous", NOW).is_some());
    assert!(s.acl_policy_by_name("global-management").is_some());
    assert!(s.acl_policy_by_name("builtin/global-read-only").is_some());
    let again = AclWrite::Bootstrap {
        token: Box::new(token(2, &[])),
        reset_index: None,
    };
    let r = apply(&mut s, 6, again.clone());
    assert_eq!(
        rejected(&r),
        "Permission denied: ACL bootstrap no longer allowed (reset index: 5)"
    );
    let r = apply(
        &mut s,
        7,
        AclWrite::Bootstrap {
            token: Box::new(token(2, &[])),
            reset_index: Some(5),
        },
    );
    assert_eq!(r, Response::Ok);
    assert_eq!(s.acl_bootstrap_index(), Some(7));
    assert!(rejected(&apply(&mut s, 8, again)).contains("reset index: 7"));
}

#[test]
fn initial_management_is_created_once_and_counts_as_bootstrap() {
    let mut s = State::new();
    let init = AclWrite::Init {
        initial_management: Some(Box::new(token(9, &[]))),
    };
    assert_eq!(apply(&mut s, 3, init.clone()), Response::Ok);
    assert_eq!(s.acl_bootstrap_index(), Some(3));
    let t = s.acl_token_by_secret(&uuid(1009), NOW).cloned();
    assert_eq!(
        t.as_ref().map(|t| t.description.as_str()),
        Some("Initial Management Token")
    );
    assert_eq!(apply(&mut s, 4, init), Response::Ok);
    assert_eq!(
        s.acl_tokens().count(),
        2,
        "management + anonymous, no duplicate"
    );
    assert_eq!(s.acl_token(&uuid(9)).map(|t| t.modify_index), Some(3));
}

#[test]
fn tokens_link_policies_by_name_and_resolve_to_their_rules() {
    let mut s = bootstrapped();
    let r = apply(
        &mut s,
        10,
        AclWrite::PolicySet(Box::new(policy(
            50,
            "app",
            "key_prefix \"app/\" { policy = \"write\" }\nservice_prefix \"\" { policy = \"read\" }",
        ))),
    );
    assert_eq!(r, Response::Ok);
    let r = apply(
        &mut s,
        11,
        AclWrite::TokenSet {
            token: Box::new(token(2, &["app"])),
            create: true,
        },
    );
    assert_eq!(r, Response::Ok);
    let t = s
        .acl_token_by_secret(&uuid(1002), NOW)
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        t.policies,
        vec![AclLink {
            id: uuid(50),
            name: "app".into()
        }]
    );
    let res = s.acl_token_rules(&t, "dc1");
    assert_eq!(res.applied, 1);
    let a = meridian_acl::Authorizer::new(res.rules, Root::Deny, Some(t.accessor_id.clone()));
    assert!(a.allowed(Resource::Key, "app/x", Need::Write));
    assert!(!a.allowed(Resource::Key, "other", Need::Read));
    assert!(a.allowed(Resource::Service, "web", Need::Read));
    let r = apply(
        &mut s,
        12,
        AclWrite::TokenSet {
            token: Box::new(token(3, &["nope"])),
            create: true,
        },
    );
    assert_eq!(rejected(&r), "No such ACL policy with name \"nope\"");
}

#[test]
fn policies_scoped_to_other_datacenters_and_identities() {
    let mut s = bootstrapped();
    let p = AclPolicy {
        datacenters: vec!["dc2".into()],
        ..policy(51, "dc2-only", "key_prefix \"\" { policy = \"write\" }")
    };
    assert_eq!(
        apply(&mut s, 10, AclWrite::PolicySet(Box::new(p))),
        Response::Ok
    );
    let t = AclToken {
        service_identities: vec![ServiceIdentity {
            service_name: "web".into(),
            datacenters: vec![],
        }],
        node_identities: vec![NodeIdentity {
            node_name: "n1".into(),
            datacenter: "dc2".into(),
        }],
        ..token(4, &["dc2-only"])
    };
    let create = AclWrite::TokenSet {
        token: Box::new(t),
        create: true,
    };
    assert_eq!(apply(&mut s, 11, create), Response::Ok);
    let t = s.acl_token(&uuid(4)).cloned().unwrap_or_default();
    let in_dc1 = s.acl_token_rules(&t, "dc1");
    assert_eq!(
        in_dc1.applied, 1,
        "only the service identity applies in dc1"
    );
    let a = meridian_acl::Authorizer::new(in_dc1.rules, Root::Deny, None);
    assert!(!a.allowed(Resource::Key, "k", Need::Write));
    assert!(a.allowed(Resource::Service, "web-sidecar-proxy", Need::Write));
    assert!(!a.allowed(Resource::Node, "n1", Need::Write));
    let in_dc2 = s.acl_token_rules(&t, "dc2");
    assert_eq!(in_dc2.applied, 3);
}

#[test]
fn token_writes_refused_with_consuls_texts() {
    let mut s = bootstrapped();
    let set = |t: AclToken, create| AclWrite::TokenSet {
        token: Box::new(t),
        create,
    };
    let cases = [
        (
            set(
                AclToken {
                    accessor_id: "x".into(),
                    ..token(5, &[])
                },
                true,
            ),
            "Invalid Token: AccessorID - not a valid UUID",
        ),
        (
            set(
                AclToken {
                    secret_id: uuid(1001),
                    ..token(5, &[])
                },
                true,
            ),
            "Invalid Token: SecretID is already in use",
        ),
        (
            set(
                AclToken {
                    secret_id: "manage".into(),
                    ..token(5, &[])
                },
                true,
            ),
            "Permission denied: Cannot modify root ACL",
        ),
        (
            set(token(1, &[]), true),
            "Invalid Token: AccessorID is already in use",
        ),
        (
            set(
                AclToken {
                    secret_id: uuid(7777),
                    ..token(1, &[])
                },
                false,
            ),
            "Changing a token's SecretID is not permitted",
        ),
        (
            set(
                AclToken {
                    local: true,
                    ..token(1, &[])
                },
                false,
            ),
            "Cannot toggle local mode of",
        ),
        (
            set(
                AclToken {
                    expiration_ms: Some(NOW + 30_000),
                    ..token(5, &[])
                },
                true,
            ),
            "ExpirationTime cannot be less than 1m0s in the future (was 30s)",
        ),
        (
            set(
                AclToken {
                    service_identities: vec![ServiceIdentity {
                        service_name: "Web".into(),
                        datacenters: vec![],
                    }],
                    ..token(5, &[])
                },
                true,
            ),
            "Service identity \"Web\" has an invalid name",
        ),
        (
            AclWrite::TokenDelete {
                accessor_id: ANONYMOUS_TOKEN_ID.into(),
            },
            "Delete operation not permitted on the anonymous token",
        ),
        (
            AclWrite::TokenDelete {
                accessor_id: uuid(99),
            },
            "Cannot find token to delete",
        ),
    ];
    let before = s.table_indexes().acl_tokens;
    for (i, (w, want)) in cases.into_iter().enumerate() {
        let r = apply(&mut s, 20 + i as u64, w);
        assert!(rejected(&r).starts_with(want), "case {i}: {r:?}");
    }
    assert_eq!(s.table_indexes().acl_tokens, before, "nothing changed");
}

#[test]
fn policy_writes_refused_with_consuls_texts_and_builtins_protected() {
    let mut s = bootstrapped();
    let set = |p: AclPolicy| AclWrite::PolicySet(Box::new(p));
    assert_eq!(apply(&mut s, 10, set(policy(60, "ops", ""))), Response::Ok);
    let mgmt = s
        .acl_policy(GLOBAL_MANAGEMENT_ID)
        .cloned()
        .unwrap_or_default();
    let cases = [
        (set(policy(61, "", "")), "Invalid Policy: no Name is set"),
        (set(policy(61, "a b", "")), "Invalid Policy: invalid Name."),
        (
            set(policy(61, "builtin/x", "")),
            "Invalid Policy: invalid Name.",
        ),
        (
            set(policy(61, "ops", "")),
            "Invalid Policy: A Policy with Name \"ops\" already exists",
        ),
        (set(policy(61, "bad", "key \"a\" {}")), "Invalid key policy"),
        (
            set(AclPolicy {
                rules: "operator = \"read\"".into(),
                ..mgmt.clone()
            }),
            "Changing the Rules for the builtin global-management policy is not permitted",
        ),
        (
            AclWrite::PolicyDelete {
                id: GLOBAL_MANAGEMENT_ID.into(),
            },
            "Delete operation not permitted on the builtin global-management policy",
        ),
    ];
    for (i, (w, want)) in cases.into_iter().enumerate() {
        let r = apply(&mut s, 20 + i as u64, w);
        assert!(rejected(&r).starts_with(want), "case {i}: {r:?}");
    }
    // Renaming global-management is allowed; a token links to it by ID and sees the name.
    let renamed = AclPolicy {
        name: "root".into(),
        ..mgmt
    };
    assert_eq!(apply(&mut s, 40, set(renamed)), Response::Ok);
    assert!(s.acl_policy_by_name("root").is_some());
    assert!(s.acl_policy_by_name("global-management").is_none());
    // Init restores drifted rules but keeps the rename.
    assert_eq!(
        apply(
            &mut s,
            41,
            AclWrite::Init {
                initial_management: None
            }
        ),
        Response::Ok
    );
    assert_eq!(
        s.acl_policy(GLOBAL_MANAGEMENT_ID).map(|p| p.name.as_str()),
        Some("root")
    );
}

#[test]
fn roles_carry_policies_to_tokens() {
    let mut s = bootstrapped();
    let p = policy(70, "kv-read", "key_prefix \"\" { policy = \"read\" }");
    assert_eq!(
        apply(&mut s, 10, AclWrite::PolicySet(Box::new(p))),
        Response::Ok
    );
    let role = AclRole {
        id: uuid(71),
        name: "readers".into(),
        policies: vec![AclLink {
            id: String::new(),
            name: "kv-read".into(),
        }],
        ..AclRole::default()
    };
    assert_eq!(
        apply(&mut s, 11, AclWrite::RoleSet(Box::new(role.clone()))),
        Response::Ok
    );
    let dup = AclRole {
        id: uuid(72),
        ..role
    };
    assert!(
        rejected(&apply(&mut s, 12, AclWrite::RoleSet(Box::new(dup))))
            .starts_with("Invalid Role: A Role with Name \"readers\" already exists")
    );
    let t = AclToken {
        roles: vec![AclLink {
            id: String::new(),
            name: "readers".into(),
        }],
        ..token(8, &[])
    };
    let create = AclWrite::TokenSet {
        token: Box::new(t),
        create: true,
    };
    assert_eq!(apply(&mut s, 13, create), Response::Ok);
    let t = s.acl_token(&uuid(8)).cloned().unwrap_or_default();
    let a = meridian_acl::Authorizer::new(s.acl_token_rules(&t, "dc1").rules, Root::Deny, None);
    assert!(a.allowed(Resource::Key, "x", Need::Read));
    assert!(!a.allowed(Resource::Key, "x", Need::Write));
}

#[test]
fn a_one_minute_ttl_counts_from_the_writers_clock_within_skew() {
    let mut s = bootstrapped();
    // The writer turned a 1m TTL into a time 2 s before the leader applied it.
    let written = NOW - 2_000;
    let t = AclToken {
        create_ms: written,
        expiration_ms: Some(written + 60_000),
        ..token(7, &[])
    };
    let create = AclWrite::TokenSet {
        token: Box::new(t),
        create: true,
    };
    assert_eq!(apply(&mut s, 10, create), Response::Ok);
    assert_eq!(s.acl_token(&uuid(7)).map(|t| t.create_ms), Some(written));
    // A create time far from the leader's clock is not trusted.
    let t = AclToken {
        create_ms: NOW - 600_000,
        expiration_ms: Some(NOW - 500_000),
        ..token(8, &[])
    };
    let create = AclWrite::TokenSet {
        token: Box::new(t),
        create: true,
    };
    assert!(
        matches!(apply(&mut s, 11, create), Response::Rejected(m) if m.starts_with("ExpirationTime cannot be less than 1m0s"))
    );
}

#[test]
fn expired_tokens_stop_resolving_and_are_reaped() {
    let mut s = bootstrapped();
    let t = AclToken {
        expiration_ms: Some(NOW + 120_000),
        ..token(6, &[])
    };
    let create = AclWrite::TokenSet {
        token: Box::new(t),
        create: true,
    };
    assert_eq!(apply(&mut s, 10, create), Response::Ok);
    assert!(s.acl_token_by_secret(&uuid(1006), NOW + 60_000).is_some());
    assert!(s.acl_token_by_secret(&uuid(1006), NOW + 120_000).is_none());
    let reap = AclWrite::ReapExpired {
        before_ms: NOW + 130_000,
    };
    assert_eq!(apply(&mut s, 11, reap), Response::Ok);
    assert!(s.acl_token(&uuid(6)).is_none());
    assert!(
        s.acl_token(&uuid(1)).is_some(),
        "tokens without expiry stay"
    );
}

#[test]
fn rows_restore_the_acl_tables_and_their_lookups() {
    let mut s = bootstrapped();
    let p = policy(80, "p", "node_prefix \"\" { policy = \"read\" }");
    assert_eq!(
        apply(&mut s, 10, AclWrite::PolicySet(Box::new(p))),
        Response::Ok
    );
    let changes = s.take_changes();
    assert!(changes.iter().any(|c| c.table == crate::Table::AclPolicies));
    let restored = State::restore(s.rows());
    let Ok(r) = restored else {
        panic!("restore failed: {restored:?}");
    };
    assert_eq!(r.acl_bootstrap_index(), Some(5));
    assert!(r.acl_token_by_secret(&uuid(1001), NOW).is_some());
    assert!(r.acl_policy_by_name("p").is_some());
    assert_eq!(r.table_indexes(), s.table_indexes());
}

#[test]
fn a_replicated_batch_stores_rows_with_missing_links_and_deletes_first() {
    let mut s = State::new();
    // A token whose policy comes in a later batch, a role likewise, and a local token
    // (never replicated: dropped).
    let global = AclToken {
        policies: vec![AclLink {
            id: uuid(90),
            name: "later".into(),
        }],
        modify_index: 777,
        ..token(91, &[])
    };
    let local = AclToken {
        local: true,
        ..token(92, &[])
    };
    let old = policy(93, "shared-name", "");
    let batch = AclReplicated {
        policies: vec![old],
        tokens: vec![global, local],
        ..AclReplicated::default()
    };
    assert_eq!(
        apply(&mut s, 3, AclWrite::Replicate(Box::new(batch))),
        Response::Ok
    );
    let t = s
        .acl_token_by_secret(&uuid(1091), NOW)
        .expect("global copied");
    assert_eq!(t.policies[0].id, uuid(90), "missing link kept");
    assert_eq!((t.create_index, t.modify_index), (3, 3), "local indexes");
    assert!(s.acl_token(&uuid(92)).is_none(), "local token not copied");
    // The primary renamed: 93 deleted, 94 took its name, in one batch.
    let batch = AclReplicated {
        policies: vec![policy(94, "shared-name", "")],
        policy_deletes: vec![uuid(93)],
        token_deletes: vec![uuid(91)],
        ..AclReplicated::default()
    };
    assert_eq!(
        apply(&mut s, 4, AclWrite::Replicate(Box::new(batch))),
        Response::Ok
    );
    assert_eq!(
        s.acl_policy_by_name("shared-name").map(|p| p.id.clone()),
        Some(uuid(94))
    );
    assert!(s.acl_token_by_secret(&uuid(1091), NOW).is_none());
    assert_eq!(s.table_indexes().acl_tokens, 4);
}

#[test]
fn a_promoted_secondary_with_initial_management_replicated_counts_as_bootstrapped() {
    let mut s = State::new();
    // The primary's initial management token, copied by replication; no bootstrap marker.
    let copied = AclToken {
        policies: vec![AclLink {
            id: GLOBAL_MANAGEMENT_ID.into(),
            name: "global-management".into(),
        }],
        ..token(1, &[])
    };
    let batch = AclReplicated {
        tokens: vec![copied],
        ..AclReplicated::default()
    };
    apply(&mut s, 2, AclWrite::Replicate(Box::new(batch)));
    assert_eq!(s.acl_bootstrap_index(), None);
    // Promoted: its leader initializes with the same initial_management secret (another
    // AccessorID chosen): the token is not duplicated, and bootstrap is closed.
    let init = AclWrite::Init {
        initial_management: Some(Box::new(AclToken {
            accessor_id: uuid(50),
            secret_id: uuid(1001),
            ..AclToken::default()
        })),
    };
    assert_eq!(apply(&mut s, 3, init), Response::Ok);
    assert_eq!(s.acl_bootstrap_index(), Some(3));
    assert!(s.acl_token(&uuid(50)).is_none());
    assert!(
        s.acl_token(ANONYMOUS_TOKEN_ID).is_some(),
        "anonymous ensured"
    );
}

fn templated(name: &str, var: Option<&str>, dcs: &[&str]) -> TemplatedPolicy {
    TemplatedPolicy {
        template_name: name.into(),
        template_variables: var.map(|n| TemplateVariables { name: n.into() }),
        datacenters: dcs.iter().map(|d| (*d).to_string()).collect(),
    }
}

#[test]
fn templated_policies_are_checked_deduplicated_and_resolved_per_datacenter() {
    let mut s = bootstrapped();
    let bad = AclToken {
        templated_policies: vec![templated("builtin/nope", None, &[])],
        ..token(10, &[])
    };
    let r = apply(
        &mut s,
        6,
        AclWrite::TokenSet {
            token: Box::new(bad),
            create: true,
        },
    );
    assert_eq!(
        rejected(&r),
        "templated policy \"builtin/nope\" does not exist"
    );
    let t = AclToken {
        templated_policies: vec![
            templated("builtin/service", Some("api"), &[]),
            templated("builtin/service", Some("api"), &[]),
            // Variables a template does not take are dropped; dns twice is one.
            templated("builtin/dns", Some("x"), &[]),
            templated("builtin/dns", None, &[]),
            templated("builtin/node", Some("n1"), &["dc2"]),
        ],
        ..token(11, &[])
    };
    let r = apply(
        &mut s,
        7,
        AclWrite::TokenSet {
            token: Box::new(t),
            create: true,
        },
    );
    assert_eq!(r, Response::Ok);
    let stored = s.acl_token(&uuid(11)).expect("stored").clone();
    assert_eq!(stored.templated_policies.len(), 3, "{stored:?}");
    assert_eq!(stored.templated_policies[1].template_variables, None);

    let authz = |s: &State, dc: &str| {
        let r = s.acl_token_rules(&stored, dc);
        assert!(r.broken.is_empty(), "{:?}", r.broken);
        meridian_acl::Authorizer::new(r.rules, Root::Deny, None)
    };
    let dc1 = authz(&s, "dc1");
    assert!(dc1.allowed(Resource::Service, "api", Need::Write));
    assert!(!dc1.allowed(Resource::Service, "web", Need::Write));
    assert!(dc1.allowed(Resource::Query, "q", Need::Read), "builtin/dns");
    assert!(
        !dc1.allowed(Resource::Node, "n1", Need::Write),
        "node is dc2's"
    );
    assert!(authz(&s, "dc2").allowed(Resource::Node, "n1", Need::Write));

    // A secondary's copy (rows travel as JSON) resolves the same.
    let json = serde_json::to_string(&stored).expect("json");
    let copied: AclToken = serde_json::from_str(&json).expect("row");
    let mut secondary = State::new();
    let batch = AclReplicated {
        tokens: vec![copied],
        ..AclReplicated::default()
    };
    apply(&mut secondary, 2, AclWrite::Replicate(Box::new(batch)));
    let there = secondary.acl_token(&uuid(11)).expect("copied");
    assert_eq!(there.templated_policies, stored.templated_policies);
    let r = secondary.acl_token_rules(there, "dc2");
    let a = meridian_acl::Authorizer::new(r.rules, Root::Deny, None);
    assert!(a.allowed(Resource::Node, "n1", Need::Write));
    assert!(a.allowed(Resource::Service, "api", Need::Write));
}

#[test]
fn the_primary_record_keeps_the_highest_epoch_and_the_smallest_name_on_ties() {
    let rec = |dc: &str, epoch| AclPrimary {
        datacenter: dc.into(),
        epoch,
    };
    let set = |s: &mut State, i, p: AclPrimary| apply(s, i, AclWrite::SetPrimary(p));
    let mut s = State::new();
    assert_eq!(s.acl_primary(), None);
    // Epoch 0 is the configured value: never stored.
    assert_eq!(set(&mut s, 1, rec("dc2", 0)), Response::Bool(false));
    assert_eq!(set(&mut s, 2, rec("dc2", 1)), Response::Bool(true));
    assert_eq!(s.acl_primary(), Some(&rec("dc2", 1)));
    // Applied again (a retried announcement): nothing changes.
    assert_eq!(set(&mut s, 3, rec("dc2", 1)), Response::Bool(false));
    // Older and same-epoch-larger-name records lose; a same-epoch smaller name wins.
    assert_eq!(set(&mut s, 4, rec("dc1", 0)), Response::Bool(false));
    assert_eq!(set(&mut s, 5, rec("dc3", 1)), Response::Bool(false));
    assert_eq!(set(&mut s, 6, rec("dc1", 1)), Response::Bool(true));
    assert_eq!(set(&mut s, 7, rec("dc3", 2)), Response::Bool(true));
    assert_eq!(s.acl_primary(), Some(&rec("dc3", 2)));
    // The record survives a snapshot.
    let restored = State::restore(s.rows()).expect("restore");
    assert_eq!(restored.acl_primary(), Some(&rec("dc3", 2)));
}
