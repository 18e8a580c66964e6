//! Names outside the agent's domains go to the configured `recursors`, as in Consul: the
//! question is sent as it came (same ID, same flags) over the transport the client used,
//! to each recursor in turn (`sequential`, the default) or in random order (`random`),
//! each with `recursor_timeout`. The first answer wins; when every recursor fails the
//! caller answers SERVFAIL.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::proto::op::Message;
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The recursors and how to use them.
#[derive(Debug, Clone)]
pub struct Recursors {
    addrs: Vec<SocketAddr>,
    random: bool,
    timeout: Duration,
}

/// Why no recursor answered.
#[derive(Debug, thiserror::Error)]
pub enum RecursorError {
    /// None is configured.
    #[error("no recursors configured")]
    None,
    /// Every recursor failed; the last failure.
    #[error("every recursor failed; last: {0}")]
    AllFailed(String),
}

impl Recursors {
    /// `addrs` are `ip` (port 53) or `ip:port`; unparsable entries were refused by config
    /// validation and are skipped here.
    pub fn new(addrs: &[String], strategy: &str, timeout: Duration) -> Self {
        let addrs = addrs
            .iter()
            .filter_map(|a| {
                a.parse::<SocketAddr>()
                    .ok()
                    .or_else(|| a.parse().ok().map(|ip| SocketAddr::new(ip, 53)))
            })
            .collect();
        Self {
            addrs,
            random: strategy == "random",
            timeout,
        }
    }

    /// Whether any recursor is configured (Consul's `RA` flag).
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// Asks the recursors `query` (the client's raw message), over TCP if `tcp`.
    pub async fn ask(&self, query: &[u8], tcp: bool) -> Result<Message, RecursorError> {
        if self.addrs.is_empty() {
            return Err(RecursorError::None);
        }
        let mut order = self.addrs.clone();
        if self.random {
            order.shuffle(&mut rand::rng());
        }
        let mut last = String::new();
        for addr in order {
            let attempt = tokio::time::timeout(self.timeout, exchange(addr, query, tcp)).await;
            match attempt {
                Ok(Ok(bytes)) => match Message::from_vec(&bytes) {
                    Ok(msg) => return Ok(msg),
                    Err(e) => last = format!("{addr}: undecodable answer: {e}"),
                },
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: no answer within {:?}", self.timeout),
            }
            tracing::debug!(recursor = %addr, cause = %last, "recursor failed");
        }
        Err(RecursorError::AllFailed(last))
    }
}

/// One request/response with one recursor.
async fn exchange(addr: SocketAddr, query: &[u8], tcp: bool) -> std::io::Result<Vec<u8>> {
    if tcp {
        let mut s = TcpStream::connect(addr).await?;
        let len = u16::try_from(query.len())
            .map_err(|_| std::io::Error::other("query longer than 65535 bytes"))?;
        s.write_all(&len.to_be_bytes()).await?;
        s.write_all(query).await?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).await?;
        return Ok(buf);
    }
    let bind: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(addr).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 65535];
    // A connected socket only receives from `addr`; a reply to another question (wrong ID)
    // is skipped.
    loop {
        let n = sock.recv(&mut buf).await?;
        if n >= 2 && query.len() >= 2 && buf[..2] == query[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}
