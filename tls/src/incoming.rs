//! The server side: [`incoming`] turns a bound `TcpListener` into a stream of accepted
//! connections for `tonic::transport::Server::serve_with_incoming_shutdown` (or the HTTPS
//! API's axum server), each one TLS (with the server configuration current when it was
//! accepted) or, on an RPC port without `verify_incoming`, plaintext as Consul allows.
//!
//! Each connection is classified and handshaken in its own task under a deadline, so a slow
//! or hostile peer never holds up the accept loop. A refused connection (untrusted or no
//! client certificate, plaintext under `verify_incoming`, garbage, a stalled handshake) is
//! closed, counted in [`TlsContext::handshake_failures`] and logged once per peer address;
//! nothing here panics on what a peer sends.
//!
//! ```text
//!  accept ─▶ spawn ─▶ peek 1st byte ─┬─ 0x16 ─▶ rustls accept ─ ok ──▶ RpcStream::Tls ──▶ tonic
//!    ▲                               ├─ other, !verify_incoming ─────▶ RpcStream::Plain ─▶ tonic
//!    └── loop until tonic drops      └─ other, verify_incoming / error / timeout ─▶ refused, counted
//! ```

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tracing::{debug, warn};

use crate::context::TlsContext;

/// Consul's `limits.rpc_handshake_timeout` default: how long a peer has to complete its
/// TLS handshake (or send its first byte).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The first byte of a TLS ClientHello record (content type `handshake`).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// Handshaken connections waiting for tonic to take them.
const READY_BACKLOG: usize = 64;
/// Pause after a failed `accept` (out of file descriptors, say) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// An accepted RPC connection: TLS, or plaintext when the server does not require TLS.
#[derive(Debug)]
#[non_exhaustive]
pub enum RpcStream {
    /// A plaintext connection (only when `verify_incoming` is off).
    Plain(TcpStream),
    /// A TLS connection, handshake complete.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Why an incoming connection was refused.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("plaintext connection, but this port requires TLS (HTTPS, or verify_incoming)")]
    Plaintext,
    #[error("a TLS client, but this server has no certificate (cert_file, key_file)")]
    NoCertificate,
    #[error("{0}")]
    Handshake(io::Error),
    #[error("no TLS handshake within {0:?}")]
    Timeout(Duration),
}

/// The accepted connections of `listener`, for `serve_with_incoming_shutdown`. Must be
/// called inside a Tokio runtime: the accept loop runs in its own task and ends (closing
/// the listener) when the returned stream is dropped, which tonic does as soon as its
/// shutdown signal fires.
pub fn incoming(
    listener: TcpListener,
    tls: TlsContext,
    handshake_timeout: Duration,
) -> impl Stream<Item = Result<RpcStream, io::Error>> + Send + Unpin + 'static {
    let (ready_tx, ready_rx) = mpsc::channel(READY_BACKLOG);
    tokio::spawn(accept_loop(listener, tls, handshake_timeout, ready_tx));
    ReceiverStream::new(ready_rx)
}

async fn accept_loop(
    listener: TcpListener,
    tls: TlsContext,
    handshake_timeout: Duration,
    ready_tx: mpsc::Sender<Result<RpcStream, io::Error>>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = ready_tx.closed() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((tcp, peer)) => {
                // Raft heartbeats are small writes; Nagle would delay them.
                let _ = tcp.set_nodelay(true);
                tokio::spawn(handle_conn(
                    tcp,
                    peer,
                    tls.clone(),
                    handshake_timeout,
                    ready_tx.clone(),
                ));
            }
            Err(e) => {
                warn!(cause = %e, kind = tls.purpose().label(), "accepting a connection failed");
                tokio::select! {
                    _ = ready_tx.closed() => return,
                    _ = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => {}
                }
            }
        }
    }
}

