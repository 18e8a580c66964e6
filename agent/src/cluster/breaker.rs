//! Per-datacenter health of this server's cross-datacenter calls, and a circuit breaker
//! (#16): after [`OPEN_AFTER`] failures in a row a datacenter's breaker opens, and calls to
//! it fail at once with `datacenter "dc3" unavailable (retry in Ns)` — a different error
//! from an unknown datacenter — instead of each spending its deadline. When the wait is
//! over one call (or the background probe) is let through as a trial: success closes the
//! breaker, failure opens it again for twice as long (up to [`MAX_BACKOFF`]).
//!
//! Also kept per datacenter, for `GET /v1/operator/federation`: the last successful contact,
//! the last error, and the latencies of recent successful calls (p50/p99).
//!
//! ```text
//!  closed ──3 failures──▶ open(until) ──until passed──▶ half-open (one trial)
//!    ▲                                                   │ ok          │ failure
//!    └───────────────────────────────────────────────────┘             └▶ open(2× wait)
//! ```
//!
//! Pure bookkeeping under a mutex held for microseconds; no I/O.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::time::Instant;

/// Failures in a row that open a breaker.
pub const OPEN_AFTER: u32 = 3;
/// The first wait of an open breaker.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// The longest wait.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Latencies kept per datacenter.
const WINDOW: usize = 256;

/// What a caller may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Go ahead (closed).
    Go,
    /// Go ahead as the one trial of a half-open breaker.
    Trial,
    /// Fail at once: the breaker is open for this much longer.
    Refuse(Duration),
}

/// The breaker's state, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through.
    Closed,
    /// Calls fail at once until the wait is over.
    Open,
    /// One trial call is in flight.
    HalfOpen,
}

impl State {
    /// Lowercase name for the API.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
        }
    }
}

/// One datacenter's record.
#[derive(Debug)]
struct Record {
    state: State,
    failures: u32,
    until: Instant,
    backoff: Duration,
    last_success: Option<SystemTime>,
    last_error: Option<(SystemTime, String)>,
    latencies_ms: VecDeque<f64>,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            state: State::Closed,
            failures: 0,
            until: Instant::now(),
            backoff: FIRST_BACKOFF,
            last_success: None,
            last_error: None,
            latencies_ms: VecDeque::new(),
        }
    }
}

/// A datacenter's health as reported.
#[derive(Debug, Clone, PartialEq)]
pub struct DcHealth {
    /// Its name.
    pub datacenter: String,
    /// The breaker.
    pub state: State,
    /// How long an open breaker still refuses.
    pub retry_in: Option<Duration>,
    /// Failures in a row.
    pub failures: u32,
    /// When a call last succeeded.
    pub last_success: Option<SystemTime>,
    /// The last failure and when.
    pub last_error: Option<(SystemTime, String)>,
    /// p50 and p99 of recent successful calls, milliseconds.
    pub latency_ms: Option<(f64, f64)>,
}

/// Every datacenter's breaker.
#[derive(Debug, Default)]
pub struct Breakers(Mutex<HashMap<String, Record>>);

impl Breakers {
    /// Whether a call to `dc` may go now (a half-open breaker admits one trial).
    pub fn admit(&self, dc: &str) -> Admit {
        let mut all = self.0.lock();
        let r = all.entry(dc.to_string()).or_default();
        let now = Instant::now();
        match r.state {
            State::Closed => Admit::Go,
            State::Open if now >= r.until => {
                r.state = State::HalfOpen;
                Admit::Trial
            }
            State::Open => Admit::Refuse(r.until - now),
            // A trial is out: others wait for its outcome, at most a second at a time.
            State::HalfOpen => Admit::Refuse(Duration::from_secs(1)),
        }
    }

    /// Records a call to `dc` that got an answer after `took` (`None`: a blocking query,
    /// whose time says nothing about the link).
    pub fn success(&self, dc: &str, took: Option<Duration>) {
        let mut all = self.0.lock();
        let r = all.entry(dc.to_string()).or_default();
        r.state = State::Closed;
        r.failures = 0;
        r.backoff = FIRST_BACKOFF;
        r.last_success = Some(SystemTime::now());
        if let Some(took) = took {
            if r.latencies_ms.len() == WINDOW {
                r.latencies_ms.pop_front();
            }
            r.latencies_ms.push_back(took.as_secs_f64() * 1000.0);
        }
    }

