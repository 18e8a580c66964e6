//! Topology parsing and validation: both formats, and errors that name the line.

use std::path::Path;

use super::{Topology, TopologyError};

fn toml(text: &str) -> Result<Topology, TopologyError> {
    Topology::from_toml(Path::new("t.toml"), text)
}

fn hcl(text: &str) -> Result<Topology, TopologyError> {
    Topology::from_hcl(Path::new("t.hcl"), text)
}

#[test]
fn toml_and_hcl_read_the_same_topology() {
    let t = toml(
        "[datacenter.dc1]\nservers = 3\nclients = 1\ngateways = 1\n\n\
         [datacenter.dc2]\ngateways = 1\n\n[wan_link.dc1.dc2]\ndelay = \"40ms\"\n",
    )
    .expect("toml");
    let h = hcl(
        "datacenter \"dc1\" {\n  servers = 3\n  clients = 1\n  gateways = 1\n}\n\
         datacenter \"dc2\" {\n  gateways = 1\n}\nwan_link \"dc1\" \"dc2\" {\n  delay = \"40ms\"\n}\n",
    )
    .expect("hcl");
    assert_eq!(t, h);
    assert_eq!(t.datacenter["dc2"].servers, 3, "servers default to 3");
    assert_eq!(t.agent.raft_multiplier, 1);
    assert_eq!(
        t.wan_link["dc1"]["dc2"].delay(),
        Some(std::time::Duration::from_millis(40))
    );
}

#[test]
fn toml_syntax_error_names_the_line() {
    let e = toml("[datacenter.dc1]\nservers = 3\nclients = = 1\n").expect_err("bad");
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.to_string().starts_with("t.toml:3: "), "{e}");
}

#[test]
fn toml_unknown_key_names_key_and_line() {
    let e = toml("[datacenter.dc1]\nservers = 3\nclinets = 1\n").expect_err("bad");
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.to_string().contains("clinets"), "{e}");
}

#[test]
fn toml_wrong_type_names_key_and_line() {
    let e = toml("[datacenter.dc1]\n\nservers = \"three\"\n").expect_err("bad");
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.to_string().contains("datacenter.dc1.servers"), "{e}");
}

#[test]
fn hcl_syntax_error_names_the_line() {
    let e = hcl("datacenter \"dc1\" {\n  servers = 3\n  clients = \n}\n").expect_err("bad");
    assert!(matches!(e.line(), Some(3 | 4)), "{e}");
}

#[test]
fn hcl_unknown_key_names_key_and_line() {
    let e = hcl("datacenter \"dc1\" {\n  servers = 3\n  gateway = 1\n}\n").expect_err("bad");
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.to_string().contains("gateway"), "{e}");
}

#[test]
fn rule_violations_name_key_and_line() {
    let e = toml("[datacenter.dc1]\nclients = 1\nservers = 0\n").expect_err("bad");
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.to_string().contains("datacenter.dc1.servers"), "{e}");

    let e = toml("[datacenter.dc1]\ngateways = 1\n[wan_link.dc1.dc9]\n").expect_err("bad");
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.to_string().contains("dc9"), "{e}");

    let e = toml("[datacenter.DC1]\n").expect_err("bad");
    assert_eq!(e.line(), Some(1), "{e}");

    let e = toml("[agent]\nraft_multiplier = 1\n").expect_err("no datacenter");
    assert!(e.to_string().contains("at least one datacenter"), "{e}");
}

#[test]
fn links_need_gateways_on_both_sides() {
    let e =
        toml("[datacenter.a]\ngateways = 1\n[datacenter.b]\n[wan_link.a.b]\n").expect_err("bad");
    assert!(e.to_string().contains("no gateways"), "{e}");
}

#[test]
fn tls_and_gossip_keys_read_from_both_formats() {
    let t = toml(
        "[datacenter.dc1]\ngateways = 1\n[tls]\nenabled = true\n\
         [gossip]\nencrypt = true\nencrypt_wan = true\n",
    )
    .expect("toml");
    let h = hcl(
        "datacenter \"dc1\" {\n  gateways = 1\n}\ntls {\n  enabled = true\n}\n\
         gossip {\n  encrypt = true\n  encrypt_wan = true\n}\n",
    )
    .expect("hcl");
    assert_eq!(t, h);
    assert!(t.tls.enabled && t.gossip.encrypt && t.gossip.encrypt_wan);
    let plain = toml("[datacenter.dc1]\n").expect("toml");
    assert!(!plain.tls.enabled && !plain.gossip.encrypt && !plain.gossip.encrypt_wan);
}

#[test]
fn tls_and_gossip_mistakes_name_the_key() {
    let e = toml("[datacenter.dc1]\n[tls]\nenabled = \"yes\"\n").expect_err("bad");
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.to_string().contains("tls.enabled"), "{e}");

    let e = toml("[datacenter.dc1]\n[tls]\nenable = true\n").expect_err("bad");
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.to_string().contains("enable"), "{e}");

    let e = hcl("datacenter \"dc1\" {}\ngossip {\n  encrypt_lan = true\n}\n").expect_err("bad");
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.to_string().contains("encrypt_lan"), "{e}");

    let e = toml(
        "[agent]\nextra_args = [\"-encrypt=K\"]\n[datacenter.dc1]\n[gossip]\nencrypt = true\n",
    )
    .expect_err("two LAN keys");
    assert_eq!(e.line(), Some(5), "{e}");
    assert!(e.to_string().contains("gossip.encrypt: "), "{e}");

    let e = toml("[datacenter.dc1]\n[gossip]\nencrypt_wan = true\n").expect_err("no WAN");
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(
        e.to_string()
            .contains("gossip.encrypt_wan: no datacenter has gateways"),
        "{e}"
    );
}

#[test]
fn extra_agent_hcl_per_datacenter_reads_from_both_formats() {
    let t = toml(
        "[datacenter.dc1]\nserver_hcl = '''\nreplication {\n  source_datacenter = \"dc2\"\n}\n'''\n\
         client_hcl = 'dns_config { service_failover = \"nearest\" }'\n",
    )
    .expect("toml");
    let dc1 = &t.datacenter["dc1"];
    assert_eq!(
        dc1.server_hcl.as_deref(),
        Some("replication {\n  source_datacenter = \"dc2\"\n}\n")
    );
    assert_eq!(
        dc1.client_hcl.as_deref(),
        Some("dns_config { service_failover = \"nearest\" }")
    );
    let h = hcl("datacenter \"dc1\" {\n  client_hcl = \"x {}\"\n}\n").expect("hcl");
    assert_eq!(h.datacenter["dc1"].client_hcl.as_deref(), Some("x {}"));
    assert_eq!(h.datacenter["dc1"].server_hcl, None);
}
