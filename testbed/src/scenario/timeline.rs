//! A timeline of a datacenter during a scenario: a background task asks every agent of the
//! DC, about four times a second, which leader it knows, its raft index and how many
//! members it sees alive, and stamps each answer with the seconds since the scenario began.
//! Scenarios add events (`kill dc1-s2`, `heal`); the samples and events go into the report
//! and into the timeline plot. Scenarios that time a query load record `QuerySample`s.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::plan::HostPlan;
use crate::probe;
use crate::state::State;

/// Time between rounds of samples.
const EVERY: Duration = Duration::from_millis(250);

/// What one agent said at one moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the scenario began.
    pub t: f64,
    /// The host.
    pub host: String,
    /// It answered HTTP at all.
    pub up: bool,
    /// The leader it names (host name).
    pub leader: Option<String>,
    /// Its raft applied index (servers only: `Stats.raft.applied_index` of `/v1/agent/self`).
    pub index: Option<u64>,
    /// Members it sees alive in its LAN pool (`/v1/agent/members`, Status 1).
    pub members_alive: Option<u64>,
}

/// One timed HTTP request of a scenario's query load (`federation`: the cross-DC reads).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuerySample {
    /// Seconds since the scenario began, when it was sent.
    pub t: f64,
    /// Which load it belongs to (`dc2→dc1 kv read`).
    pub stream: String,
    /// Milliseconds until its answer or error.
    pub ms: f64,
    /// It got the expected answer.
    pub ok: bool,
    /// HTTP status, when an answer came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// Something the scenario did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the scenario began.
    pub t: f64,
    /// What (`partition dc1-s2 | rest`).
    pub what: String,
}

/// The sampling task and what it gathered.
pub struct Timeline {
    start: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
    events: Vec<Event>,
    stop_tx: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Timeline {
    /// Starts sampling `hosts` (the clock starts at `start`).
    pub fn start(state: &State, hosts: Vec<HostPlan>, start: Instant) -> Timeline {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let (sink, state) = (samples.clone(), Arc::new(state.clone()));
        let task = tokio::spawn(async move {
            loop {
                let round = Instant::now();
                let mut set = JoinSet::new();
                for h in &hosts {
                    let (state, h) = (state.clone(), h.clone());
                    set.spawn(async move { sample(&state, &h, start).await });
                }
                while let Some(done) = set.join_next().await {
                    if let Ok(s) = done {
                        sink.lock().unwrap_or_else(PoisonError::into_inner).push(s);
                    }
                }
                tokio::select! {
                    _ = stop_rx.changed() => break,
                    () = tokio::time::sleep_until(round + EVERY) => {}
                }
            }
        });
        Timeline {
            start,
            samples,
            events: Vec::new(),
            stop_tx,
            task,
        }
    }

    /// Seconds since the start.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Whether a sample taken so far satisfies `pred`.
    pub fn any(&self, pred: impl Fn(&Sample) -> bool) -> bool {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(pred)
    }

    /// Records an event now.
    pub fn event(&mut self, what: impl Into<String>) {
        let t = self.now();
        self.events.push(Event {
            t,
            what: what.into(),
        });
    }

    /// Stops sampling; the samples (in time order) and events.
    pub async fn finish(self) -> (Vec<Sample>, Vec<Event>) {
        let _ = self.stop_tx.send(true);
        let _ = self.task.await;
        let mut samples =
            std::mem::take(&mut *self.samples.lock().unwrap_or_else(PoisonError::into_inner));
        samples.sort_by(|a, b| a.t.total_cmp(&b.t));
        (samples, self.events)
    }
}

/// Asks `host` once, now (`t` = 0).
pub async fn sample_now(state: &State, host: &HostPlan) -> Sample {
    sample(state, host, Instant::now()).await
}

/// Asks `host` once.
async fn sample(state: &State, host: &HostPlan, start: Instant) -> Sample {
    let paths = ["/v1/status/leader", "/v1/agent/self", "/v1/agent/members"];
    let replies = probe::get(&state.testbed, host, &paths)
        .await
        .unwrap_or_default();
    let t = start.elapsed().as_secs_f64();
    let ok = |i: usize| replies.get(i).filter(|r| r.status == Some(200));
    let index = ok(1).and_then(|r| probe::applied_index(&r.body));
    let members_alive = ok(2).and_then(|r| {
        let body: Vec<serde_json::Value> = serde_json::from_str(&r.body).ok()?;
        Some(body.iter().filter(|m| m["Status"] == 1).count() as u64)
    });
    Sample {
        t,
        host: host.name.clone(),
        up: replies.iter().any(|r| r.status.is_some()),
        leader: ok(0).and_then(|r| probe::leader_name(&state.plan, &r.body)),
        index,
        members_alive,
    }
}
