//! Session TTL timers, kept by the leader only (as in Consul, renewals do not go through
//! raft). A session is invalidated once `2 × TTL` passes without a renewal: clients are
//! promised the TTL, and the multiplier absorbs network and scheduling delays.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::catalog::{Session, State};

/// Consul's `SessionTTLMultiplier`.
pub(super) const TTL_MULTIPLIER: u32 = 2;

/// Deadlines of sessions with a TTL.
#[derive(Default)]
pub struct SessionTimers {
    deadlines: Mutex<HashMap<String, Instant>>,
}

impl SessionTimers {
    /// Resets the deadline of `s` to `now + 2 × TTL`.
    pub fn renew(&self, s: &Session, now: Instant) {
        if let Some(ttl) = super::session_ttl(&s.ttl) {
            self.deadlines
                .lock()
                .insert(s.id.clone(), now + ttl * TTL_MULTIPLIER);
        }
    }

    /// Forgets every deadline (on losing leadership).
    pub fn clear(&self) {
        self.deadlines.lock().clear();
    }

    /// Reconciles timers with the state (new sessions get a full `2 × TTL`, destroyed ones
    /// are dropped) and returns the IDs whose deadline has passed.
    pub fn expired(&self, state: &State, now: Instant) -> Vec<String> {
        let mut d = self.deadlines.lock();
        d.retain(|id, _| state.session(id).is_some());
        for s in state.sessions() {
            if !d.contains_key(&s.id)
                && let Some(ttl) = super::session_ttl(&s.ttl)
            {
                d.insert(s.id.clone(), now + ttl * TTL_MULTIPLIER);
            }
        }
        d.iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The earliest deadline, to sleep until.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.lock().values().min().copied()
    }
}

/// How long until the next check of the timers: the earliest deadline, at most `max`.
pub(crate) fn next_wake(timers: &SessionTimers, now: Instant, max: Duration) -> Instant {
    timers
        .next_deadline()
        .map_or(now + max, |d| d.min(now + max))
}
