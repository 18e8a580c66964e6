//! The DNS interface on 8600 (UDP and TCP), Consul's names and answers
//! (reference/consul.md §1.9, §4.3).
//!
//! ```text
//!   UDP + TCP sockets (bound with the other listeners, before anything runs)
//!        │ hickory Server: framing, FORMERR for unparsable messages, per-request tasks
//!        ▼
//!   handler.rs  ConsulDns ── name.rs (what is asked) ── answer.rs (records) ── trim.rs (sizes)
//!        │                         └── recursor.rs (names outside the domains)
//!        ▼
//!   source.rs   the catalog through rpc::Router: a server's own state, or a server asked
//!               by a client agent
//! ```
//!
//! One owner per socket: hickory's server owns both and answers every request in its own
//! task, so a slow recursor never holds up catalog answers.

mod acl;
mod answer;
mod handler;
mod name;
mod recursor;
mod source;
mod trim;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

pub use handler::{ConsulDns, DnsStats, Settings};
pub use recursor::Recursors;
pub use source::Source;

/// How long a TCP client may stay silent before its connection is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// DNS sockets bound on every client address, not yet serving.
#[derive(Debug)]
pub struct BoundDns {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
    port: u16,
}

impl BoundDns {
    /// Binds UDP and TCP on `port` of each of `ips`. With port 0 the first UDP socket picks
    /// a port and every other socket takes the same one (another pick if one is taken).
    pub async fn bind(ips: &[IpAddr], port: u16) -> std::io::Result<Self> {
        let mut attempt = 0;
        loop {
            match Self::bind_once(ips, port).await {
                Err(e) if port == 0 && e.kind() == std::io::ErrorKind::AddrInUse && attempt < 8 => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn bind_once(ips: &[IpAddr], port: u16) -> std::io::Result<Self> {
        let mut out = Self {
            udp: Vec::new(),
            tcp: Vec::new(),
            port,
        };
        for &ip in ips {
            let udp = UdpSocket::bind(SocketAddr::new(ip, out.port)).await?;
            out.port = udp.local_addr()?.port();
            let tcp = TcpListener::bind(SocketAddr::new(ip, out.port)).await?;
            out.udp.push(udp);
            out.tcp.push(tcp);
        }
        Ok(out)
    }

    /// The port every socket listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves `handler` until `token` is cancelled.
    pub async fn serve(self, handler: ConsulDns, token: CancellationToken) -> std::io::Result<()> {
        let mut server = Server::new(handler);
        for s in self.udp {
            server.register_socket(s);
        }
        for l in self.tcp {
            server.register_listener(l, TCP_IDLE, 16);
        }
        tokio::select! {
            r = server.block_until_done() => r.map_err(std::io::Error::other),
            _ = token.cancelled() => {
                server.shutdown_gracefully().await.map_err(std::io::Error::other)
            }
        }
    }
}
