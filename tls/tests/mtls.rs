//! Mutual TLS over real sockets with certificates from this crate's generator: a tonic
//! `Forward` server behind `incoming`, clients through `TlsConnector`. Refusals must be
//! refused, counted and survived; a reload must keep live connections and give new ones
//! the new certificate.

mod support;

use support::{
    Pki, client_tls, copy, echo, plain_channel, serve, server_tls, tls_channel, wait_until,
};

/// The SHA-256 fingerprint of a PEM certificate file as `openssl x509 -noout -fingerprint
/// -sha256` prints it, computed here with x509-parser's DER and ring.
fn fingerprint(path: &std::path::Path) -> String {
    let pem = std::fs::read(path).expect("read cert");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("pem");
    let digest = ring::digest::digest(&ring::digest::SHA256, &pem.contents);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A server requiring client certificates and a client presenting one, both from one CA,
/// with full hostname verification: the call goes through over TLS.
#[tokio::test]
async fn mtls_round_trip_with_generated_certs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path(), "a");
    let stls = server_tls(pki.files(Some(&pki.server)), true);
    let server = serve(stls.clone()).await;
    let ctls = client_tls(pki.files(Some(&pki.client)), true);
    let ch = tls_channel(server.addr, &ctls, "server.dc1.consul");
    assert_eq!(echo(&ch, b"ping").await.expect("echo"), b"ping");
    assert_eq!(stls.handshake_failures(), 0);
}

/// Under verify_incoming, a TLS client without a certificate and a plaintext client are
/// both refused before any request is served (tonic: Unavailable, "connect error" for the
/// TLS one), each refusal is counted, and the server keeps serving good clients.
#[tokio::test]
async fn a_client_without_a_certificate_is_refused_counted_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path(), "a");
    let stls = server_tls(pki.files(Some(&pki.server)), true);
    let server = serve(stls.clone()).await;

    let anonymous = client_tls(pki.files(None), true);
    let err = echo(
        &tls_channel(server.addr, &anonymous, "server.dc1.consul"),
        b"x",
    )
    .await
    .expect_err("a client without a certificate must be refused");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains("connect error"), "{err:?}");
    wait_until("the refusal to be counted", || {
        stls.handshake_failures() >= 1
    })
    .await;

    let before = stls.handshake_failures();
    let err = echo(&plain_channel(server.addr), b"x")
        .await
        .expect_err("plaintext must be refused under verify_incoming");
    assert_ne!(err.code(), tonic::Code::Ok);
    wait_until("the plaintext refusal to be counted", || {
        stls.handshake_failures() > before
    })
    .await;

    let good = client_tls(pki.files(Some(&pki.client)), true);
    let ch = tls_channel(server.addr, &good, "server.dc1.consul");
    assert_eq!(echo(&ch, b"still here").await.expect("echo"), b"still here");
}

/// Without verify_incoming the RPC port takes plaintext and TLS alike (Consul's rollout
/// mode), and a TLS client needs no certificate.
#[tokio::test]
async fn without_verify_incoming_plaintext_and_anonymous_tls_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path(), "a");
    let stls = server_tls(pki.files(Some(&pki.server)), false);
    let server = serve(stls.clone()).await;
    assert_eq!(
        echo(&plain_channel(server.addr), b"p")
            .await
            .expect("plain"),
        b"p"
    );
    let anonymous = client_tls(pki.files(None), true);
    let ch = tls_channel(server.addr, &anonymous, "server.dc1.consul");
    assert_eq!(echo(&ch, b"t").await.expect("tls"), b"t");
    assert_eq!(stls.handshake_failures(), 0);
}

/// A certificate from another CA is refused both ways: the server refuses a client
/// certificate it cannot chain, and a client refuses a server certificate it cannot chain
/// (even when it does not check names).
#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    let stls = server_tls(a.files(Some(&a.server)), true);
    let server = serve(stls.clone()).await;

    // Trusts the server (CA a) but presents a certificate of CA b.
    let mut files = a.files(Some(&b.client));
    files.ca_file = Some(a.ca.cert.clone());
    let stranger = client_tls(files, true);
    let err = echo(
        &tls_channel(server.addr, &stranger, "server.dc1.consul"),
        b"x",
    )
    .await
    .expect_err("a client certificate of another CA must be refused");
    assert!(err.message().contains("connect error"), "{err:?}");
    wait_until("the refusal to be counted", || {
        stls.handshake_failures() >= 1
    })
    .await;

    // Trusts only CA b: the server's certificate is unknown to it.
    let wary = client_tls(b.files(Some(&b.client)), false);
    let err = echo(&tls_channel(server.addr, &wary, "server.dc1.consul"), b"x")
        .await
        .expect_err("a server certificate of another CA must be refused");
    assert!(err.message().contains("connect error"), "{err:?}");
    assert!(err.message().contains("UnknownIssuer"), "{err:?}");
}

/// The name dialled must match the server certificate only under verify_server_hostname:
/// `server.dc2.consul` against a `server.dc1.consul` certificate is refused with it and
/// accepted without it (the chain is still checked).
#[tokio::test]
async fn a_wrong_server_name_is_refused_only_with_verify_server_hostname() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path(), "a");
    let server = serve(server_tls(pki.files(Some(&pki.server)), true)).await;

    let strict = client_tls(pki.files(Some(&pki.client)), true);
    let err = echo(
        &tls_channel(server.addr, &strict, "server.dc2.consul"),
        b"x",
    )
    .await
    .expect_err("a certificate for another name must be refused");
    assert!(err.message().contains("connect error"), "{err:?}");
    assert!(err.message().contains("not valid for name"), "{err:?}");

    let lax = client_tls(pki.files(Some(&pki.client)), false);
    let ch = tls_channel(server.addr, &lax, "server.dc2.consul");
    assert_eq!(echo(&ch, b"ok").await.expect("echo"), b"ok");
}

