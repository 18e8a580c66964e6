//! `create_ca` / `create_cert` write Consul's file names, never overwrite, and make
//! certificates with Consul's names, SANs and usages, signed by the CA.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use meridian_tls::{CertKind, CertSpec, GenerateError, create_ca, create_cert};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

fn der(path: &Path) -> Vec<u8> {
    let text = std::fs::read(path).expect("read pem");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text).expect("pem");
    pem.contents
}

/// (DNS SANs, IP SANs, server auth, client auth, common name) of a certificate file.
fn inspect(path: &Path) -> (Vec<String>, Vec<IpAddr>, bool, bool, String) {
    let bytes = der(path);
    let (_, cert) = X509Certificate::from_der(&bytes).expect("x509");
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) if b.len() == 4 => {
                    ips.push(IpAddr::from([b[0], b[1], b[2], b[3]]))
                }
                _ => {}
            }
        }
    }
    let eku = cert
        .extended_key_usage()
        .expect("eku")
        .expect("eku present")
        .value;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or_default()
        .to_string();
    (dns, ips, eku.server_auth, eku.client_auth, cn)
}

#[test]
fn a_ca_gets_consuls_file_names_and_is_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = create_ca(dir.path(), "consul", 30).expect("ca");
    assert_eq!(ca.cert, dir.path().join("consul-agent-ca.pem"));
    assert_eq!(ca.key, dir.path().join("consul-agent-ca-key.pem"));
    let before = std::fs::read(&ca.cert).expect("read");
    let err = create_ca(dir.path(), "consul", 30).expect_err("second CA");
    assert!(
        matches!(&err, GenerateError::Exists { path } if path == &ca.cert),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("{} already exists.", ca.cert.display())
    );
    assert_eq!(
        std::fs::read(&ca.cert).expect("read"),
        before,
        "CA overwritten"
    );
    let ca_der = der(&ca.cert);
    let (_, cert) = X509Certificate::from_der(&ca_der).expect("x509");
    assert!(cert.is_ca());
    // Keys are for the owner only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&ca.key)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "key mode {mode:o}");
    // Another domain is another pair of names.
    let other = create_ca(dir.path(), "meridian.", 30).expect("second domain");
    assert!(other.cert.ends_with("meridian-agent-ca.pem"));
}

#[test]
fn leaf_certificates_take_the_first_free_index_and_consuls_sans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = create_ca(dir.path(), "consul", 30).expect("ca");
    let server = CertSpec::new(CertKind::Server, "dc1", "consul");
    let s0 = create_cert(dir.path(), &server, &ca).expect("server 0");
    let s1 = create_cert(dir.path(), &server, &ca).expect("server 1");
    assert!(s0.cert.ends_with("dc1-server-consul-0.pem"), "{s0:?}");
    assert!(s0.key.ends_with("dc1-server-consul-0-key.pem"), "{s0:?}");
    assert!(s1.cert.ends_with("dc1-server-consul-1.pem"), "{s1:?}");
    let (dns, ips, srv, cli, cn) = inspect(&s0.cert);
    assert_eq!(dns, ["server.dc1.consul", "localhost"]);
    assert_eq!(ips, [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    assert!(srv && cli);
    assert_eq!(cn, "server.dc1.consul");

    let mut client = CertSpec::new(CertKind::Client, "dc1", "consul");
    client.dns_names = vec!["extra.example".into()];
    client.ip_addresses = vec!["10.0.0.7".parse().expect("ip")];
    let c0 = create_cert(dir.path(), &client, &ca).expect("client");
    assert!(c0.cert.ends_with("dc1-client-consul-0.pem"));
    let (dns, ips, srv, cli, _) = inspect(&c0.cert);
    assert_eq!(dns, ["client.dc1.consul", "localhost", "extra.example"]);
    assert_eq!(
        ips,
        [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "10.0.0.7".parse::<IpAddr>().expect("ip")
        ]
    );
    assert!(srv && cli);

    let gateway = CertSpec::new(CertKind::Gateway, "dc2", "consul");
    let g0 = create_cert(dir.path(), &gateway, &ca).expect("gateway");
    assert!(g0.cert.ends_with("dc2-gateway-consul-0.pem"));
    assert_eq!(inspect(&g0.cert).0, ["gateway.dc2.consul", "localhost"]);

    // A taken key file alone also makes the index taken.
    std::fs::write(dir.path().join("dc3-server-consul-0-key.pem"), "x").expect("write");
    let s = create_cert(
        dir.path(),
        &CertSpec::new(CertKind::Server, "dc3", "consul"),
        &ca,
    )
    .expect("dc3");
    assert!(s.cert.ends_with("dc3-server-consul-1.pem"), "{s:?}");
}

#[test]
fn a_missing_or_broken_ca_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = meridian_tls::PemPair {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope-key.pem"),
    };
    let spec = CertSpec::new(CertKind::Server, "dc1", "consul");
    let err = create_cert(dir.path(), &spec, &ca).expect_err("no CA");
    assert!(err.to_string().contains("nope.pem"), "{err}");
    std::fs::write(&ca.cert, "garbage").expect("write");
    std::fs::write(&ca.key, "garbage").expect("write");
    let err = create_cert(dir.path(), &spec, &ca).expect_err("bad CA");
    assert!(err.to_string().contains("nope-key.pem"), "{err}");
    assert!(!dir.path().join("dc1-server-consul-0.pem").exists());
}
