//! The HTTPS API with a real `meridian -dev` agent and real clients: certificates made by
//! `meridian tls ca create` / `tls cert create`, Consul's `ports { https }` and
//! `tls { https { verify_incoming } }` keys; curl as Consul's docs use it, the CLI with
//! Consul's `-ca-file`/`CONSUL_CACERT` family, plaintext and certificate-less clients
//! refused, counted and logged once; certificates reloaded on SIGHUP while a connection
//! made before stays usable. Every wait has a deadline.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use common::pki::Pki;
use common::{Agent, dev_args, text, wait_until};
use rustls::pki_types::{CertificateDer, ServerName};

/// The agent's HTTPS config: its certificate at fixed paths (so a reload can swap files).
fn https_config(dir: &Path, pki: &Pki, cert: &Path, key: &Path) -> String {
    let path = dir.join("https.hcl");
    let body = format!(
        r#"tls {{
  defaults {{
    ca_file = "{}"
    cert_file = "{}"
    key_file = "{}"
  }}
  https {{
    verify_incoming = true
  }}
}}
"#,
        pki.ca().display(),
        cert.display(),
        key.display()
    );
    std::fs::write(&path, body).expect("write config");
    path.to_string_lossy().into_owned()
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl")
}

fn meridian(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(common::bin())
        .args(args)
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("MERIDIAN_HTTP_ADDR")
        .envs(env.iter().copied())
        .output()
        .expect("run meridian")
}

/// A TLS connection to `addr` as `client`, speaking HTTP/1.1 (keep-alive).
struct Conn {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl Conn {
    fn open(pki: &Pki, client: &(PathBuf, PathBuf), addr: &str) -> Result<Conn, String> {
        let mut cfg =
            meridian_tls::https_client_config(Some(&pki.ca()), Some((&client.0, &client.1)), true)
                .map_err(|e| e.to_string())?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(Arc::new(cfg), name).map_err(|e| e.to_string())?;
        let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(Conn { tls })
    }

    /// The certificate the agent presented.
    fn presented(&self) -> Vec<u8> {
        let certs = self.tls.conn.peer_certificates().expect("peer certs");
        certs[0].as_ref().to_vec()
    }

    /// GET `path`: (status line, body).
    fn get(&mut self, path: &str) -> (String, String) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.tls.write_all(req.as_bytes()).expect("write");
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            self.tls.read_exact(&mut byte).expect("read head");
            buf.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&buf).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("content-length");
        let mut body = vec![0u8; len];
        self.tls.read_exact(&mut body).expect("read body");
        let status = head.lines().next().unwrap_or_default().to_string();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

fn der_of(pem_file: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_file(pem_file)
        .expect("cert pem")
        .as_ref()
        .to_vec()
}

fn https_metric(a: &Agent, name: &str) -> f64 {
    let m = a.get_json("/v1/agent/metrics");
    m["Gauges"]
        .as_array()
        .expect("gauges")
        .iter()
        .find(|g| g["Name"] == name && g["Labels"]["listener"] == "https")
        .and_then(|g| g["Value"].as_f64())
        .unwrap_or(-1.0)
}

#[test]
fn https_api_serves_curl_and_the_cli_refuses_the_unverified_and_reloads_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::create(dir.path());
    let (server_cert, server_key) = pki.cert("-server", &[]);
    let client = pki.cert("-client", &[]);
    let (cert, key) = (
        dir.path().join("https.pem"),
        dir.path().join("https-key.pem"),
    );
    std::fs::copy(&server_cert, &cert).expect("copy cert");
    std::fs::copy(&server_key, &key).expect("copy key");
    let cfg = https_config(dir.path(), &pki, &cert, &key);
    let mut agent = Agent::start(&dev_args(&["-https-port", "0", "-config-file", &cfg]));
    assert!(!agent.https.is_empty(), "HTTPS address not logged");
    let url = format!("https://{}", agent.https);
    let (ca, c_cert, c_key) = (
        pki.ca().to_string_lossy().into_owned(),
        client.0.to_string_lossy().into_owned(),
        client.1.to_string_lossy().into_owned(),
    );

