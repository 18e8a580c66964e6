//! Per-peer health of the raft transport, so a dead peer is logged once and not on every
//! heartbeat: the first failure after success is a WARN, the first success after failures an
//! INFO, and everything in between is counted (`/v1/agent/metrics`,
//! `meridian.raft.peer.rpc_failures_total`). openraft's own per-RPC warnings (replication,
//! heartbeat worker) are filtered to errors in `main.rs` for that reason.
//!
//! Only bookkeeping: no I/O, no timers; the transport reports each RPC's outcome.

use std::collections::HashMap;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::raft::network::PeerStats;

/// What is known about one peer.
#[derive(Debug)]
struct Peer {
    addr: String,
    /// Since when the peer has been failing (`None`: healthy).
    failing_since: Option<Instant>,
    /// Failed RPCs since the peer started failing.
    failures_now: u64,
    failures_total: u64,
    recoveries_total: u64,
}

/// Health of every peer this server sent raft RPCs to.
#[derive(Debug, Default)]
pub struct PeerHealth(Mutex<HashMap<u64, Peer>>);

impl PeerHealth {
    fn with_peer<T>(&self, target: u64, addr: &str, f: impl FnOnce(&mut Peer) -> T) -> T {
        let mut peers = self.0.lock();
        let peer = peers.entry(target).or_insert_with(|| Peer {
            addr: addr.to_string(),
            failing_since: None,
            failures_now: 0,
            failures_total: 0,
            recoveries_total: 0,
        });
        if peer.addr != addr {
            peer.addr = addr.to_string();
        }
        f(peer)
    }

    /// Records a failed RPC to `target`; logs only the first of a run of failures.
    pub fn failed(&self, target: u64, addr: &str, cause: &dyn std::fmt::Display) {
        let first = self.with_peer(target, addr, |p| {
            p.failures_total += 1;
            p.failures_now += 1;
            p.failing_since.get_or_insert_with(Instant::now);
            p.failures_now == 1
        });
        if first {
            tracing::warn!(
                peer = target,
                addr,
                cause = %cause,
                "raft peer unreachable; further failures are counted, not logged"
            );
        }
    }

    /// Records a successful RPC to `target`; logs the recovery of a failing peer once.
    pub fn succeeded(&self, target: u64, addr: &str) {
        let recovered = self.with_peer(target, addr, |p| {
            let since = p.failing_since.take()?;
            p.recoveries_total += 1;
            Some((std::mem::take(&mut p.failures_now), since.elapsed()))
        });
        if let Some((failures, down)) = recovered {
            tracing::info!(
                peer = target,
                addr,
                failures,
                down_ms = down.as_millis() as u64,
                "raft peer reachable again"
            );
        }
    }

    /// A snapshot of every peer's counters.
    pub fn stats(&self) -> Vec<PeerStats> {
        let peers = self.0.lock();
        let mut out: Vec<PeerStats> = peers
            .iter()
            .map(|(id, p)| PeerStats {
                id: *id,
                addr: p.addr.clone(),
                failing: p.failing_since.is_some(),
                failures_total: p.failures_total,
                recoveries_total: p.recoveries_total,
            })
            .collect();
        out.sort_by_key(|p| p.id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_failures_counts_every_one_and_a_success_ends_it() {
        let h = PeerHealth::default();
        for _ in 0..50 {
            h.failed(2, "10.0.0.2:8300", &"connect error");
        }
        let s = &h.stats()[0];
        assert!(s.failing);
        assert_eq!((s.failures_total, s.recoveries_total), (50, 0));
        h.succeeded(2, "10.0.0.2:8300");
        h.succeeded(2, "10.0.0.2:8300");
        let s = &h.stats()[0];
        assert!(!s.failing);
        assert_eq!((s.failures_total, s.recoveries_total), (50, 1));
    }
}
