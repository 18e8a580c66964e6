//! Lazily connected gRPC channels by peer address, shared by every RPC a process sends
//! (raft between servers, forwarding) so each peer has one HTTP/2 connection.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};

/// Largest message accepted or sent (raft snapshots travel whole).
pub const MAX_MESSAGE: usize = 1 << 30;
/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Channels by `host:port`.
#[derive(Debug, Default)]
pub struct Channels(Mutex<HashMap<String, Channel>>);

impl Channels {
    /// The channel to `addr` (`host:port`), created on first use.
    pub fn get(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut map = self.0.lock();
        if let Some(ch) = map.get(addr) {
            return Ok(ch.clone());
        }
        let ch = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .connect_lazy();
        map.insert(addr.to_string(), ch.clone());
        Ok(ch)
    }
}
