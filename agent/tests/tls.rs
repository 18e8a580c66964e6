//! Server RPC over mutual TLS with real `meridian` processes: certificates made by
//! `meridian tls ca create` / `tls cert create`, a three-server datacenter configured with
//! Consul's `tls { defaults {...} internal_rpc { verify_server_hostname = true } }` block,
//! plaintext refused and logged, and certificates reloaded on SIGHUP (a broken file keeps
//! the running ones). Every wait has a deadline.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::cluster::{CONVERGE, Ports, agreed_leader, ports, server_with};
use common::pki::{Pki, meridian_in, stdout, tls_config};
use common::{Agent, text, wait_until};
use meridian_rpc::{Channels, TransportError, call};
use meridian_tls::{TlsContext, TlsFiles, TlsSettings};

#[test]
fn tls_cli_writes_consuls_file_names_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = meridian_in(dir.path(), &["tls", "ca", "create"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        stdout(&o),
        "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n"
    );
    let ca_before = std::fs::read(dir.path().join("consul-agent-ca.pem")).expect("ca");
    let o = meridian_in(dir.path(), &["tls", "ca", "create"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "consul-agent-ca.pem already exists."
    );
    assert_eq!(
        std::fs::read(dir.path().join("consul-agent-ca.pem")).expect("ca"),
        ca_before
    );

    let o = meridian_in(dir.path(), &["tls", "cert", "create", "-server"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("==> WARNING: Server Certificates grants authority"),
        "{out}"
    );
    assert!(
        out.ends_with(
            "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
             ==> Saved dc1-server-consul-0.pem\n==> Saved dc1-server-consul-0-key.pem\n"
        ),
        "{out}"
    );
    let o = meridian_in(dir.path(), &["tls", "cert", "create", "-server"]);
    assert!(
        stdout(&o).contains("==> Saved dc1-server-consul-1.pem"),
        "{}",
        text(&o)
    );
    let o = meridian_in(
        dir.path(),
        &[
            "tls",
            "cert",
            "create",
            "-gateway",
            "-dc",
            "dc2",
            "-additional-ipaddress",
            "10.1.2.3",
        ],
    );
    assert_eq!(
        stdout(&o),
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
         ==> Saved dc2-gateway-consul-0.pem\n==> Saved dc2-gateway-consul-0-key.pem\n",
        "{}",
        text(&o)
    );
    let o = meridian_in(
        dir.path(),
        &["tls", "cert", "create", "-client", "-domain", "other"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("Error reading CA: other-agent-ca.pem"),
        "{}",
        text(&o)
    );
    let o = meridian_in(dir.path(), &["tls", "cert", "create"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("Please provide either -server, -client, -gateway, or -cli"));
    for f in [
        "dc1-server-consul-0-key.pem",
        "dc1-server-consul-1.pem",
        "dc2-gateway-consul-0.pem",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
}

fn kill(agent: &Agent, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &agent.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Calls the Forward service on `addr` with a TLS client of `pki` that verifies the
/// server as `name`; whether the TLS connection was made (any answer, even a refusal of
/// the payload, means it was; `Unreachable` means the handshake failed).
fn dial_as(pki: &Pki, client: &(PathBuf, PathBuf), addr: &str, name: &str) -> Result<(), String> {
    let ctx = TlsContext::new(TlsSettings {
        files: TlsFiles {
            ca_file: Some(pki.ca()),
            cert_file: Some(client.0.clone()),
            key_file: Some(client.1.clone()),
        },
        verify_incoming: false,
        verify_outgoing: true,
        verify_server_hostname: true,
        ..meridian_tls::TlsSettings::default()
    })
    .expect("client tls");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let channels = Channels::with_tls(ctx, name);
        match call(
            &channels,
            addr,
            "dc1",
            b"not a frame".to_vec(),
            Duration::from_secs(10),
        )
        .await
        {
            Err(TransportError::Unreachable { reason, .. }) => Err(reason),
            _ => Ok(()),
        }
    })
}

fn put(a: &Agent, key: &str, value: &str) {
    let (code, body) = a.put(&format!("/v1/kv/{key}"), value.to_string());
    assert_eq!(code, 200, "PUT {key}: {body}");
}

fn replicated(servers: &[Agent], key: &str, value: &str) {
    for s in servers {
        wait_until(CONVERGE, &format!("{key} on {}", s.addr), || {
            let (code, _, body) = s.get(&format!("/v1/kv/{key}?stale&raw"));
            code == 200 && body == value
        });
    }
}

/// Three servers whose RPC (raft, forwarding) runs over mTLS with hostname verification
/// elect a leader and replicate a write; a plaintext peer is refused and logged; SIGHUP
/// with a broken certificate keeps the running one, and with a new one (valid for an extra
/// name) makes new connections present it while the cluster keeps working.
#[test]
fn three_servers_over_mtls_elect_replicate_and_reload_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::create(dir.path());
    let certs: Vec<(PathBuf, PathBuf)> = (0..3).map(|_| pki.cert("-server", &[])).collect();
    let client = pki.cert("-client", &[]);
    // s1 reads copies, replaced in place as a renewal would.
    let live = (dir.path().join("s1.pem"), dir.path().join("s1-key.pem"));
    std::fs::copy(&certs[0].0, &live.0).expect("copy");
    std::fs::copy(&certs[0].1, &live.1).expect("copy");
    let files = [&live, &certs[1], &certs[2]];

    let p: Vec<Ports> = (0..3).map(|_| ports()).collect();
    let seed = format!("127.0.0.1:{}", p[0].serf);
    let servers: Vec<Agent> = (0..3)
        .map(|i| {
            let name = format!("s{}", i + 1);
            let cfg = tls_config(dir.path(), &name, &pki.ca(), &files[i].0, &files[i].1);
            let join = (i > 0).then_some(seed.as_str());
            server_with(dir.path(), &name, &p[i], join, &["-config-file", &cfg])
        })
        .collect();
    let wrapped: Vec<Option<Agent>> = servers.into_iter().map(Some).collect();
    agreed_leader(&wrapped, "one leader over TLS", |_| true);
    let mut servers: Vec<Agent> = wrapped.into_iter().flatten().collect();
    put(&servers[1], "tls/first", "v1");
    replicated(&servers, "tls/first", "v1");

    // A plaintext HTTP/2 client on s3's RPC port is refused and logged with its address.
    let rpc3 = format!("127.0.0.1:{}", p[2].server);
    let mut raw = std::net::TcpStream::connect(&rpc3).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    raw.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .expect("write");
    let mut buf = [0u8; 64];
    assert!(
        matches!(raw.read(&mut buf), Ok(0) | Err(_)),
        "plaintext was answered"
    );
    servers[2].wait_log(CONVERGE, |l| {
        l.contains("refused a connection")
            && l.contains("\"RPC\"")
            && l.contains("plaintext")
            && l.contains("127.0.0.1:")
    });

    // s1's certificate is valid for server.dc1.consul, not for reloaded.test.
    let rpc1 = format!("127.0.0.1:{}", p[0].server);
    assert!(dial_as(&pki, &client, &rpc1, "server.dc1.consul").is_ok());
    let err = dial_as(&pki, &client, &rpc1, "reloaded.test").expect_err("wrong name");
    assert!(err.contains("not valid for name"), "{err}");

    // A broken file: the reload fails naming it, s1 keeps its certificate and serves.
    std::fs::write(&live.0, "not a certificate").expect("break cert");
    kill(&servers[0], "HUP");
    servers[0].wait_log(CONVERGE, |l| {
        l.contains("TLS reload failed") && l.contains("s1.pem")
    });
    put(&servers[0], "tls/after-bad-reload", "v2");
    replicated(&servers, "tls/after-bad-reload", "v2");
    assert!(dial_as(&pki, &client, &rpc1, "server.dc1.consul").is_ok());

    // A new certificate, also valid for reloaded.test: new connections present it, and
    // `Stats.tls` of /v1/agent/self names it by fingerprint.
    let tls_stats = |a: &Agent| a.get_json("/v1/agent/self")["Stats"]["tls"].clone();
    let before = tls_stats(&servers[0]);
    assert_eq!(before["reloads"], "0", "{before}");
    let renewed = pki.cert("-server", &["-additional-dnsname", "reloaded.test"]);
    std::fs::copy(&renewed.0, &live.0).expect("copy");
    std::fs::copy(&renewed.1, &live.1).expect("copy");
    kill(&servers[0], "HUP");
    servers[0].wait_log(CONVERGE, |l| l.contains("reloaded TLS certificates"));
    dial_as(&pki, &client, &rpc1, "reloaded.test").expect("the renewed certificate");
    let after = tls_stats(&servers[0]);
    assert_eq!(after["reloads"], "1", "{after}");
    for (f, stats) in [
        ("cert_sha256", &before),
        ("cert_sha256", &after),
        ("ca_sha256", &after),
    ] {
        let v = stats[f].as_str().unwrap_or_default();
        assert_eq!(v.len(), 32 * 3 - 1, "{f}: {stats}");
        assert!(
            v.chars().all(|c| c == ':' || c.is_ascii_hexdigit()),
            "{f}: {stats}"
        );
    }
    assert_ne!(before["cert_sha256"], after["cert_sha256"]);
    assert_eq!(before["ca_sha256"], after["ca_sha256"]);
    put(&servers[0], "tls/after-reload", "v3");
    put(&servers[2], "tls/after-reload-2", "v4");
    replicated(&servers, "tls/after-reload", "v3");
    replicated(&servers, "tls/after-reload-2", "v4");
}

/// A CA made outside Meridian the way Consul and openssl write it (SEC1 `EC PRIVATE KEY`)
/// signs Meridian certificates.
#[test]
fn tls_cert_create_signs_with_a_consul_style_sec1_ca_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ossl = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run openssl");
        assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
    };
    ossl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ca-key.pem",
    ]);
    let key = std::fs::read_to_string(dir.path().join("ca-key.pem")).expect("key");
    assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{key}");
    ossl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "ca-key.pem",
        "-subj",
        "/CN=Consul Agent CA 1",
        "-days",
        "30",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ]);
    let o = meridian_in(
        dir.path(),
        &[
            "tls",
            "cert",
            "create",
            "-server",
            "-ca",
            "ca.pem",
            "-key",
            "ca-key.pem",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    ossl(&["verify", "-CAfile", "ca.pem", "dc1-server-consul-0.pem"]);
}