/// Classifies and handshakes one connection; hands it to tonic or refuses it.
async fn handle_conn(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: TlsContext,
    handshake_timeout: Duration,
    ready_tx: mpsc::Sender<Result<RpcStream, io::Error>>,
) {
    let outcome = tokio::time::timeout(handshake_timeout, establish(tcp, &tls))
        .await
        .unwrap_or(Err(Refused::Timeout(handshake_timeout)));
    match outcome {
        Ok(Some(stream)) => {
            // Fails only when the server stopped; the connection is then dropped.
            let _ = ready_tx.send(Ok(stream)).await;
        }
        // A TCP connect and close (a port check): nothing was attempted, nothing to count.
        Ok(None) => {
            debug!(peer = %peer, kind = tls.purpose().label(), "connection closed before sending anything")
        }
        Err(reason) => tls.record_failure(peer, &reason),
    }
}

async fn establish(tcp: TcpStream, tls: &TlsContext) -> Result<Option<RpcStream>, Refused> {
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await.map_err(Refused::Handshake)? == 0 {
        return Ok(None);
    }
    if first[0] != TLS_HANDSHAKE_RECORD {
        if tls.requires_tls() {
            return Err(Refused::Plaintext);
        }
        return Ok(Some(RpcStream::Plain(tcp)));
    }
    let config = tls.server_config().ok_or(Refused::NoCertificate)?;
    let stream = TlsAcceptor::from(config)
        .accept(tcp)
        .await
        .map_err(Refused::Handshake)?;
    Ok(Some(RpcStream::Tls(Box::new(stream))))
}

// === impl RpcStream ===

impl RpcStream {
    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, RpcStream::Tls(_))
    }

    /// The certificates the peer presented (TLS with a client certificate only).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        match self {
            RpcStream::Plain(_) => None,
            RpcStream::Tls(s) => s.get_ref().1.peer_certificates(),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            RpcStream::Plain(s) => s,
            RpcStream::Tls(s) => s.get_ref().0,
        }
    }
}

/// What tonic puts in the extensions of every request on a connection from [`incoming`]
/// (read it with [`connect_info`] and [`remote_addr`]).
#[derive(Debug, Clone)]
pub struct RpcConnectInfo {
    /// Local and peer addresses.
    pub tcp: TcpConnectInfo,
    /// The DNS names the peer's client certificate is valid for (`server.dc1.consul`,
    /// `localhost`); `None` for plaintext, or TLS without a client certificate (both only
    /// possible without `verify_incoming`).
    pub peer_names: Option<Arc<[String]>>,
}

/// The connection facts of a request served through [`incoming`].
pub fn connect_info<T>(req: &tonic::Request<T>) -> Option<&RpcConnectInfo> {
    req.extensions().get::<RpcConnectInfo>()
}

/// The peer address of a request, whether it came through [`incoming`] or a plain
/// `TcpIncoming` (tonic's `Request::remote_addr` knows only the latter).
pub fn remote_addr<T>(req: &tonic::Request<T>) -> Option<SocketAddr> {
    connect_info(req)
        .and_then(|c| c.tcp.remote_addr)
        .or_else(|| req.remote_addr())
}

/// The DNS names in the SAN of `cert` (none if it does not parse: it was verified already,
/// so that does not happen with a certificate rustls accepted).
fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    webpki::EndEntityCert::try_from(cert)
        .map(|c| c.valid_dns_names().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The addresses, and the names of the peer's certificate, computed once per connection.
impl Connected for RpcStream {
    type ConnectInfo = RpcConnectInfo;

    fn connect_info(&self) -> RpcConnectInfo {
        let tcp = self.tcp();
        RpcConnectInfo {
            tcp: TcpConnectInfo {
                local_addr: tcp.local_addr().ok(),
                remote_addr: tcp.peer_addr().ok(),
            },
            peer_names: self
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|leaf| dns_names(leaf).into()),
        }
    }
}

impl AsyncRead for RpcStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RpcStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            RpcStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for RpcStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            RpcStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            RpcStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            RpcStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            RpcStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            RpcStream::Plain(s) => s.is_write_vectored(),
            RpcStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RpcStream::Plain(s) => Pin::new(s).poll_flush(cx),
            RpcStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RpcStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            RpcStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
