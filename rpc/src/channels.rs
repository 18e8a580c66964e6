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
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

/// Largest message accepted or sent (raft snapshots travel whole).
pub const MAX_MESSAGE: usize = 1 << 30;
/// How long connecting to a peer may take (TCP, and under TLS the handshake too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// HTTP/2 ping interval, and how long a ping may go unanswered.
const KEEPALIVE: Duration = Duration::from_secs(5);
/// How long a channel may go without an answer before a timed-out call drops it
/// ([`Channels::forget_if_stalled`]).
pub const STALLED_AFTER: Duration = KEEPALIVE;

/// Channels by `host:port` (and server name under TLS).
#[derive(Debug, Default)]
pub struct Channels {
    /// Keyed by `(addr, server name)`; the name is empty for plaintext channels.
    map: Mutex<HashMap<(String, String), Entry>>,
    tls: Option<ChannelTls>,
}

/// A channel and when its peer was last heard from (or, before that, when it was made).
#[derive(Debug)]
struct Entry {
    channel: Channel,
    heard: Instant,
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
        if let Some(e) = map.get(&key) {
            return Ok(e.channel.clone());
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
        map.insert(
            key,
            Entry {
                channel: ch.clone(),
                heard: Instant::now(),
            },
        );
        Ok(ch)
    }

    /// Notes that the peer at `addr` (under `server_name`, or the default name when `None`)
    /// answered a call just now.
    pub fn heard(&self, addr: &str, server_name: Option<&str>) {
        let key = self.key(addr, server_name);
        if let Some(e) = self.map.lock().get_mut(&key) {
            e.heard = Instant::now();
        }
    }

    /// After a call to `addr` timed out: forgets its channel, so the next call dials
    /// afresh, when the peer has not answered anything on it for [`STALLED_AFTER`] (the
    /// connection may be stalled in TCP's retransmission backoff, as after a WAN outage).
    /// A channel whose peer answered lately is kept: the call was slow, not the connection
    /// dead (a lossy link loses a packet now and then), and dialling afresh would cost a
    /// TCP and TLS handshake — more than a short call's whole budget on a long link, so
    /// every call would time out and forget the next half-made connection in turn. A new
    /// channel counts as heard when made: its connect has its own timeout. Calls in flight
    /// on a forgotten channel go on. Returns whether it forgot.
    pub fn forget_if_stalled(&self, addr: &str, server_name: Option<&str>) -> bool {
        let key = self.key(addr, server_name);
        let mut map = self.map.lock();
        match map.get(&key) {
            Some(e) if e.heard.elapsed() >= STALLED_AFTER => {
                map.remove(&key);
                true
            }
            _ => false,
        }
    }

    fn key(&self, addr: &str, server_name: Option<&str>) -> (String, String) {
        let name = match &self.tls {
            Some(t) => server_name.unwrap_or(&t.default_name).to_string(),
            None => String::new(),
        };
        (addr.to_string(), name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &Channels, addr: &str) -> bool {
        // Two handles of one cached channel share its entry; a fresh one is a new entry.
        let n = a.map.lock().len();
        let _ = a.get(addr);
        a.map.lock().len() == n
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_out_call_drops_a_channel_only_when_its_peer_went_quiet() {
        let ch = Channels::new();
        ch.get("127.0.0.1:1").expect("channel");
        // Just made (still connecting): kept.
        assert!(!ch.forget_if_stalled("127.0.0.1:1", None));
        tokio::time::advance(STALLED_AFTER - Duration::from_millis(1)).await;
        ch.heard("127.0.0.1:1", None);
        tokio::time::advance(STALLED_AFTER - Duration::from_millis(1)).await;
        // Answered lately: a slow call, not a dead connection.
        assert!(!ch.forget_if_stalled("127.0.0.1:1", None));
        assert!(same(&ch, "127.0.0.1:1"));
        tokio::time::advance(Duration::from_millis(1)).await;
        // Quiet for STALLED_AFTER: dialled afresh.
        assert!(ch.forget_if_stalled("127.0.0.1:1", None));
        assert!(!same(&ch, "127.0.0.1:1"));
    }
}
