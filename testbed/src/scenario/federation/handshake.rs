//! What certificates a process holds, asked the ways an operator can: a TLS handshake with
//! one of its RPC ports (`openssl s_client`, inside the host's namespace, TLS 1.2 so that
//! a refused client certificate fails the handshake itself), the fingerprint `openssl
//! x509` gives a file, and an agent's own account (`Stats.tls` of `/v1/agent/self`).
//! Questions only: deciding what the answers must be is `certs`' job.

use std::path::Path;
use std::time::Duration;

use crate::netns;
use crate::plan::{HostPlan, Role};
use crate::probe;
use crate::secrets::{DOMAIN, PemPair};
use crate::state::State;

/// The longest one handshake may take (a stalled one is a failure, not a hang).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Server RPC, and a gateway's LAN RPC.
const RPC_PORT: u16 = 8300;
/// A gateway's WAN RPC (shared with WAN gossip).
const WAN_RPC_PORT: u16 = 8302;

/// An RPC listener of a host and the name its certificate must prove.
#[derive(Debug, Clone)]
pub(super) struct Listener {
    /// `ip:port`.
    pub(super) addr: String,
    /// `server.<dc>.consul` or `gateway.<dc>.consul`.
    pub(super) name: String,
}

/// `host`'s RPC listeners: a server's 8300, a gateway's LAN 8300 and WAN 8302; a client
/// has none.
pub(super) fn listeners(host: &HostPlan) -> Vec<Listener> {
    let name = |kind: &str| format!("{kind}.{}.{DOMAIN}", host.dc);
    match host.role {
        Role::Client => Vec::new(),
        Role::Server => vec![Listener {
            addr: format!("{}:{RPC_PORT}", host.lan_ip),
            name: name("server"),
        }],
        Role::Gateway => std::iter::once(format!("{}:{RPC_PORT}", host.lan_ip))
            .chain(host.wan_ip.map(|ip| format!("{ip}:{WAN_RPC_PORT}")))
            .map(|addr| Listener {
                addr,
                name: name("gateway"),
            })
            .collect(),
    }
}

/// Shakes hands with `at` from inside `host`'s namespace, presenting `client` and
/// requiring the listener's certificate to chain to `ca` and to prove its name. The
/// fingerprint of the certificate it presented, or why the handshake failed.
pub(super) async fn presented(
    host: &HostPlan,
    at: &Listener,
    client: &PemPair,
    ca: &Path,
) -> Result<String, String> {
    let (cert, key, ca) = (
        client.cert.to_string_lossy(),
        client.key.to_string_lossy(),
        ca.to_string_lossy(),
    );
    let args = [
        "netns",
        "exec",
        host.netns.as_str(),
        "openssl",
        "s_client",
        "-connect",
        &at.addr,
        "-servername",
        &at.name,
        "-verify_hostname",
        &at.name,
        "-verify_return_error",
        "-tls1_2",
        "-cert",
        &cert,
        "-key",
        &key,
        "-CAfile",
        &ca,
    ];
    let out = tokio::time::timeout(HANDSHAKE_TIMEOUT, netns::run("ip", &args, None))
        .await
        .map_err(|_| format!("no handshake within {HANDSHAKE_TIMEOUT:?}"))?
        .map_err(|e| match e {
            netns::NetError::Failed { stderr, .. } => last_error(&stderr),
            other => other.to_string(),
        })?;
    let pem = first_pem(&out).ok_or("no certificate in the handshake")?;
    fingerprint_of(pem).await
}

/// The fingerprint of the certificate in PEM file `path`.
pub(super) async fn file_fingerprint(path: &Path) -> Result<String, String> {
    let p = path.to_string_lossy();
    let args = [
        "x509",
        "-noout",
        "-fingerprint",
        "-sha256",
        "-in",
        p.as_ref(),
    ];
    let out = netns::run("openssl", &args, None)
        .await
        .map_err(|e| e.to_string())?;
    parse_fingerprint(&out).ok_or_else(|| format!("openssl x509 printed {out:?}"))
}

