//! serf's event handler scripts (`-event-handler [filter=]script`): the agent's event reader
//! ([`super::events::record`]) turns each gossip event into a [`Job`] and hands it to a
//! [`HandlerQueue`] without ever waiting; one runner task executes the matching scripts one
//! at a time, in event order, as serf does. Owns serf's contract (environment, stdin lines),
//! the bounded queue and its drop count; the process mechanics live in [`script`].
//!
//! ```text
//!  gossip events ─▶ events::record ─(try_send; full → dropped + warn)─▶ agent.handlers ─▶ runner
//!                   (Consul filters                                       (sh -c, serially,
//!                    for user events)                                      timeout kills)
//! ```
//!
//! Limits: a script gets [`HandlerConfig::timeout`] (30 s, Consul's script check timeout;
//! serf has none, so one hung script stalls every later event) and is then killed with its
//! whole process group. The queue holds [`HandlerConfig::queue`] events; beyond that new
//! events are dropped and counted.

mod script;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meridian_config::EventHandler;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use self::script::{Invocation, Outcome};
use super::user_event::ConsulEvent;
use crate::gossip::{Event, Member, MembersView, Tags};

/// Runner limits.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    /// How long one script may run before its process group is killed.
    pub timeout: Duration,
    /// Events waiting for the runner (`agent.handlers`); more are dropped.
    pub queue: usize,
    /// Bytes of each of stdout and stderr logged per run (serf keeps 8 KiB of output).
    pub output_limit: usize,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            queue: 1024,
            output_limit: 8 * 1024,
        }
    }
}

/// One event for the scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// serf's kind: `member-join`, ..., `user`.
    pub kind: &'static str,
    /// For user events: the name and Lamport time.
    pub user: Option<(String, u64)>,
    /// What the script reads on stdin.
    pub stdin: Vec<u8>,
}

impl Job {
    /// A member event (`None` for user events, which need the Consul envelope opened).
    pub fn member(ev: &Event) -> Option<Self> {
        let member = match ev {
            Event::MemberJoin(m)
            | Event::MemberLeave(m)
            | Event::MemberFailed(m)
            | Event::MemberUpdate(m)
            | Event::MemberReap(m) => m,
            Event::User(_) => return None,
        };
        Some(Self {
            kind: ev.kind(),
            user: None,
            stdin: member_line(member).into_bytes(),
        })
    }

    /// A Consul user event: stdin is the user's payload, newline-terminated (serf adds one).
    pub fn user(ev: &ConsulEvent) -> Self {
        let mut stdin = ev.payload.clone().unwrap_or_default();
        if stdin.last().is_some_and(|b| *b != b'\n') {
            stdin.push(b'\n');
        }
        Self {
            kind: "user",
            user: Some((ev.name.clone(), ev.ltime)),
            stdin,
        }
    }

    fn user_name(&self) -> Option<&str> {
        self.user.as_ref().map(|(name, _)| name.as_str())
    }
}

/// serf's member line: `name\taddress\trole\ttags`, tags as `k=v` joined by commas, tabs and
/// newlines in values escaped (serf's `eventClean`). The address is the IP, as serf's.
pub fn member_line(m: &Member) -> String {
    let clean = |s: &str| s.replace('\t', "\\t").replace('\n', "\\n");
    let tags: Vec<String> = m.tags.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{}\t{}\t{}\t{}\n",
        clean(&m.name),
        m.addr.ip(),
        clean(m.tags.get(Tags::ROLE).unwrap_or_default()),
        clean(&tags.join(","))
    )
}

