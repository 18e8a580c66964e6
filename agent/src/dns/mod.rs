//! The DNS interface on 8600 (UDP and TCP), Consul's names and answers
//! (reference/consul.md §1.9, §4.3).
//!
//! ```text
//!   UDP: SO_REUSEPORT sockets, one per CPU, a thread each (udp.rs)   TCP: tcp.rs
//!        │ answer cache first (cache.rs: query bytes → reply, reshuffled per hit)
//!        │ miss: raw.rs (hickory's parse, FORMERR) ──▶ the handler on the runtime
//!        ▼
//!   handler.rs  ConsulDns ── name.rs (what is asked) ── answer.rs (records) ── trim.rs (sizes)
//!        │                         └── recursor.rs (names outside the domains)
//!        ▼
//!   source.rs   the catalog through rpc::Router: a server's own state, or a server asked
//!               by a client agent
//! ```
//!
//! Every miss is answered in its own task, so a slow recursor never holds up catalog
//! answers on UDP; a TCP connection is answered in order, as Consul's.

mod acl;
mod answer;
mod cache;
mod handler;
mod name;
mod raw;
mod recursor;
mod source;
mod tcp;
mod trim;
mod udp;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use handler::{ConsulDns, DnsStats, Settings};
pub use recursor::Recursors;
pub use source::Source;

/// How long a TCP client may stay silent before its connection is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// DNS sockets bound on every client address, not yet serving.
#[derive(Debug)]
pub struct BoundDns {
    /// Per address, its `SO_REUSEPORT` group (one socket per CPU).
    udp: Vec<std::net::UdpSocket>,
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
        let per_address = udp::sockets_per_address();
        for &ip in ips {
            let group = udp::bind_reuseport(SocketAddr::new(ip, out.port), per_address)?;
            if let Some(first) = group.first() {
                out.port = first.local_addr()?.port();
            }
            let tcp = TcpListener::bind(SocketAddr::new(ip, out.port)).await?;
            out.udp.extend(group);
            out.tcp.push(tcp);
        }
        Ok(out)
    }

    /// The port every socket listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves `handler` until `token` is cancelled; returns once every socket is closed.
    pub async fn serve(self, handler: ConsulDns, token: CancellationToken) -> std::io::Result<()> {
        let mut udp_loops = Vec::new();
        for s in self.udp {
            udp_loops.push(udp::spawn(s, handler.clone(), token.clone())?);
        }
        let mut tcp_loops = Vec::new();
        for l in self.tcp {
            let serve = tcp::serve(l, handler.clone(), TCP_IDLE, token.clone());
            tcp_loops.push(tokio::spawn(serve));
        }
        token.cancelled().await;
        for h in udp_loops.into_iter().chain(tcp_loops) {
            h.await.map_err(std::io::Error::other)?;
        }
        Ok(())
    }
}
