//! Health checks run by the agent that owns them (Consul's `agent/checks`): one task per
//! check, owned by [`Runners`], started and stopped as registrations change
//! ([`Runners::reconcile`]). Results go into [`LocalState`], which syncs them at once.
//!
//! - TTL: critical with `TTL expired` unless `pass`/`warn`/`fail`/`update` comes within the TTL.
//! - HTTP: `method` (GET) with `header` and `body` every `interval`, bounded by `timeout` (10 s):
//!   2xx passing, 429 warning, anything else or no answer critical; output is the status line
//!   and up to 4 KiB of body, as Consul's.
//! - TCP: a connect within `timeout` is passing.
//! - Script (`args`, run without a shell): exit 0 passing, 1 warning, else critical; killed
//!   after `timeout`; output is stdout and stderr, capped like HTTP's.
//!
//! HTTP, TCP and script results pass through Consul's counters (`success_before_passing`,
//! `failures_before_warning`, `failures_before_critical`), and a service whose check stays
//! critical for its `deregister_critical_service_after` is removed from local state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{LocalCheck, LocalState};
use crate::catalog::HealthStatus;

/// Consul's default check timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Body bytes kept in an HTTP check's output (Consul's `BufSize`).
const OUTPUT_MAX: usize = 4 * 1024;

/// What a running check task was started for (restarted when it changes).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Ttl(Duration),
    Http,
    Tcp,
    Script,
}

struct Running {
    kind: Kind,
    definition: crate::catalog::CheckDefinition,
    args: Vec<String>,
    token: CancellationToken,
    /// TTL checks: the last time the clock was reset.
    touched: Option<watch::Sender<Instant>>,
}

/// The check tasks of this agent.
pub struct Runners {
    local: Arc<LocalState>,
    running: Mutex<HashMap<String, Running>>,
    tracker: TaskTracker,
    token: CancellationToken,
    http: reqwest::Client,
}

impl std::fmt::Debug for Runners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runners").finish_non_exhaustive()
    }
}

fn kind_of(c: &LocalCheck) -> Option<Kind> {
    if let Some(ttl) = c.ttl() {
        return Some(Kind::Ttl(ttl));
    }
    let d = &c.check.definition;
    if !d.http.is_empty() {
        Some(Kind::Http)
    } else if !d.tcp.is_empty() {
        Some(Kind::Tcp)
    } else if !c.args.is_empty() {
        Some(Kind::Script)
    } else {
        None
    }
}

fn go_duration(s: &str) -> Option<Duration> {
    meridian_config::duration::parse_go_duration(s)
        .ok()
        .filter(|d| !d.is_zero())
}

impl Runners {
    /// Runners for `local`'s checks; tasks live on `tracker` until `token` is cancelled.
    pub fn new(local: Arc<LocalState>, tracker: TaskTracker, token: CancellationToken) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .unwrap_or_default();
        Self {
            local,
            running: Mutex::new(HashMap::new()),
            tracker,
            token,
            http,
        }
    }

    /// Starts tasks for new or changed checks and stops those of removed ones.
    pub fn reconcile(&self) {
        let checks = self.local.checks();
        let mut running = self.running.lock();
        running.retain(|id, r| {
            let keep = checks.iter().any(|c| {
                c.check.check_id == *id
                    && kind_of(c).as_ref() == Some(&r.kind)
                    && c.check.definition == r.definition
                    && c.args == r.args
            });
            if !keep {
                r.token.cancel();
            }
            keep
        });
        for c in checks {
            let id = c.check.check_id.clone();
            if running.contains_key(&id) {
                continue;
            }
            let Some(kind) = kind_of(&c) else {
                continue;
            };
            let token = self.token.child_token();
            let (touched, rx) = watch::channel(Instant::now());
            let local = Arc::clone(&self.local);
            let def = c.check.definition.clone();
            let interval = go_duration(&def.interval).unwrap_or(Duration::from_secs(10));
            let timeout = go_duration(&def.timeout).unwrap_or(DEFAULT_TIMEOUT);
            let counters = Counters::new(&c);
            match &kind {
                Kind::Ttl(ttl) => {
                    self.tracker
                        .spawn(run_ttl(local, id.clone(), *ttl, rx, token.clone()));
                }
                Kind::Http => {
                    let probe = HttpProbe {
                        client: self.http.clone(),
                        def: def.clone(),
                        timeout,
                    };
                    self.tracker.spawn(run_every(
                        local,
                        id.clone(),
                        interval,
                        counters.clone(),
                        token.clone(),
                        move || {
                            let probe = probe.clone();
                            async move { probe.run().await }
                        },
                    ));
                }
                Kind::Tcp => {
                    let addr = def.tcp.clone();
                    self.tracker.spawn(run_every(
                        local,
                        id.clone(),
                        interval,
                        counters.clone(),
                        token.clone(),
                        move || {
                            let addr = addr.clone();
                            async move { tcp_probe(&addr, timeout).await }
                        },
                    ));
                }
                Kind::Script => {
                    let args = c.args.clone();
                    self.tracker.spawn(run_every(
                        local,
                        id.clone(),
                        interval,
                        counters.clone(),
                        token.clone(),
                        move || {
                            let args = args.clone();
                            async move { script_probe(&args, timeout).await }
                        },
                    ));
                }
            }
            running.insert(
                id,
                Running {
                    kind,
                    definition: def,
                    args: c.args.clone(),
                    token,
                    touched: Some(touched),
                },
            );
        }
    }

    /// Resets a TTL check's clock (after `pass`/`warn`/`fail`/`update`).
    pub fn touch(&self, id: &str) {
        if let Some(tx) = self.running.lock().get(id).and_then(|r| r.touched.as_ref()) {
            tx.send_replace(Instant::now());
        }
    }
}

