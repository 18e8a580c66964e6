//! The server RPC listener (port 8300): one TCP socket, bound before gossip starts so the
//! real port (tests bind port 0) goes into the member tags, serving the raft and forward
//! gRPC services until the agent stops. With a TLS certificate configured it accepts
//! through `meridian_tls::incoming` (TLS, and plaintext only without `verify_incoming`), and
//! with `verify_server_hostname` raft admits only servers' certificates (`RequirePeer`).

use std::net::SocketAddr;

use meridian_proto::v1::forward_server::ForwardServer;
use meridian_proto::v1::raft_server::RaftServer;
use meridian_tls::TlsContext;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::raft_rpc::RaftService;
use crate::server::forward_handler::ForwardHandler;
use meridian_rpc::{ForwardEndpoint, RequirePeer};
use tonic::service::interceptor::InterceptedService;

/// The bound, not yet serving, RPC socket.
#[derive(Debug)]
pub struct RpcListener {
    listener: TcpListener,
    /// Serve TLS when this context has a certificate.
    tls: Option<TlsContext>,
}

impl RpcListener {
    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
            tls: None,
        })
    }

    /// Serves TLS with `tls` (when it has a certificate) instead of plaintext.
    pub fn with_tls(mut self, tls: Option<TlsContext>) -> Self {
        self.tls = tls;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves raft and forwarding until `token` is cancelled. Raft admits only callers
    /// `raft_peers` admits (with `verify_server_hostname`: `server.<dc>.<domain>`);
    /// forwarding admits every caller the handshake did (clients, gateways, servers).
    pub async fn serve(
        self,
        raft: RaftServer<RaftService>,
        raft_peers: RequirePeer,
        forward: ForwardServer<ForwardEndpoint<ForwardHandler>>,
        token: CancellationToken,
    ) -> Result<(), tonic::transport::Error> {
        let router = tonic::transport::Server::builder()
            .add_service(InterceptedService::new(raft, raft_peers))
            .add_service(forward);
        meridian_rpc::serve(router, self.listener, self.tls, token).await
    }
}