async fn fingerprint_of(pem: &str) -> Result<String, String> {
    let args = ["x509", "-noout", "-fingerprint", "-sha256"];
    let out = netns::run("openssl", &args, Some(pem))
        .await
        .map_err(|e| e.to_string())?;
    parse_fingerprint(&out).ok_or_else(|| format!("openssl x509 printed {out:?}"))
}

/// What an agent says it holds (`Stats.tls`): its certificate's fingerprint and its CAs'
/// (in file order); `None` when it did not answer or has no TLS.
pub(super) async fn agent_held(state: &State, host: &HostPlan) -> Option<(String, Vec<String>)> {
    let replies = probe::get(&state.testbed, host, &["/v1/agent/self"])
        .await
        .ok()?;
    let reply = replies.first().filter(|r| r.status == Some(200))?;
    let v: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
    let tls = &v["Stats"]["tls"];
    let cert = tls["cert_sha256"].as_str()?.to_string();
    let cas = tls["ca_sha256"]
        .as_str()?
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Some((cert, cas))
}

/// `AB:CD:...` of `sha256 Fingerprint=AB:CD:...` (openssl 3; `SHA256 Fingerprint=` in 1.1),
/// upper-cased.
fn parse_fingerprint(out: &str) -> Option<String> {
    let line = out.lines().find(|l| l.contains("Fingerprint="))?;
    let (_, fp) = line.split_once('=')?;
    Some(fp.trim().to_ascii_uppercase())
}

/// The first PEM certificate in `text`.
fn first_pem(text: &str) -> Option<&str> {
    const END: &str = "-----END CERTIFICATE-----";
    let start = text.find("-----BEGIN CERTIFICATE-----")?;
    let end = text[start..].find(END)? + start + END.len();
    Some(&text[start..end])
}

/// The line of openssl's stderr that says why (the last `error:` line, else the last
/// line).
fn last_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|l| l.contains("error:") || l.contains("alert"))
        .or(lines.last())
        .map(|l| l.trim().chars().take(300).collect())
        .unwrap_or_else(|| "handshake failed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_and_certificates_are_read_from_openssl_output() {
        assert_eq!(
            parse_fingerprint("sha256 Fingerprint=5a:D9:C7\n").as_deref(),
            Some("5A:D9:C7")
        );
        assert_eq!(
            parse_fingerprint("SHA256 Fingerprint=AA:BB\n").as_deref(),
            Some("AA:BB")
        );
        assert_eq!(parse_fingerprint("unable to load certificate"), None);
        let out = "CONNECTED\n---\nServer certificate\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\nsubject=CN = x\n-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n";
        assert_eq!(
            first_pem(out),
            Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----")
        );
        assert_eq!(first_pem("no handshake"), None);
        let err = "depth=0 CN = server.dc1.consul\nverify return:1\n80BB:error:0A000418:SSL routines:ssl3_read_bytes:tlsv1 alert unknown ca:rec_layer_s3.c:1601:SSL alert number 48\n";
        assert!(
            last_error(err).contains("alert unknown ca"),
            "{}",
            last_error(err)
        );
    }

    #[test]
    fn servers_and_gateways_have_listeners_clients_none() {
        let host = |role, wan: Option<&str>| HostPlan {
            name: "h".into(),
            dc: "dc2".into(),
            role,
            netns: "ns".into(),
            lan_ip: "10.201.2.11".parse().expect("ip"),
            wan_ip: wan.map(|w| w.parse().expect("ip")),
            switch_ports: Vec::new(),
        };
        assert!(listeners(&host(Role::Client, None)).is_empty());
        let s = listeners(&host(Role::Server, None));
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].addr.as_str(), s[0].name.as_str()),
            ("10.201.2.11:8300", "server.dc2.consul")
        );
        let g = listeners(&host(Role::Gateway, Some("10.202.2.1")));
        let addrs: Vec<&str> = g.iter().map(|l| l.addr.as_str()).collect();
        assert_eq!(addrs, ["10.201.2.11:8300", "10.202.2.1:8302"]);
        assert!(g.iter().all(|l| l.name == "gateway.dc2.consul"));
    }
}
