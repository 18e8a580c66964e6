//! Test support: CAs and certificates made with this crate's generator in temp dirs, a
//! tonic `Forward` server that echoes payloads, served through [`incoming`], and clients
//! that dial through [`TlsConnector`]. Real sockets on 127.0.0.1 port 0; waits have
//! deadlines.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use meridian_proto::v1::forward_client::ForwardClient;
use meridian_proto::v1::forward_server::{Forward, ForwardServer};
use meridian_proto::v1::{ForwardRequest, ForwardResponse};
use meridian_tls::{
    CertKind, CertSpec, PemPair, TlsConnector, TlsContext, TlsFiles, TlsSettings, create_ca,
    create_cert, incoming,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

/// How long a test waits for a condition.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A CA in its own directory, with one server and one client certificate.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PemPair,
    pub server: PemPair,
    pub client: PemPair,
}

impl Pki {
    /// A fresh CA under `root/name` with a `server.dc1.consul` and a `client.dc1.consul`
    /// certificate.
    pub fn new(root: &Path, name: &str) -> Pki {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("pki dir");
        let ca = create_ca(&dir, "consul", 30).expect("ca");
        let server = create_cert(&dir, &CertSpec::new(CertKind::Server, "dc1", "consul"), &ca)
            .expect("server cert");
        let client = create_cert(&dir, &CertSpec::new(CertKind::Client, "dc1", "consul"), &ca)
            .expect("client cert");
        Pki {
            dir,
            ca,
            server,
            client,
        }
    }

    /// Files trusting this CA, presenting `pair` (or no certificate).
    pub fn files(&self, pair: Option<&PemPair>) -> TlsFiles {
        TlsFiles {
            ca_file: Some(self.ca.cert.clone()),
            cert_file: pair.map(|p| p.cert.clone()),
            key_file: pair.map(|p| p.key.clone()),
        }
    }
}

/// A server context: this PKI's server certificate, verify_incoming as given.
pub fn server_tls(files: TlsFiles, verify_incoming: bool) -> TlsContext {
    TlsContext::new(TlsSettings {
        files,
        verify_incoming,
        verify_outgoing: false,
        verify_server_hostname: false,
        ..meridian_tls::TlsSettings::default()
    })
    .expect("server tls")
}

/// A client context: verify_outgoing, and verify_server_hostname as given.
pub fn client_tls(files: TlsFiles, verify_server_hostname: bool) -> TlsContext {
    TlsContext::new(TlsSettings {
        files,
        verify_incoming: false,
        verify_outgoing: true,
        verify_server_hostname,
        ..meridian_tls::TlsSettings::default()
    })
    .expect("client tls")
}

/// Echoes the payload back.
struct Echo;

#[tonic::async_trait]
impl Forward for Echo {
    async fn forward(
        &self,
        request: tonic::Request<ForwardRequest>,
    ) -> Result<tonic::Response<ForwardResponse>, tonic::Status> {
        let remote = meridian_tls::remote_addr(&request)
            .map(|a| a.to_string())
            .unwrap_or_default();
        let req = request.into_inner();
        Ok(tonic::Response::new(ForwardResponse {
            payload: req.payload,
            error: remote,
            ..Default::default()
        }))
    }
}

/// A running echo server; stops on drop.
pub struct Server {
    pub addr: SocketAddr,
    token: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Serves the echo service on 127.0.0.1:0 through `incoming` with `tls`.
pub async fn serve(tls: TlsContext) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(ForwardServer::new(Echo))
            .serve_with_incoming_shutdown(
                incoming(listener, tls, Duration::from_secs(2)),
                stop.cancelled_owned(),
            )
            .await
            .expect("serve");
    });
    Server { addr, token }
}

/// A lazily connecting TLS channel to `addr`, verifying the server as `name`.
pub fn tls_channel(addr: SocketAddr, tls: &TlsContext, name: &str) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_with_connector_lazy(TlsConnector::new(tls.clone(), name, Duration::from_secs(5)))
}

/// A plaintext channel to `addr`.
pub fn plain_channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy()
}

/// One echo call on `channel`: the payload back, or the status.
pub async fn echo(channel: &Channel, payload: &[u8]) -> Result<Vec<u8>, tonic::Status> {
    let mut client = ForwardClient::new(channel.clone());
    let req = ForwardRequest {
        datacenter: "dc1".into(),
        payload: payload.to_vec(),
        ..Default::default()
    };
    let resp = tokio::time::timeout(DEADLINE, client.forward(req))
        .await
        .map_err(|_| tonic::Status::deadline_exceeded("test deadline"))??;
    Ok(resp.into_inner().payload)
}

/// Waits until `cond` holds, polling; panics naming `what` after [`DEADLINE`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Copies `from` over `to` (replacing a file in place, as a certificate renewal does).
pub fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("copy");
}
