//! Consul's TLS keys: the `tls` stanza and the deprecated top-level keys resolve to one
//! internal-RPC setting as Consul resolves them, Consul's rules refuse contradictions
//! naming the key (and file), and the parts Meridian does not serve are warned about.

use std::path::PathBuf;

use crate::test_support::write;
use crate::{ConfigError, ResolvedTls, TlsVersion, WarningKind, validate_path};

fn load(hcl: &str) -> Result<crate::Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "tls.hcl",
        &format!("data_dir = \"/tmp/x\"\n{hcl}"),
    );
    validate_path(&path)
}

fn invalid(hcl: &str) -> (String, String) {
    match load(hcl) {
        Err(ConfigError::Invalid { key, message }) => (key, message),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn internal_rpc_overrides_defaults_and_hostname_implies_outgoing() {
    let c = load(
        r#"
tls {
  defaults {
    ca_file = "/pki/ca.pem"
    cert_file = "/pki/agent.pem"
    key_file = "/pki/agent-key.pem"
    verify_incoming = true
  }
  internal_rpc {
    cert_file = "/pki/rpc.pem"
    key_file = "/pki/rpc-key.pem"
    verify_server_hostname = true
  }
}
"#,
    )
    .expect("load");
    assert_eq!(
        c.internal_rpc_tls(),
        Some(ResolvedTls {
            ca_file: Some(PathBuf::from("/pki/ca.pem")),
            cert_file: Some(PathBuf::from("/pki/rpc.pem")),
            key_file: Some(PathBuf::from("/pki/rpc-key.pem")),
            verify_incoming: true,
            verify_outgoing: true,
            verify_server_hostname: true,
            ..ResolvedTls::default()
        })
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // internal_rpc may also turn a default off.
    let c = load(
        r#"
tls {
  defaults {
    ca_file = "/ca.pem"
    verify_outgoing = true
  }
  internal_rpc {
    verify_outgoing = false
  }
}
"#,
    )
    .expect("load");
    assert!(!c.internal_rpc_tls().expect("set").verify_outgoing);
}

#[test]
fn no_tls_keys_means_no_tls() {
    assert_eq!(load("").expect("load").internal_rpc_tls(), None);
}

#[test]
fn deprecated_top_level_keys_feed_defaults_and_are_warned_about() {
    let c = load(
        r#"
ca_file = "/old/ca.pem"
cert_file = "/old/cert.pem"
key_file = "/old/key.pem"
verify_incoming_rpc = true
verify_server_hostname = true
tls {
  defaults {
    ca_file = "/new/ca.pem"
  }
}
"#,
    )
    .expect("load");
    let t = c.internal_rpc_tls().expect("tls");
    // The new spelling wins over the deprecated one.
    assert_eq!(t.ca_file, Some(PathBuf::from("/new/ca.pem")));
    assert_eq!(t.cert_file, Some(PathBuf::from("/old/cert.pem")));
    assert!(t.verify_incoming && t.verify_server_hostname && t.verify_outgoing);
    let dep: Vec<(String, WarningKind)> =
        c.warnings.iter().map(|w| (w.key.clone(), w.kind)).collect();
    assert!(
        dep.contains(&(
            "verify_incoming_rpc".into(),
            WarningKind::Deprecated {
                use_instead: "tls.internal_rpc.verify_incoming"
            }
        )),
        "{dep:?}"
    );
    let w = c
        .warnings
        .iter()
        .find(|w| w.key == "ca_file")
        .expect("ca_file warned");
    assert!(
        w.to_string()
            .ends_with("ca_file: config key is deprecated; use tls.defaults.ca_file instead"),
        "{w}"
    );
    // Top-level verify_incoming is the default; verify_incoming_rpc the internal RPC one.
    let c = load("ca_file = \"/ca.pem\"\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\nverify_incoming = true\nverify_incoming_rpc = false\n").expect("load");
    assert!(!c.internal_rpc_tls().expect("tls").verify_incoming);
}

#[test]
fn verify_server_hostname_without_a_ca_is_refused_naming_the_key() {
    let (key, message) =
        invalid("tls {\n  internal_rpc {\n    verify_server_hostname = true\n  }\n}\n");
    assert_eq!(key, "tls.internal_rpc.verify_server_hostname");
    assert!(message.contains("implies verify_outgoing"), "{message}");
    assert!(message.contains("ca_file"), "{message}");
    let (key, _) = invalid("verify_outgoing = true");
    assert_eq!(key, "verify_outgoing");
}

#[test]
fn consuls_tls_rules_refuse_contradictions() {
    let (key, message) = invalid("tls {\n  defaults {\n    cert_file = \"/pki/c.pem\"\n  }\n}\n");
    assert_eq!(key, "tls.defaults.cert_file");
    assert!(
        message.contains("/pki/c.pem") && message.contains("key_file"),
        "{message}"
    );

    let (key, message) =
        invalid("tls {\n  internal_rpc {\n    key_file = \"/pki/k.pem\"\n  }\n}\n");
    assert_eq!(key, "tls.internal_rpc.key_file");
    assert!(
        message.contains("/pki/k.pem") && message.contains("cert_file"),
        "{message}"
    );

    let (key, message) = invalid(
        "tls {\n  defaults {\n    ca_file = \"/ca.pem\"
    verify_incoming = true\n  }\n}\n",
    );
    assert_eq!(key, "tls.defaults.verify_incoming");
    assert!(message.contains("cert_file"), "{message}");

    let (key, message) = invalid(
        "tls {\n  defaults {\n    cert_file = \"/c.pem\"
    key_file = \"/k.pem\"
    verify_incoming = true\n  }\n}\n",
    );
    assert_eq!(key, "tls.defaults.verify_incoming");
    assert!(message.contains("ca_file"), "{message}");

    let (key, message) =
        invalid("tls {\n  defaults {\n    verify_server_hostname = true\n  }\n}\n");
    assert_eq!(key, "tls.defaults.verify_server_hostname");
    assert!(
        message.contains("only valid in the tls.internal_rpc stanza"),
        "{message}"
    );

    for (hcl, want) in [
        (
            "tls {\n  defaults {\n    ca_path = \"/etc/ca.d\"\n  }\n}\n",
            "tls.defaults.ca_path",
        ),
        ("ca_path = \"/etc/ca.d\"", "ca_path"),
    ] {
        let (key, message) = invalid(hcl);
        assert_eq!(key, want);
        assert!(
            message.contains("/etc/ca.d") && message.contains("set ca_file"),
            "{message}"
        );
    }
}