/// serf's environment for one job: `SERF_EVENT`, `SERF_SELF_NAME`, `SERF_SELF_ROLE`,
/// `SERF_TAG_<KEY>` (upper-cased, characters outside `[A-Z0-9_]` as `_`) and, for user
/// events, `SERF_USER_EVENT` and `SERF_USER_LTIME`.
pub fn job_env(job: &Job, self_name: &str, self_tags: &Tags) -> Vec<(String, String)> {
    let mut env = vec![
        ("SERF_EVENT".to_string(), job.kind.to_string()),
        ("SERF_SELF_NAME".to_string(), self_name.to_string()),
        (
            "SERF_SELF_ROLE".to_string(),
            self_tags.get(Tags::ROLE).unwrap_or_default().to_string(),
        ),
    ];
    for (k, v) in &self_tags.0 {
        let key: String = k
            .to_ascii_uppercase()
            .chars()
            .map(|c| {
                if c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        env.push((format!("SERF_TAG_{key}"), v.clone()));
    }
    if let Some((name, ltime)) = &job.user {
        env.push(("SERF_USER_EVENT".to_string(), name.clone()));
        env.push(("SERF_USER_LTIME".to_string(), ltime.to_string()));
    }
    env
}

/// The sending side: cheap to clone, never waits.
#[derive(Debug, Clone)]
pub struct HandlerQueue {
    handlers: Arc<[EventHandler]>,
    jobs_tx: mpsc::Sender<Job>,
    dropped: Arc<AtomicU64>,
}

impl HandlerQueue {
    /// Queues `job` if any handler wants it; when the queue is full the job is dropped,
    /// counted, and a warning logged (the first and every hundredth drop).
    pub fn push(&self, job: Job) {
        if !self
            .handlers
            .iter()
            .any(|h| h.matches(job.kind, job.user_name()))
        {
            return;
        }
        let kind = job.kind;
        if let Err(mpsc::error::TrySendError::Full(_)) = self.jobs_tx.try_send(job) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped == 1 || dropped.is_multiple_of(100) {
                warn!(
                    event = kind,
                    dropped, "event handler queue full; dropping events"
                );
            }
        }
    }

    /// Queues `member-join` for the local node, as serf runs its handlers for its own join
    /// at start (the pool publishes that event before any reader can subscribe).
    pub fn push_local_join(&self, view: &MembersView) {
        if let Some(me) = view.get(&view.local)
            && let Some(job) = Job::member(&Event::MemberJoin(me.clone()))
        {
            self.push(job);
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Starts the runner for `handlers` (none: no task, `None`). `members_rx` supplies our own
/// name and current tags; the runner stops (killing a running script) on `token`.
pub fn spawn(
    handlers: Vec<EventHandler>,
    cfg: HandlerConfig,
    members_rx: watch::Receiver<MembersView>,
    tracker: &tokio_util::task::TaskTracker,
    token: CancellationToken,
) -> Option<HandlerQueue> {
    if handlers.is_empty() {
        return None;
    }
    let handlers: Arc<[EventHandler]> = handlers.into();
    let (jobs_tx, jobs_rx) = mpsc::channel(cfg.queue.max(1)); // agent.handlers
    let runner = Runner {
        handlers: Arc::clone(&handlers),
        cfg,
        members_rx,
        token,
    };
    tracker.spawn(tracing::Instrument::instrument(
        runner.run(jobs_rx),
        tracing::info_span!("handlers"),
    ));
    Some(HandlerQueue {
        handlers,
        jobs_tx,
        dropped: Arc::default(),
    })
}

/// The task that runs scripts, one at a time.
struct Runner {
    handlers: Arc<[EventHandler]>,
    cfg: HandlerConfig,
    members_rx: watch::Receiver<MembersView>,
    token: CancellationToken,
}

impl Runner {
    async fn run(self, mut jobs_rx: mpsc::Receiver<Job>) {
        loop {
            let job = tokio::select! {
                biased;
                _ = self.token.cancelled() => return,
                job = jobs_rx.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            self.handle_job(&job).await;
        }
    }

    /// Runs every matching handler for `job`, in configuration order.
    async fn handle_job(&self, job: &Job) {
        let env = {
            let view = self.members_rx.borrow();
            let tags = view
                .get(&view.local)
                .map(|m| m.tags.clone())
                .unwrap_or_default();
            job_env(job, &view.local, &tags)
        };
        for handler in self
            .handlers
            .iter()
            .filter(|h| h.matches(job.kind, job.user_name()))
        {
            let inv = Invocation {
                kind: job.kind,
                script: &handler.script,
                env: &env,
                stdin: &job.stdin,
            };
            let outcome =
                script::run(&inv, self.cfg.timeout, self.cfg.output_limit, &self.token).await;
            report(&inv, &outcome, self.cfg.timeout);
            if matches!(outcome, Outcome::Cancelled) {
                return;
            }
        }
    }
}

/// Logs how a run ended: failures are warnings, never errors the agent acts on.
fn report(inv: &Invocation<'_>, outcome: &Outcome, timeout: Duration) {
    let (event, script) = (inv.kind, inv.script);
    match outcome {
        Outcome::Exited(status) if status.success() => {
            debug!(event, script, "event handler finished");
        }
        Outcome::Exited(status) => {
            warn!(event, script, %status, "event handler failed");
        }
        Outcome::SpawnFailed(e) => {
            warn!(event, script, cause = %e, "event handler could not be started");
        }
        Outcome::WaitFailed(e) => {
            warn!(event, script, cause = %e, "event handler could not be waited for");
        }
        Outcome::TimedOut => {
            warn!(
                event,
                script,
                ?timeout,
                "event handler timed out; killed it"
            );
        }
        Outcome::Cancelled => debug!(event, script, "agent stopping; killed event handler"),
    }
}

#[cfg(test)]
mod tests;
