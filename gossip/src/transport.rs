//! The gossip transport: the only owner of the pool's UDP socket. The receiver task opens
//! (or, during a rolling enable, accepts plaintext) each datagram and hands the opened payload
//! (foca bytes or a `direct` message, see `direct.rs`) and its sender to the runtime over a
//! bounded queue; the sender task wraps what foca emits and sends it.
//! Nothing here understands SWIM, and nothing here panics on what the network sends.
//!
//! Envelope: the first byte says what follows. `1` is memberlist's encryption version and
//! starts a sealed packet (`[1][nonce][ciphertext||tag]`, see `keyring`); `0` starts a
//! plaintext packet (`[0][foca bytes]`). foca's postcard frames have no magic of their own,
//! so without this byte plaintext and ciphertext could not be told apart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info_span, warn};

use super::keyring::{ENCRYPTION_VERSION, Keyring};
use super::query::SharedKeyring;

/// Envelope tag of a plaintext packet.
pub const PLAINTEXT_TAG: u8 = 0;

/// Live counters (atomics); read them through [`Counters::snapshot`].
#[derive(Debug, Default)]
pub struct Counters {
    received: AtomicU64,
    sent: AtomicU64,
    send_errors: AtomicU64,
    dropped_undecryptable: AtomicU64,
    dropped_plaintext: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_outbound_full: AtomicU64,
}

/// A point-in-time copy of the pool's counters (`agent.gossip.*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Datagrams read from the socket.
    pub received: u64,
    /// Datagrams written to the socket.
    pub sent: u64,
    /// Datagrams the socket refused to send.
    pub send_errors: u64,
    /// Sealed datagrams no installed key opened (wrong key, tampered, truncated).
    pub dropped_undecryptable: u64,
    /// Plaintext datagrams refused because `verify_incoming` is on.
    pub dropped_plaintext: u64,
    /// Datagrams with an unknown envelope or kind, or that foca could not decode.
    pub dropped_malformed: u64,
    /// Datagrams dropped because the runtime's inbound queue was full.
    pub dropped_queue_full: u64,
    /// Outgoing datagrams dropped because the sender's queue was full.
    pub dropped_outbound_full: u64,
}

