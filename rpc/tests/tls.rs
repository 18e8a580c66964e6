//! `Channels` and `call` under TLS, over real sockets with generated certificates: a call
//! goes through, a refused handshake is `Unreachable` (never sent, so safe to retry
//! elsewhere), the name checked is the one asked for, and a reload keeps cached channels.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use meridian_rpc::{
    Channels, ForwardEndpoint, Handler, RequirePeer, TransportError, call, call_named,
};
use meridian_tls::{
    CertKind, CertSpec, PemPair, TlsContext, TlsFiles, TlsSettings, create_ca, create_cert,
    incoming,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

const TIMEOUT: Duration = Duration::from_secs(10);

struct Echo;

#[async_trait::async_trait]
impl Handler for Echo {
    async fn handle(&self, payload: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
        Ok(payload)
    }
}

struct Pki {
    ca: PemPair,
    server: PemPair,
    client: PemPair,
}

fn pki(root: &Path, name: &str) -> Pki {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    let ca = create_ca(&dir, "consul", 30).expect("ca");
    let cert = |kind| create_cert(&dir, &CertSpec::new(kind, "dc1", "consul"), &ca).expect("cert");
    let (server, client) = (cert(CertKind::Server), cert(CertKind::Client));
    Pki { ca, server, client }
}

fn tls(ca: &PemPair, pair: Option<&PemPair>, incoming: bool, outgoing: bool) -> TlsContext {
    TlsContext::new(TlsSettings {
        files: TlsFiles {
            ca_file: Some(ca.cert.clone()),
            cert_file: pair.map(|p| p.cert.clone()),
            key_file: pair.map(|p| p.key.clone()),
        },
        verify_incoming: incoming,
        verify_outgoing: outgoing,
        verify_server_hostname: outgoing,
        ..meridian_tls::TlsSettings::default()
    })
    .expect("tls context")
}

/// A `Forward` endpoint of dc1 behind `incoming`; stops when the token is dropped.
async fn serve(server_tls: TlsContext) -> (SocketAddr, tokio_util::sync::DropGuard) {
    serve_guarded(server_tls, RequirePeer::anyone()).await
}

#[tokio::test]
async fn a_call_goes_through_mtls_and_a_refused_handshake_is_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = pki(dir.path(), "a");
    let (addr, _server) = serve(tls(&a.ca, Some(&a.server), true, false)).await;
    let addr = addr.to_string();

    let channels = Channels::with_tls(
        tls(&a.ca, Some(&a.client), false, true),
        "server.dc1.consul",
    );
    assert!(channels.tls().is_some());
    let got = call(&channels, &addr, "dc1", b"hi".to_vec(), TIMEOUT).await;
    assert_eq!(got.expect("call"), b"hi");

    // No client certificate: the server refuses the handshake; the request never left.
    let anonymous = Channels::with_tls(tls(&a.ca, None, false, true), "server.dc1.consul");
    match call(&anonymous, &addr, "dc1", b"x".to_vec(), TIMEOUT).await {
        Err(TransportError::Unreachable { reason, .. }) => {
            assert!(reason.contains("tls connect error"), "{reason}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }

    // The name asked for is the one checked: this server is no gateway of dc2.
    match call_named(
        &channels,
        &addr,
        "gateway.dc2.consul",
        "dc1",
        b"x".to_vec(),
        TIMEOUT,
    )
    .await
    {
        Err(TransportError::Unreachable { reason, .. }) => {
            assert!(reason.contains("not valid for name"), "{reason}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn without_verify_outgoing_channels_stay_plaintext() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = pki(dir.path(), "a");
    // The server takes plaintext (no verify_incoming); the client does not dial TLS.
    let (addr, _server) = serve(tls(&a.ca, Some(&a.server), false, false)).await;
    let channels = Channels::with_tls(
        tls(&a.ca, Some(&a.client), false, false),
        "server.dc1.consul",
    );
    assert!(channels.tls().is_none());
    let got = call(&channels, &addr.to_string(), "dc1", b"p".to_vec(), TIMEOUT).await;
    assert_eq!(got.expect("plaintext call"), b"p");
}

/// After a reload to another CA's client identity, the cached channel's live connection
/// still carries calls (a new connection with the new identity would be refused by this
/// server, so success means the connection was kept).
#[tokio::test]
async fn a_reload_keeps_cached_channels_and_their_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (pki(dir.path(), "a"), pki(dir.path(), "b"));
    let (addr, _server) = serve(tls(&a.ca, Some(&a.server), true, false)).await;
    let addr = addr.to_string();
    let client = tls(&a.ca, Some(&a.client), false, true);
    let channels = Channels::with_tls(client.clone(), "server.dc1.consul");
    assert_eq!(
        call(&channels, &addr, "dc1", b"1".to_vec(), TIMEOUT)
            .await
            .expect("first"),
        b"1"
    );

    client
        .reload_files(TlsFiles {
            ca_file: Some(b.ca.cert.clone()),
            cert_file: Some(b.client.cert.clone()),
            key_file: Some(b.client.key.clone()),
        })
        .expect("reload");
    assert_eq!(
        call(&channels, &addr, "dc1", b"2".to_vec(), TIMEOUT)
            .await
            .expect("kept"),
        b"2"
    );

    // A fresh cache with the reloaded context makes a new connection: refused.
    let fresh = Channels::with_tls(client, "server.dc1.consul");
    assert!(matches!(
        call(&fresh, &addr, "dc1", b"3".to_vec(), TIMEOUT).await,
        Err(TransportError::Unreachable { .. })
    ));
}

/// A `Forward` endpoint of dc1 behind `incoming` that admits only callers `peers` admits.
async fn serve_guarded(
    server_tls: TlsContext,
    peers: RequirePeer,
) -> (SocketAddr, tokio_util::sync::DropGuard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        let svc = InterceptedService::new(ForwardEndpoint::server("dc1".into(), Echo), peers);
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming_shutdown(
                incoming(listener, server_tls, Duration::from_secs(2)),
                stop.cancelled_owned(),
            )
            .await
            .expect("serve");
    });
    (addr, token.drop_guard())
}

#[tokio::test]
async fn a_role_check_admits_servers_and_gateways_by_certificate_name_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = pki(dir.path(), "a");
    let gw = create_cert(
        &dir.path().join("a"),
        &CertSpec::new(CertKind::Gateway, "dc2", "consul"),
        &a.ca,
    )
    .expect("gateway cert");
    let as_peer = |pair: &PemPair| {
        Channels::with_tls(tls(&a.ca, Some(pair), false, true), "server.dc1.consul")
    };
    let server_tls = || tls(&a.ca, Some(&a.server), true, false);

    // Raft's rule: a server certificate of dc1 is admitted, a client's is refused by name.
    let (addr, _s) = serve_guarded(server_tls(), RequirePeer::server("dc1", "consul")).await;
    let addr = addr.to_string();
    let ok = call(&as_peer(&a.server), &addr, "dc1", b"hi".to_vec(), TIMEOUT).await;
    assert_eq!(ok.expect("server admitted"), b"hi");
    match call(&as_peer(&a.client), &addr, "dc1", b"x".to_vec(), TIMEOUT).await {
        Err(TransportError::Protocol(why)) => {
            assert!(
                why.contains("server.dc1.consul") && why.contains("client.dc1.consul"),
                "{why}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The WAN port's rule: any DC's gateway, not a server or client.
    let (addr, _g) = serve_guarded(server_tls(), RequirePeer::gateway("consul")).await;
    let addr = addr.to_string();
    let ok = call(&as_peer(&gw), &addr, "dc1", b"hi".to_vec(), TIMEOUT).await;
    assert_eq!(ok.expect("gateway admitted"), b"hi");
    for who in [&a.server, &a.client] {
        let got = call(&as_peer(who), &addr, "dc1", b"x".to_vec(), TIMEOUT).await;
        assert!(matches!(got, Err(TransportError::Protocol(_))), "{got:?}");
    }
}