    // curl, as Consul's docs have it: HTTP/2 by ALPN, and HTTP/1.1 when asked.
    for version in ["--http2", "--http1.1"] {
        let o = curl(&[
            version,
            "--cacert",
            &ca,
            "--cert",
            &c_cert,
            "--key",
            &c_key,
            "-w",
            "\n%{http_code} %{http_version}",
            &format!("{url}/v1/status/leader"),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let want = if version == "--http2" {
            "200 2"
        } else {
            "200 1.1"
        };
        assert!(out.ends_with(want), "{version}: {out}");
        assert!(out.starts_with("\"127.0.0.1:"), "{out}");
    }
    // verify_incoming: no client certificate, no answer; plaintext into HTTPS, no answer.
    let o = curl(&["--cacert", &ca, &format!("{url}/v1/status/leader")]);
    assert!(!o.status.success(), "answered without a client certificate");
    let o = curl(&[&format!("http://{}/v1/status/leader", agent.https)]);
    assert!(!o.status.success(), "answered plaintext on the HTTPS port");
    // The plain HTTP port is unaffected.
    assert_eq!(agent.get("/v1/status/leader").0, 200);
    wait_until(
        Duration::from_secs(10),
        "2 refused handshakes counted",
        || https_metric(&agent, "meridian.tls.handshake_failures_total") >= 2.0,
    );

    // The CLI: flags, then Consul's variables.
    let o = meridian(
        &[
            "kv",
            "put",
            "-http-addr",
            &url,
            "-ca-file",
            &ca,
            "-client-cert",
            &c_cert,
            "-client-key",
            &c_key,
            "tls/key",
            "over-https",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let env = [
        ("CONSUL_HTTP_ADDR", agent.https.as_str()),
        ("CONSUL_HTTP_SSL", "true"),
        ("CONSUL_CACERT", ca.as_str()),
        ("CONSUL_CLIENT_CERT", c_cert.as_str()),
        ("CONSUL_CLIENT_KEY", c_key.as_str()),
    ];
    let o = meridian(&["kv", "get", "tls/key"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "over-https");
    let o = meridian(
        &[
            "kv",
            "get",
            "-tls-server-name",
            "server.dc1.consul",
            "tls/key",
        ],
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = meridian(
        &[
            "kv",
            "get",
            "-tls-server-name",
            "server.dc9.consul",
            "tls/key",
        ],
        &env,
    );
    assert!(
        !o.status.success(),
        "a certificate for another name was trusted"
    );
    assert!(
        text(&o).to_lowercase().contains("certificate"),
        "{}",
        text(&o)
    );
    let o = meridian(&["kv", "get", "-http-addr", &url, "tls/key"], &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("CONSUL_CACERT"), "{}", text(&o));

    // Reload: a new certificate is served to new connections after SIGHUP; a connection
    // made before keeps working.
    let mut before = Conn::open(&pki, &client, &agent.https).expect("connect");
    assert_eq!(before.presented(), der_of(&server_cert));
    assert!(before.get("/v1/status/leader").0.contains("200"));
    let (next_cert, next_key) = pki.cert("-server", &[]);
    std::fs::copy(&next_cert, &cert).expect("copy cert");
    std::fs::copy(&next_key, &key).expect("copy key");
    let status = Command::new("kill")
        .args(["-HUP", &agent.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    wait_until(
        Duration::from_secs(10),
        "the new certificate served",
        || {
            Conn::open(&pki, &client, &agent.https)
                .map(|c| c.presented() == der_of(&next_cert))
                .unwrap_or(false)
        },
    );
    let (status, body) = before.get("/v1/kv/tls/key?raw");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "over-https");
    assert!(https_metric(&agent, "meridian.tls.reloads_total") >= 1.0);
    // Two refusals from 127.0.0.1: one warning naming the peer (the second is at debug).
    let refused = |l: &str| l.contains("refused a connection") && l.contains("\"HTTPS\"");
    let line = agent.wait_log(Duration::from_secs(10), refused);
    assert!(
        line.contains("127.0.0.1:") && line.contains("WARN"),
        "{line}"
    );
    assert_eq!(agent.log.iter().filter(|l| refused(l)).count(), 1);
}