impl Counters {
    /// Copies every counter.
    pub fn snapshot(&self) -> GossipStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        GossipStats {
            received: get(&self.received),
            sent: get(&self.sent),
            send_errors: get(&self.send_errors),
            dropped_undecryptable: get(&self.dropped_undecryptable),
            dropped_plaintext: get(&self.dropped_plaintext),
            dropped_malformed: get(&self.dropped_malformed),
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_outbound_full: get(&self.dropped_outbound_full),
        }
    }

    pub(crate) fn count_malformed(&self) {
        self.dropped_malformed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_outbound_full(&self) {
        self.dropped_outbound_full.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why an incoming datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Empty, or an unknown envelope tag.
    Malformed,
    /// Sealed, but no key opened it.
    Undecryptable,
    /// Plaintext while `verify_incoming` is on.
    Plaintext,
}

/// Wraps foca bytes for the wire: sealed with the primary key when a keyring is installed
/// and `verify_outgoing` is on, plaintext otherwise.
pub fn wrap(keyring: &Keyring, verify_outgoing: bool, payload: &[u8]) -> Vec<u8> {
    if verify_outgoing && let Some(sealed) = keyring.seal(payload) {
        return sealed;
    }
    let mut out = Vec::with_capacity(payload.len() + 1);
    out.push(PLAINTEXT_TAG);
    out.extend_from_slice(payload);
    out
}

/// Unwraps a datagram into foca bytes, or says why it must be dropped. Plaintext is
/// accepted only when no key is installed or `verify_incoming` is off.
pub fn unwrap(
    keyring: &Keyring,
    verify_incoming: bool,
    packet: &[u8],
) -> Result<Vec<u8>, Rejected> {
    match packet.first() {
        Some(&PLAINTEXT_TAG) => {
            if verify_incoming && !keyring.is_empty() {
                Err(Rejected::Plaintext)
            } else {
                Ok(packet[1..].to_vec())
            }
        }
        Some(&ENCRYPTION_VERSION) => keyring.open(packet).map_err(|_| Rejected::Undecryptable),
        _ => Err(Rejected::Malformed),
    }
}

/// The bound socket plus what the transport tasks share.
#[derive(Debug)]
pub struct Transport {
    socket: Arc<UdpSocket>,
    keyring: SharedKeyring,
    counters: Arc<Counters>,
    verify_incoming: bool,
    verify_outgoing: bool,
}

impl Transport {
    /// Binds the UDP socket.
    pub async fn bind(
        addr: SocketAddr,
        keyring: SharedKeyring,
        counters: Arc<Counters>,
        verify_incoming: bool,
        verify_outgoing: bool,
    ) -> std::io::Result<Self> {
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        Ok(Self {
            socket,
            keyring,
            counters,
            verify_incoming,
            verify_outgoing,
        })
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Spawns the receiver (stops on `token`) and the sender (stops when every
    /// `outbound` sender is gone, so whatever foca queued before stopping, such as a
    /// leave, still goes out).
    pub fn spawn(
        self,
        tracker: &TaskTracker,
        token: CancellationToken,
        inbound_tx: mpsc::Sender<(SocketAddr, Bytes)>,
        outbound_rx: mpsc::Receiver<(SocketAddr, Bytes)>,
    ) {
        let receiver = Receiver {
            socket: Arc::clone(&self.socket),
            keyring: Arc::clone(&self.keyring),
            counters: Arc::clone(&self.counters),
            verify_incoming: self.verify_incoming,
            inbound_tx,
            warned: std::collections::HashSet::new(),
        };
        tracker.spawn(
            receiver
                .run(token)
                .instrument(info_span!("gossip", task = "recv")),
        );
        let sender = Sender {
            socket: self.socket,
            keyring: self.keyring,
            counters: self.counters,
            verify_outgoing: self.verify_outgoing,
        };
        tracker.spawn(
            sender
                .run(outbound_rx)
                .instrument(info_span!("gossip", task = "send")),
        );
    }
}

// === impl Receiver ===

struct Receiver {
    socket: Arc<UdpSocket>,
    keyring: SharedKeyring,
    counters: Arc<Counters>,
    verify_incoming: bool,
    inbound_tx: mpsc::Sender<(SocketAddr, Bytes)>,
    /// Peers already warned about (a wrong key or plaintext): later packets from them are
    /// counted, not logged. Bounded, so spoofed sources cannot grow it without limit.
    warned: std::collections::HashSet<std::net::IpAddr>,
}

/// Peers remembered as warned about; past this, new ones are only counted.
const MAX_WARNED_PEERS: usize = 1024;

impl Receiver {
    async fn run(mut self, token: CancellationToken) {
        // Larger than any valid packet, so an oversized one arrives whole and foca rejects it.
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let received = tokio::select! {
                biased;
                _ = token.cancelled() => break,
                r = self.socket.recv_from(&mut buf) => r,
            };
            match received {
                Ok((len, from)) => self.handle_datagram(&buf[..len], from),
                // ICMP port-unreachable from an earlier send surfaces here on some OSes.
                Err(err) => debug!(cause = %err, "gossip recv error"),
            }
        }
    }

    fn handle_datagram(&mut self, packet: &[u8], from: SocketAddr) {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        let opened = unwrap(&self.keyring.read(), self.verify_incoming, packet);
        let payload = match opened {
            Ok(p) => p,
            Err(why) => {
                let counter = match why {
                    Rejected::Malformed => &self.counters.dropped_malformed,
                    Rejected::Undecryptable => &self.counters.dropped_undecryptable,
                    Rejected::Plaintext => &self.counters.dropped_plaintext,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let first = !matches!(why, Rejected::Malformed)
                    && self.warned.len() < MAX_WARNED_PEERS
                    && self.warned.insert(from.ip());
                if first {
                    let reason = match why {
                        Rejected::Undecryptable => {
                            "no key of this keyring opens it (a different encryption key?)"
                        }
                        _ => "it is not encrypted and this pool requires encryption",
                    };
                    warn!(%from, reason, "refused gossip from a peer; further packets from it are counted, not logged");
                } else {
                    debug!(%from, ?why, len = packet.len(), "dropped gossip packet");
                }
                return;
            }
        };
        match self.inbound_tx.try_send((from, Bytes::from(payload))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.counters
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
            }
            // The runtime is gone; shutdown is under way.
            Err(TrySendError::Closed(_)) => {}
        }
    }
}

// === impl Sender ===

struct Sender {
    socket: Arc<UdpSocket>,
    keyring: SharedKeyring,
    counters: Arc<Counters>,
    verify_outgoing: bool,
}

impl Sender {
    async fn run(self, mut outbound_rx: mpsc::Receiver<(SocketAddr, Bytes)>) {
        while let Some((to, payload)) = outbound_rx.recv().await {
            // The read guard is dropped at the end of this statement, before the await.
            let packet = wrap(&self.keyring.read(), self.verify_outgoing, &payload);
            match self.socket.send_to(&packet, to).await {
                Ok(_) => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(err) => {
                    self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                    warn!(%to, cause = %err, "gossip send failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::GossipKey;

    fn ring(byte: u8) -> Keyring {
        Keyring::new(GossipKey::from_bytes(&[byte; 32]).expect("key")).expect("ring")
    }

    #[test]
    fn sealed_round_trip_and_rolling_enable_rules() {
        let k = ring(1);
        let none = Keyring::default();
        let sealed = wrap(&k, true, b"swim");
        assert_eq!(sealed[0], ENCRYPTION_VERSION);
        assert_eq!(unwrap(&k, true, &sealed), Ok(b"swim".to_vec()));
        // verify_outgoing off: plaintext even with a key.
        let plain = wrap(&k, false, b"swim");
        assert_eq!(plain, b"\0swim");
        assert_eq!(unwrap(&k, true, &plain), Err(Rejected::Plaintext));
        assert_eq!(unwrap(&k, false, &plain), Ok(b"swim".to_vec()));
        assert_eq!(unwrap(&k, false, &sealed), Ok(b"swim".to_vec()));
        // No keyring: plaintext both ways, sealed packets cannot be read.
        assert_eq!(wrap(&none, true, b"swim"), b"\0swim");
        assert_eq!(unwrap(&none, true, &plain), Ok(b"swim".to_vec()));
        assert_eq!(unwrap(&none, true, &sealed), Err(Rejected::Undecryptable));
        // Garbage.
        assert_eq!(unwrap(&k, true, b""), Err(Rejected::Malformed));
        assert_eq!(unwrap(&k, true, b"\x07abc"), Err(Rejected::Malformed));
        assert_eq!(
            unwrap(&ring(2), true, &sealed),
            Err(Rejected::Undecryptable)
        );
    }
}
