//! Serving a gRPC router on a bound listener, the one way every RPC port is served (a
//! server's 8300, a gateway's LAN and WAN ports): TLS when the context has a certificate,
//! plaintext otherwise, with TCP_NODELAY on every accepted connection either way.

use meridian_tls::TlsContext;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Router, TcpIncoming};

/// Serves `router` on `listener` until `token` is cancelled; over TLS when `tls` has a
/// certificate (`serves_tls`).
pub async fn serve(
    router: Router,
    listener: TcpListener,
    tls: Option<TlsContext>,
    token: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    match tls.filter(TlsContext::serves_tls) {
        // meridian-tls sets TCP_NODELAY on each accepted stream itself.
        Some(tls) => {
            let incoming =
                meridian_tls::incoming(listener, tls, meridian_tls::DEFAULT_HANDSHAKE_TIMEOUT);
            router
                .serve_with_incoming_shutdown(incoming, token.cancelled_owned())
                .await
        }
        // Server::tcp_nodelay does not reach an incoming stream: set it on the stream, or
        // Nagle holds each small reply for the peer's delayed ACK (40 ms per request).
        None => {
            router
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    token.cancelled_owned(),
                )
                .await
        }
    }
}
