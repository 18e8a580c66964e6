//! Lazily connected gRPC channels by peer address (and, under TLS, the server name the peer
//! must prove), shared by every RPC a process sends (raft between servers, forwarding) so
//! each peer has one HTTP/2 connection.
//!
//! Plaintext by default. [`Channels::with_tls`] dials through `meridian-tls`'s connector:
//! every new connection takes the client configuration current at that moment, so a TLS
//! reload never touches the cache: live HTTP/2 connections keep running, reconnects and new
//! peers use the new certificates.

use std::collections::HashMap;
use std::time::Duration;

use meridian_tls::{TlsConnector, TlsContext};
use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};

/// Largest message accepted or sent (raft snapshots travel whole).
pub const MAX_MESSAGE: usize = 1 << 30;
/// How long connecting to a peer may take (TCP, and under TLS the handshake too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// HTTP/2 ping interval, and how long a ping may go unanswered.
const KEEPALIVE: Duration = Duration::from_secs(5);

/// Channels by `host:port` (and server name under TLS).
#[derive(Debug, Default)]
pub struct Channels {
    /// Keyed by `(addr, server name)`; the name is empty for plaintext channels.
    map: Mutex<HashMap<(String, String), Channel>>,
    tls: Option<ChannelTls>,
}

#[derive(Debug)]
struct ChannelTls {
    ctx: TlsContext,
    /// The name [`Channels::get`] verifies peers as.
    default_name: String,
}

impl Channels {
    /// Plaintext channels (what `Default` gives).
    pub fn new() -> Self {
        Self::default()
    }

    /// Channels that dial over TLS with `tls` when it dials TLS at all (`verify_outgoing`);
    /// plaintext otherwise. [`Channels::get`] verifies peers as `default_server_name`: a
    /// process built this way talks to one kind of peer by default, a server agent to the
    /// servers of its own datacenter (`server.<dc>.<domain>`). Callers that dial something
    /// else (a gateway, another datacenter) name it with [`Channels::get_named`].
    pub fn with_tls(tls: TlsContext, default_server_name: impl Into<String>) -> Self {
        if !tls.dials_tls() {
            return Self::default();
        }
        Channels {
            map: Mutex::default(),
            tls: Some(ChannelTls {
                ctx: tls,
                default_name: default_server_name.into(),
            }),
        }
    }

    /// The TLS context outgoing connections use, if they use one.
    pub fn tls(&self) -> Option<&TlsContext> {
        self.tls.as_ref().map(|t| &t.ctx)
    }

    /// The channel to `addr` (`host:port`), created on first use; under TLS the peer must
    /// prove the default server name.
    pub fn get(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        match &self.tls {
            Some(t) => self.get_named(addr, &t.default_name),
            None => self.get_named(addr, ""),
        }
    }

    /// The channel to `addr` whose peer must prove `server_name` under TLS (e.g.
    /// `server.dc1.consul`, `gateway.dc2.consul`); without TLS the name is ignored and
    /// the plain channel to `addr` is returned.
    pub fn get_named(
        &self,
        addr: &str,
        server_name: &str,
    ) -> Result<Channel, tonic::transport::Error> {
        let name = match &self.tls {
            Some(_) => server_name,
            None => "",
        };
        let key = (addr.to_string(), name.to_string());
        let mut map = self.map.lock();
        if let Some(ch) = map.get(&key) {
            return Ok(ch.clone());
        }
        // Pings every 5 s, also while idle, and a connection whose ping goes unanswered for
        // 5 s is dropped: after a WAN or peer outage the next request reconnects instead of
        // waiting on TCP's retransmission backoff.
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_timeout(KEEPALIVE)
            .keep_alive_while_idle(true);
        let ch = match &self.tls {
            // The connector applies the connect timeout itself, so a timeout is a connect
            // error too (the request was never sent).
            Some(t) => endpoint.connect_with_connector_lazy(TlsConnector::new(
                t.ctx.clone(),
                name,
                CONNECT_TIMEOUT,
            )),
            None => endpoint.connect_timeout(CONNECT_TIMEOUT).connect_lazy(),
        };
        map.insert(key, ch.clone());
        Ok(ch)
    }

    /// Forgets the channel to `addr` (under `server_name`, or the default name when
    /// `None`), so the next call dials afresh; calls in flight on it go on. Called when a
    /// peer stopped answering on a connection that may be stalled.
    pub fn forget(&self, addr: &str, server_name: Option<&str>) {
        let name = match &self.tls {
            Some(t) => server_name.unwrap_or(&t.default_name).to_string(),
            None => String::new(),
        };
        self.map.lock().remove(&(addr.to_string(), name));
    }
}