/// A reload swaps the server to a certificate of a new CA: the connection made before it
/// keeps working (a new one from that client would now fail), new connections get the new
/// certificate, and a reload from a broken file changes nothing and names the file.
#[tokio::test]
async fn reload_keeps_live_connections_and_new_ones_see_the_new_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    // The server reads copies, replaced in place as a renewal would.
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).expect("live dir");
    let files = meridian_tls::TlsFiles {
        ca_file: Some(live.join("ca.pem")),
        cert_file: Some(live.join("server.pem")),
        key_file: Some(live.join("server-key.pem")),
    };
    let install = |p: &Pki| {
        copy(&p.ca.cert, files.ca_file.as_deref().expect("ca"));
        copy(&p.server.cert, files.cert_file.as_deref().expect("cert"));
        copy(&p.server.key, files.key_file.as_deref().expect("key"));
    };
    install(&a);
    let stls = server_tls(files.clone(), true);
    let server = serve(stls.clone()).await;

    let old_client = client_tls(a.files(Some(&a.client)), true);
    let kept = tls_channel(server.addr, &old_client, "server.dc1.consul");
    assert_eq!(
        echo(&kept, b"before").await.expect("before reload"),
        b"before"
    );

    let held = |p: &Pki| meridian_tls::Fingerprints {
        cert: Some(fingerprint(&p.server.cert)),
        cas: vec![fingerprint(&p.ca.cert)],
    };
    assert_eq!(stls.fingerprints(), held(&a));
    install(&b);
    stls.reload().expect("reload");
    assert_eq!(stls.reloads(), 1);
    assert_eq!(stls.fingerprints(), held(&b), "the reload's files");

    // Same channel, same HTTP/2 connection: still served.
    assert_eq!(
        echo(&kept, b"after").await.expect("kept connection"),
        b"after"
    );
    // A new connection from a client of CA a now fails: the server presents CA b's cert.
    let fresh_old = tls_channel(server.addr, &old_client, "server.dc1.consul");
    let err = echo(&fresh_old, b"x")
        .await
        .expect_err("old CA on a new connection");
    assert!(err.message().contains("UnknownIssuer"), "{err:?}");
    // A client of CA b connects.
    let new_client = client_tls(b.files(Some(&b.client)), true);
    let ch = tls_channel(server.addr, &new_client, "server.dc1.consul");
    assert_eq!(echo(&ch, b"new").await.expect("new CA"), b"new");

    // A broken certificate file: the reload fails naming it, and nothing changes.
    std::fs::write(
        files.cert_file.as_deref().expect("cert"),
        "not a certificate",
    )
    .expect("write");
    let err = stls
        .reload()
        .expect_err("a broken file must fail the reload");
    assert_eq!(err.path(), files.cert_file.as_deref(), "{err}");
    assert!(err.to_string().contains("server.pem"), "{err}");
    assert_eq!(stls.reloads(), 1);
    assert_eq!(
        stls.fingerprints(),
        held(&b),
        "a failed reload changes nothing"
    );
    let again = tls_channel(server.addr, &new_client, "server.dc1.consul");
    assert_eq!(
        echo(&again, b"still b").await.expect("after failed reload"),
        b"still b"
    );
    assert_eq!(
        echo(&kept, b"still kept").await.expect("kept"),
        b"still kept"
    );
}

/// A client context's reload gives its new connections the new client certificate.
#[tokio::test]
async fn a_client_reload_presents_the_new_certificate_on_new_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (Pki::new(dir.path(), "a"), Pki::new(dir.path(), "b"));
    let server = serve(server_tls(b.files(Some(&b.server)), true)).await;
    let ctls = client_tls(a.files(Some(&a.client)), true);
    let err = echo(&tls_channel(server.addr, &ctls, "server.dc1.consul"), b"x")
        .await
        .expect_err("CA a client against a CA b server");
    assert!(err.message().contains("connect error"), "{err:?}");
    ctls.reload_files(b.files(Some(&b.client)))
        .expect("client reload");
    let ch = tls_channel(server.addr, &ctls, "server.dc1.consul");
    assert_eq!(echo(&ch, b"b").await.expect("after client reload"), b"b");
}

/// A peer that connects and sends nothing does not hold up other connections (each
/// handshake runs in its own task); when its handshake deadline passes it is refused and
/// counted.
#[tokio::test]
async fn a_stalled_peer_does_not_block_accepts_and_times_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path(), "a");
    let stls = server_tls(pki.files(Some(&pki.server)), true);
    let server = serve(stls.clone()).await;
    let _stalled = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let good = client_tls(pki.files(Some(&pki.client)), true);
    let ch = tls_channel(server.addr, &good, "server.dc1.consul");
    let started = tokio::time::Instant::now();
    assert_eq!(echo(&ch, b"x").await.expect("echo"), b"x");
    // The server's handshake deadline is 2 s (support::serve): well under it.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "blocked for {:?}",
        started.elapsed()
    );
    assert_eq!(stls.handshake_failures(), 0);
    wait_until("the stalled peer to time out", || {
        stls.handshake_failures() == 1
    })
    .await;
}
