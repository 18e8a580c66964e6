//! TTL checks owned by this agent: each `check/pass|warn|fail|update` resets its clock; a
//! check whose TTL runs out turns critical with `TTL expired`, as in Consul.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::catalog::{CheckStatusUpdate, Command, HealthStatus};
use crate::server::ServerHandle;

/// How often expiries are looked for.
const TICK: Duration = Duration::from_millis(250);

/// TTL deadlines of this agent's TTL checks.
#[derive(Default)]
pub struct TtlChecks {
    deadlines: Mutex<HashMap<String, (Duration, Instant)>>,
}

impl TtlChecks {
    /// Starts (or restarts) the clock of a TTL check.
    pub fn arm(&self, check_id: &str, ttl: Duration) {
        self.deadlines
            .lock()
            .insert(check_id.to_string(), (ttl, Instant::now() + ttl));
    }

    /// Resets the clock after a status update; false if the check has no TTL.
    pub fn touch(&self, check_id: &str) -> bool {
        let mut d = self.deadlines.lock();
        match d.get_mut(check_id) {
            Some((ttl, at)) => {
                *at = Instant::now() + *ttl;
                true
            }
            None => false,
        }
    }

    /// Forgets a check.
    pub fn remove(&self, check_id: &str) {
        self.deadlines.lock().remove(check_id);
    }

    fn take_expired(&self, now: Instant) -> Vec<String> {
        let mut d = self.deadlines.lock();
        let expired: Vec<String> = d
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            if let Some((ttl, at)) = d.get_mut(id) {
                // Re-arm so a check that stays silent is not re-reported every tick.
                *at = now + *ttl;
            }
        }
        expired
    }
}

/// Marks expired TTL checks critical until `token` is cancelled.
pub async fn run(
    checks: std::sync::Arc<TtlChecks>,
    server: ServerHandle,
    node: String,
    token: CancellationToken,
) {
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            _ = tick.tick() => {}
        }
        let expired = checks.take_expired(Instant::now());
        if expired.is_empty() {
            continue;
        }
        let updates = expired
            .into_iter()
            .map(|check_id| CheckStatusUpdate {
                node: node.clone(),
                check_id,
                status: HealthStatus::Critical,
                output: "TTL expired".into(),
            })
            .collect();
        if let Err(e) = server.apply(Command::CheckUpdate(updates)).await {
            warn!(cause = %e, "failed to mark expired TTL checks critical");
        }
    }
}