#[test]
fn https_resolves_from_its_block_then_defaults_then_deprecated_keys() {
    let c = load(
        r#"
ports { https = 8501 }
addresses { https = "127.0.0.2" }
tls {
  defaults {
    ca_file = "/pki/ca.pem"
    cert_file = "/pki/agent.pem"
    key_file = "/pki/agent-key.pem"
    tls_min_version = "TLSv1_3"
    verify_incoming = false
  }
  https {
    cert_file = "/pki/https.pem"
    key_file = "/pki/https-key.pem"
    tls_cipher_suites = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
  }
  grpc {
    use_auto_cert = true
  }
}
verify_incoming_https = true
"#,
    )
    .expect("load");
    let h = c.https_tls().expect("https tls");
    assert_eq!(h.cert_file, Some(PathBuf::from("/pki/https.pem")));
    assert_eq!(h.ca_file, Some(PathBuf::from("/pki/ca.pem")));
    // verify_incoming_https outranks tls.defaults.verify_incoming, as in Consul.
    assert!(h.verify_incoming);
    assert!(!h.verify_outgoing && !h.verify_server_hostname);
    assert_eq!(h.min_version, TlsVersion::V1_3);
    assert_eq!(
        h.cipher_suites,
        [
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        ]
    );
    let rpc = c.internal_rpc_tls().expect("rpc tls");
    assert_eq!(rpc.cert_file, Some(PathBuf::from("/pki/agent.pem")));
    assert!(!rpc.verify_incoming && rpc.cipher_suites.is_empty());
    assert_eq!(
        c.https_addrs().expect("addrs"),
        ["127.0.0.2".parse::<std::net::IpAddr>().expect("ip")]
    );
    let mut keys: Vec<&str> = c.warnings.iter().map(|w| w.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["tls.grpc", "verify_incoming_https"]);
}

#[test]
fn the_https_port_without_a_certificate_or_a_bad_version_is_refused_naming_the_key() {
    let err = load("ports { https = 8501 }\n").expect_err("no cert");
    assert_eq!(err.key(), Some("ports.https"), "{err}");
    assert!(err.to_string().contains("tls.https.cert_file"), "{err}");
    let err =
        load("tls {\n  https {\n    tls_min_version = \"TLSv9\"\n  }\n}\n").expect_err("version");
    assert_eq!(err.key(), Some("tls.https.tls_min_version"), "{err}");
    let err = load("tls_min_version = \"ssl3\"\n").expect_err("version");
    assert_eq!(err.key(), Some("tls_min_version"), "{err}");
    let err =
        load("tls {\n  https {\n    verify_server_hostname = true\n  }\n}\n").expect_err("vsh");
    assert_eq!(err.key(), Some("tls.https.verify_server_hostname"), "{err}");
}

#[test]
fn a_typo_in_a_tls_block_is_an_error_naming_the_key() {
    let err =
        load("tls {\n  internal_rpc {\n    verfy_outgoing = true\n  }\n}\n").expect_err("typo");
    assert_eq!(err.key(), Some("tls.internal_rpc.verfy_outgoing"), "{err}");
}