    /// Drops `dc`'s record (it is unknown: nothing to keep).
    pub fn forget(&self, dc: &str) {
        self.0.lock().remove(dc);
    }

    /// Records a call to `dc` that got no answer (unreachable, timed out).
    pub fn failure(&self, dc: &str, why: &str) {
        let mut all = self.0.lock();
        let r = all.entry(dc.to_string()).or_default();
        r.failures = r.failures.saturating_add(1);
        r.last_error = Some((SystemTime::now(), why.to_string()));
        let open_for = match r.state {
            State::HalfOpen => Some((r.backoff * 2).min(MAX_BACKOFF)),
            State::Closed if r.failures >= OPEN_AFTER => Some(FIRST_BACKOFF),
            State::Closed | State::Open => None,
        };
        if let Some(wait) = open_for {
            if r.state == State::Closed {
                tracing::warn!(
                    datacenter = dc,
                    failures = r.failures,
                    cause = why,
                    "breaker opened: calls to this datacenter fail at once for {wait:?}"
                );
            }
            r.state = State::Open;
            r.backoff = wait;
            r.until = Instant::now() + wait;
        }
    }

    /// Datacenters whose breaker is open and due a trial.
    pub fn due(&self) -> Vec<String> {
        let now = Instant::now();
        self.0
            .lock()
            .iter()
            .filter(|(_, r)| r.state == State::Open && now >= r.until)
            .map(|(dc, _)| dc.clone())
            .collect()
    }

    /// `dc`'s health (a datacenter never called is closed and unknown).
    pub fn health(&self, dc: &str) -> DcHealth {
        let all = self.0.lock();
        let now = Instant::now();
        let Some(r) = all.get(dc) else {
            return DcHealth {
                datacenter: dc.to_string(),
                state: State::Closed,
                retry_in: None,
                failures: 0,
                last_success: None,
                last_error: None,
                latency_ms: None,
            };
        };
        let mut sorted: Vec<f64> = r.latencies_ms.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
        DcHealth {
            datacenter: dc.to_string(),
            state: r.state,
            retry_in: (r.state == State::Open).then(|| r.until.saturating_duration_since(now)),
            failures: r.failures,
            last_success: r.last_success,
            last_error: r.last_error.clone(),
            latency_ms: (!sorted.is_empty()).then(|| (pct(0.5), pct(0.99))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_three_failures_then_a_trial_closes_or_doubles_the_wait() {
        let b = Breakers::default();
        assert_eq!(b.admit("dc3"), Admit::Go);
        b.failure("dc3", "timed out");
        b.failure("dc3", "timed out");
        assert_eq!(b.admit("dc3"), Admit::Go);
        b.failure("dc3", "timed out");
        assert_eq!(b.admit("dc3"), Admit::Refuse(FIRST_BACKOFF));
        assert_eq!(b.health("dc3").state, State::Open);
        assert!(b.due().is_empty());

        tokio::time::advance(FIRST_BACKOFF).await;
        assert_eq!(b.due(), ["dc3"]);
        assert_eq!(b.admit("dc3"), Admit::Trial);
        assert_eq!(b.admit("dc3"), Admit::Refuse(Duration::from_secs(1)));
        b.failure("dc3", "still down");
        assert_eq!(b.admit("dc3"), Admit::Refuse(FIRST_BACKOFF * 2));

        tokio::time::advance(FIRST_BACKOFF * 2).await;
        assert_eq!(b.admit("dc3"), Admit::Trial);
        b.success("dc3", Some(Duration::from_millis(40)));
        assert_eq!(b.admit("dc3"), Admit::Go);
        let h = b.health("dc3");
        assert_eq!((h.state, h.failures), (State::Closed, 0));
        assert_eq!(h.latency_ms, Some((40.0, 40.0)));
        assert_eq!(h.last_error.map(|e| e.1).as_deref(), Some("still down"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_doubles_up_to_the_cap_and_other_datacenters_are_unaffected() {
        let b = Breakers::default();
        for _ in 0..OPEN_AFTER {
            b.failure("dc3", "x");
        }
        for _ in 0..10 {
            tokio::time::advance(MAX_BACKOFF).await;
            assert_eq!(b.admit("dc3"), Admit::Trial);
            b.failure("dc3", "x");
        }
        assert_eq!(b.admit("dc3"), Admit::Refuse(MAX_BACKOFF));
        assert_eq!(b.admit("dc2"), Admit::Go);
        assert_eq!(b.health("dc9").state, State::Closed);
    }
}
