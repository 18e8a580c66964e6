//! RTT sampling for network coordinates. Every probe interval the runtime pings one alive
//! member (round-robin over a shuffled list, as SWIM picks probe targets) with a
//! [`Direct::Ping`]; the member answers with its coordinate; the measured round trip and
//! that coordinate move our Vivaldi coordinate. serf piggybacks the same exchange on
//! memberlist's probe acks; foca's acks carry no payload, so the pool pings on its own.
//!
//! Pure bookkeeping (the runtime owns the socket and the clock): pending pings by sequence
//! number, expired after [`PING_EXPIRY`]; the latest coordinate of every peer; and a
//! published [`Coordinates`] snapshot readers take without talking to the runtime.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rand::seq::SliceRandom;
use tokio::time::Instant;

use super::coordinate::{Coordinate, VivaldiClient, VivaldiConfig};
use super::direct::Direct;

/// A ping unanswered for this long is forgotten (its pong, if it comes, is ignored).
pub const PING_EXPIRY: Duration = Duration::from_secs(5);

/// Our coordinate and the last one heard from each peer.
#[derive(Debug, Clone, Default)]
pub struct Coordinates {
    /// Ours (`None` before the pool has started).
    pub local: Option<Coordinate>,
    /// Peer name → its coordinate as of its last pong.
    pub peers: HashMap<String, Coordinate>,
}

/// Shared snapshot of [`Coordinates`]; written by the runtime, read by handles.
pub type SharedCoordinates = Arc<RwLock<Coordinates>>;

/// The runtime's RTT sampler.
#[derive(Debug)]
pub(crate) struct Pinger {
    vivaldi: VivaldiClient,
    seq: u64,
    /// Open pings: sequence number → (member, its address, when sent).
    pending: HashMap<u64, (String, SocketAddr, Instant)>,
    order: Vec<(String, SocketAddr)>,
    next: usize,
    shared: SharedCoordinates,
}

impl Pinger {
    /// A sampler at the origin, publishing into `shared`.
    pub(crate) fn new(shared: SharedCoordinates) -> Self {
        let vivaldi = VivaldiClient::new(VivaldiConfig::default());
        shared.write().local = Some(vivaldi.coordinate().clone());
        Self {
            vivaldi,
            seq: 0,
            pending: HashMap::new(),
            order: Vec::new(),
            next: 0,
            shared,
        }
    }

    /// Our coordinate.
    pub(crate) fn coordinate(&self) -> &Coordinate {
        self.vivaldi.coordinate()
    }

    /// Picks the next member to ping from `alive` (everyone but us) and returns the ping.
    /// The round-robin list is reshuffled after each full pass.
    pub(crate) fn tick(
        &mut self,
        alive: impl FnOnce() -> Vec<(String, SocketAddr)>,
        now: Instant,
    ) -> Option<(SocketAddr, Direct)> {
        self.pending
            .retain(|_, (_, _, sent)| now.duration_since(*sent) < PING_EXPIRY);
        if self.next >= self.order.len() {
            self.order = alive();
            self.order.shuffle(&mut rand::rng());
            self.next = 0;
        }
        let (name, addr) = self.order.get(self.next)?.clone();
        self.next += 1;
        self.seq = self.seq.wrapping_add(1);
        self.pending.insert(self.seq, (name, addr, now));
        Some((addr, Direct::Ping { seq: self.seq }))
    }

    /// Handles a pong: a sample when it answers one of our pings from the address we asked.
    /// Returns whether it was used.
    pub(crate) fn pong(
        &mut self,
        seq: u64,
        from: SocketAddr,
        coord: &Coordinate,
        now: Instant,
    ) -> bool {
        match self.pending.get(&seq) {
            Some((_, asked, _)) if *asked == from => {}
            _ => return false,
        }
        let Some((name, _, sent)) = self.pending.remove(&seq) else {
            return false;
        };
        let name = name.as_str();
        let rtt = now.duration_since(sent);
        if !self.vivaldi.update(name, coord, rtt, rand::random::<f64>) {
            return false;
        }
        let mut shared = self.shared.write();
        shared.local = Some(self.vivaldi.coordinate().clone());
        shared.peers.insert(name.to_owned(), coord.clone());
        true
    }

    /// Forgets a member that is gone.
    pub(crate) fn forget(&mut self, name: &str) {
        self.vivaldi.forget(name);
        self.shared.write().peers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn round_robin_pings_and_matching_pongs_move_the_coordinate() {
        let shared = SharedCoordinates::default();
        let mut p = Pinger::new(Arc::clone(&shared));
        let origin = p.coordinate().clone();
        let now = Instant::now();
        let members = || vec![("b".to_string(), addr(2)), ("c".to_string(), addr(3))];
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (to, ping) = p.tick(members, now).expect("a target");
            let Direct::Ping { seq } = ping else {
                panic!("not a ping")
            };
            seen.push((to, seq));
        }
        seen.sort();
        assert_eq!(
            seen.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            [addr(2), addr(3)]
        );
        let far = {
            let mut c = origin.clone();
            c.vec[0] = 0.01;
            c
        };
        let later = now + Duration::from_millis(10);
        let seq_for_b = seen[0].1;
        // A pong from someone we did not ask is ignored.
        assert!(!p.pong(seq_for_b, addr(3), &far, later));
        assert!(p.pong(seq_for_b, addr(2), &far, later));
        // The same sequence number twice: only once.
        assert!(!p.pong(seq_for_b, addr(2), &far, later));
        assert_ne!(p.coordinate(), &origin);
        assert!(shared.read().peers.contains_key("b"));
        p.forget("b");
        assert!(!shared.read().peers.contains_key("b"));
    }

    #[test]
    fn no_members_no_ping_and_old_pings_expire() {
        let mut p = Pinger::new(SharedCoordinates::default());
        let now = Instant::now();
        assert!(p.tick(Vec::new, now).is_none());
        let (_, ping) = p.tick(|| vec![("b".into(), addr(2))], now).expect("ping");
        let Direct::Ping { seq } = ping else {
            panic!("not a ping")
        };
        let coord = p.coordinate().clone();
        // The next tick after the expiry drops it, so a very late pong is not a sample.
        let late = now + PING_EXPIRY + Duration::from_millis(1);
        let _ = p.tick(|| vec![("b".into(), addr(2))], late);
        assert!(!p.pong(seq, addr(2), &coord, late));
    }
}
