//! The client side: [`TlsConnector`], a tower `Service<Uri>` for tonic's
//! `Endpoint::connect_with_connector_lazy` that dials TCP and handshakes TLS with the client
//! configuration current at that moment and a fixed server name (`server.dc1.consul`,
//! `gateway.dc2.consul`).
//!
//! It then waits for the server's first bytes (HTTP/2 servers speak first: their SETTINGS
//! frame). Under TLS 1.3 a client's handshake is complete before the server has looked at
//! the client certificate, so a server that refuses it only says so afterwards, with an
//! alert; waiting here turns that refusal into a connect error, and a connect error means
//! the request was never sent (tonic reports it as `Unavailable` with this error's text,
//! which always contains "connect error").
//!
//! ```text
//!  call(uri) ─▶ TCP connect ─▶ rustls handshake (SNI = server_name) ─▶ first bytes? ─▶ TlsClientIo
//!                  │ "tcp connect error"      │ "tls connect error"        │ "tls connect error"
//! ```

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tonic::transport::Uri;

use crate::context::TlsContext;

/// What a [`TlsConnector`] hands to hyper: the TLS stream, with whatever the server sent
/// first kept in the buffer.
pub type TlsClientIo = TokioIo<BufReader<tokio_rustls::client::TlsStream<TcpStream>>>;

/// Why a TLS connection could not be made. Every message contains "connect error": the
/// request was never sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The TCP connection failed.
    #[error("tcp connect error: {addr}: {source}")]
    Tcp {
        /// `host:port` dialled.
        addr: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed: the server's certificate is untrusted or not valid for the
    /// name, or the server is not speaking TLS.
    #[error("tls connect error: {addr}: handshake failed: {source}")]
    Handshake {
        /// `host:port` dialled.
        addr: String,
        /// rustls' reason.
        #[source]
        source: io::Error,
    },
    /// The server closed the connection or sent an alert right after the handshake: it
    /// refused this client's certificate (or the lack of one).
    #[error("tls connect error: {addr}: the server refused this client: {source}")]
    Refused {
        /// `host:port` dialled.
        addr: String,
        /// The alert or close.
        #[source]
        source: io::Error,
    },
    /// Connecting took longer than the connector's timeout.
    #[error("tls connect error: {addr}: timed out after {timeout:?}")]
    Timeout {
        /// `host:port` dialled.
        addr: String,
        /// The limit.
        timeout: Duration,
    },
    /// The server name to verify is not a DNS name or IP address.
    #[error("tls connect error: {name:?} is not a valid server name")]
    ServerName {
        /// The name.
        name: String,
    },
    /// The context has no client configuration (`verify_outgoing` is off).
    #[error("tls connect error: outgoing TLS is not configured (verify_outgoing is off)")]
    NotConfigured,
    /// The URI names no `host:port`.
    #[error("tls connect error: {uri} names no host and port")]
    BadUri {
        /// The URI.
        uri: String,
    },
}

impl ConnectError {
    /// Whether the peer was reached but refused the TLS session (as opposed to not being
    /// reachable at all).
    pub fn is_tls_refusal(&self) -> bool {
        matches!(
            self,
            ConnectError::Handshake { .. } | ConnectError::Refused { .. }
        )
    }
}

/// Dials TLS connections to one server name with a [`TlsContext`]'s current client
/// configuration. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsConnector {
    tls: TlsContext,
    server_name: String,
    timeout: Duration,
}

impl TlsConnector {
    /// A connector that verifies peers as `server_name` and gives up on a connection after
    /// `timeout` (TCP, handshake and the server's first bytes together).
    pub fn new(tls: TlsContext, server_name: impl Into<String>, timeout: Duration) -> Self {
        TlsConnector {
            tls,
            server_name: server_name.into(),
            timeout,
        }
    }

    /// The name peers are verified as.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }
}

impl tower_service::Service<Uri> for TlsConnector {
    type Response = TlsClientIo;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsClientIo, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (tls, name, timeout) = (self.tls.clone(), self.server_name.clone(), self.timeout);
        Box::pin(async move {
            let addr = match (uri.host(), uri.port_u16()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                _ => {
                    return Err(ConnectError::BadUri {
                        uri: uri.to_string(),
                    });
                }
            };
            let server_name = ServerName::try_from(name.clone())
                .map_err(|_| ConnectError::ServerName { name })?;
            let config = tls.client_config().ok_or(ConnectError::NotConfigured)?;
            tokio::time::timeout(timeout, connect(&addr, server_name, config))
                .await
                .unwrap_or(Err(ConnectError::Timeout { addr, timeout }))
        })
    }
}

async fn connect(
    addr: &str,
    name: ServerName<'static>,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> Result<TlsClientIo, ConnectError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|source| ConnectError::Tcp {
            addr: addr.to_string(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|source| ConnectError::Handshake {
            addr: addr.to_string(),
            source,
        })?;
    let mut io = BufReader::new(stream);
    let refused = |source| ConnectError::Refused {
        addr: addr.to_string(),
        source,
    };
    let first = io.fill_buf().await.map_err(refused)?;
    if first.is_empty() {
        return Err(refused(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed right after the handshake",
        )));
    }
    Ok(TokioIo::new(io))
}