async fn run_ttl(
    local: Arc<LocalState>,
    id: String,
    ttl: Duration,
    mut touched: watch::Receiver<Instant>,
    token: CancellationToken,
) {
    loop {
        let deadline = *touched.borrow_and_update() + ttl;
        tokio::select! {
            _ = token.cancelled() => return,
            changed = touched.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep_until(deadline) => {
                local.set_status(&id, HealthStatus::Critical, "TTL expired");
                // Stay critical until touched again.
                tokio::select! {
                    _ = token.cancelled() => return,
                    changed = touched.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}

/// Consul's `StatusHandler`: a result only changes the status after enough of them in a
/// row.
#[derive(Debug, Clone, Default)]
struct Counters {
    success_before_passing: u32,
    failures_before_warning: u32,
    failures_before_critical: u32,
    successes: u32,
    failures: u32,
}

impl Counters {
    fn new(c: &LocalCheck) -> Self {
        Self {
            success_before_passing: c.success_before_passing,
            failures_before_warning: if c.failures_before_warning == 0 {
                c.failures_before_critical
            } else {
                c.failures_before_warning
            },
            failures_before_critical: c.failures_before_critical,
            ..Self::default()
        }
    }

    /// The status to record for this result, or `None` to keep the current one.
    fn observe(&mut self, status: HealthStatus) -> Option<HealthStatus> {
        if status == HealthStatus::Passing {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            (self.successes >= self.success_before_passing).then_some(HealthStatus::Passing)
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.failures_before_critical {
                Some(status)
            } else if self.failures >= self.failures_before_warning {
                Some(HealthStatus::Warning)
            } else {
                None
            }
        }
    }
}

async fn run_every<F, Fut>(
    local: Arc<LocalState>,
    id: String,
    interval: Duration,
    mut counters: Counters,
    token: CancellationToken,
    probe: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (HealthStatus, String)>,
{
    // Consul staggers the first run randomly within the interval.
    let first = interval.mul_f64(rand::random::<f64>() * 0.5);
    let mut next = Instant::now() + first;
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        next = Instant::now() + interval;
        let (status, output) = tokio::select! {
            _ = token.cancelled() => return,
            r = probe() => r,
        };
        if let Some(status) = counters.observe(status) {
            local.set_status(&id, status, &output);
        }
    }
}

async fn script_probe(args: &[String], timeout: Duration) -> (HealthStatus, String) {
    let Some((cmd, rest)) = args.split_first() else {
        return (HealthStatus::Critical, "no command".into());
    };
    let child = tokio::process::Command::new(cmd)
        .args(rest)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, child).await {
        Err(_) => (
            HealthStatus::Critical,
            format!("Timed out ({timeout:?}) running check"),
        ),
        Ok(Err(e)) => (HealthStatus::Critical, format!("cannot run {cmd:?}: {e}")),
        Ok(Ok(out)) => {
            let mut text = out.stdout;
            text.extend_from_slice(&out.stderr);
            text.truncate(OUTPUT_MAX);
            let status = match out.status.code() {
                Some(0) => HealthStatus::Passing,
                Some(1) => HealthStatus::Warning,
                _ => HealthStatus::Critical,
            };
            (status, String::from_utf8_lossy(&text).into_owned())
        }
    }
}

/// Removes services whose check stayed critical past its `deregister_critical_service_after`
/// (Consul's reaper, checked every second).
pub async fn reap_critical(local: Arc<LocalState>, token: CancellationToken) {
    let mut since: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let checks = local.checks();
        since.retain(|id, _| checks.iter().any(|c| c.check.check_id == *id));
        for c in checks {
            let Some(after) = go_duration(&c.check.definition.deregister_critical_service_after)
            else {
                continue;
            };
            if c.check.status != HealthStatus::Critical || c.check.service_id.is_empty() {
                since.remove(&c.check.check_id);
                continue;
            }
            let first = *since.entry(c.check.check_id.clone()).or_insert(now);
            if now.duration_since(first) >= after && local.remove_service(&c.check.service_id) {
                tracing::info!(
                    service = %c.check.service_id, check = %c.check.check_id,
                    "deregistered service whose check stayed critical past deregister_critical_service_after"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_need_consecutive_results() {
        let c = LocalCheck {
            success_before_passing: 2,
            failures_before_warning: 1,
            failures_before_critical: 3,
            ..LocalCheck::default()
        };
        let mut k = Counters::new(&c);
        use HealthStatus::{Critical, Passing, Warning};
        assert_eq!(k.observe(Passing), None);
        assert_eq!(k.observe(Passing), Some(Passing));
        assert_eq!(k.observe(Critical), Some(Warning));
        assert_eq!(k.observe(Critical), Some(Warning));
        assert_eq!(k.observe(Critical), Some(Critical));
        // A success in between resets the failures.
        assert_eq!(k.observe(Passing), None);
        assert_eq!(k.observe(Critical), Some(Warning));
        // Defaults: every result counts at once.
        let mut d = Counters::new(&LocalCheck::default());
        assert_eq!(d.observe(Critical), Some(Critical));
        assert_eq!(d.observe(Passing), Some(Passing));
    }

    #[tokio::test]
    async fn scripts_map_exit_codes_and_time_out() {
        let sh = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
        let t = Duration::from_secs(5);
        assert_eq!(
            script_probe(&sh("echo ok"), t).await,
            (HealthStatus::Passing, "ok\n".into())
        );
        assert_eq!(
            script_probe(&sh("exit 1"), t).await.0,
            HealthStatus::Warning
        );
        assert_eq!(
            script_probe(&sh("exit 2"), t).await.0,
            HealthStatus::Critical
        );
        let (status, out) = script_probe(&sh("sleep 5"), Duration::from_millis(100)).await;
        assert_eq!(status, HealthStatus::Critical);
        assert!(out.contains("Timed out"), "{out}");
    }
}

#[derive(Clone)]
struct HttpProbe {
    client: reqwest::Client,
    def: crate::catalog::CheckDefinition,
    timeout: Duration,
}

impl HttpProbe {
    async fn run(&self) -> (HealthStatus, String) {
        let d = &self.def;
        let method = if d.method.is_empty() {
            "GET"
        } else {
            d.method.as_str()
        };
        let Ok(m) = reqwest::Method::from_bytes(method.as_bytes()) else {
            return (HealthStatus::Critical, format!("invalid method {method:?}"));
        };
        let mut req = self.client.request(m, &d.http).timeout(self.timeout);
        for (k, vs) in &d.header {
            for v in vs {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        if !d.body.is_empty() {
            req = req.body(d.body.clone());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return (
                    HealthStatus::Critical,
                    format!("Get \"{}\": {}", d.http, error_chain(&e)),
                );
            }
        };
        let status = resp.status();
        let mut body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        body.truncate(OUTPUT_MAX);
        let output = format!(
            "HTTP {method} {}: {} Output: {}",
            d.http,
            status,
            String::from_utf8_lossy(&body)
        );
        let health = if status.is_success() {
            HealthStatus::Passing
        } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            HealthStatus::Warning
        } else {
            HealthStatus::Critical
        };
        (health, output)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

async fn tcp_probe(addr: &str, timeout: Duration) -> (HealthStatus, String) {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => (
            HealthStatus::Passing,
            format!("TCP connect {addr}: Success"),
        ),
        Ok(Err(e)) => (HealthStatus::Critical, format!("dial tcp {addr}: {e}")),
        Err(_) => (
            HealthStatus::Critical,
            format!("dial tcp {addr}: i/o timeout"),
        ),
    }
}
