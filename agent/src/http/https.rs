//! The HTTPS API: the same router as plain HTTP, served over TLS on `ports.https`
//! (`addresses.https`, else `client_addr`) with the certificates of `tls.https` (else
//! `tls.defaults`). Handshakes run off the accept loop in `meridian_tls::incoming`, under
//! Consul's 5 s handshake deadline; plaintext, untrusted or missing client certificates
//! (with `verify_incoming`) are refused, counted and logged once per peer. ALPN offers `h2`
//! and `http/1.1`; certificates reload on SIGHUP without dropping live connections.
//!
//! ```text
//!  TcpListener ─▶ meridian_tls::incoming ─ handshaken RpcStream ─▶ TlsListener ─▶ axum::serve
//! ```

use std::io;
use std::net::SocketAddr;

use futures::{Stream, StreamExt};
use meridian_tls::{DEFAULT_HANDSHAKE_TIMEOUT, RpcStream, TlsContext};
use tokio::net::TcpListener;
use tonic::transport::server::Connected;

/// Handshaken TLS connections as an axum listener.
struct TlsListener<S> {
    incoming: S,
    local: SocketAddr,
}

impl<S> axum::serve::Listener for TlsListener<S>
where
    S: Stream<Item = Result<RpcStream, io::Error>> + Send + Unpin + 'static,
{
    type Io = RpcStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (RpcStream, SocketAddr) {
        loop {
            match self.incoming.next().await {
                Some(Ok(stream)) => {
                    let peer = stream
                        .connect_info()
                        .tcp
                        .remote_addr
                        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                    return (stream, peer);
                }
                // `incoming` logs and counts refusals itself and yields no errors today;
                // should it, the next connection is as good.
                Some(Err(_)) => continue,
                // The accept task ends only when this listener is dropped.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then drains.
pub(super) async fn serve(
    listener: TcpListener,
    tls: TlsContext,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let incoming = meridian_tls::incoming(listener, tls, DEFAULT_HANDSHAKE_TIMEOUT);
    // `router` is already eager (see `super::serve`): one `Arc` clone per connection.
    axum::serve(TlsListener { incoming, local }, router.into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
}
