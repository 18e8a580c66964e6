//! The nemesis: a seeded schedule of faults against the servers — SIGKILL and restart,
//! SIGSTOP and SIGCONT, graceful restart, and (on the testbed) network partitions, an
//! isolated node and a flapping link — one fault at a time, each held for a while and then
//! repaired, half of them aimed at the current leader.

use std::time::Duration;

use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::Serialize;
use tokio::time::Instant;

use super::JepsenError;

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL, then start again.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// SIGTERM and start again.
    Restart,
    /// The target cut off from the other servers (clients still reach it).
    Partition,
    /// The target cut off from every host, clients included.
    Isolate,
    /// The target's links to the other servers cut and restored every few hundred ms.
    Flap,
}

impl FaultKind {
    /// Whether it needs the testbed's firewall.
    pub fn is_network(self) -> bool {
        matches!(
            self,
            FaultKind::Partition | FaultKind::Isolate | FaultKind::Flap
        )
    }
}

/// What the nemesis does to servers. Names are the cluster's server names.
#[allow(async_fn_in_trait)]
pub trait Cluster {
    /// The servers' names.
    fn names(&self) -> Vec<String>;
    /// The server every running server names leader, if they agree.
    async fn leader(&self) -> Option<String>;
    /// SIGKILL `name` and wait until it is gone.
    async fn kill(&mut self, name: &str) -> Result<(), JepsenError>;
    /// Start `name` again (after a kill).
    async fn start(&mut self, name: &str) -> Result<(), JepsenError>;
    /// SIGTERM `name`, wait, start it again.
    async fn restart(&mut self, name: &str) -> Result<(), JepsenError>;
    /// SIGSTOP (`true`) or SIGCONT (`false`).
    async fn pause(&mut self, name: &str, stop: bool) -> Result<(), JepsenError>;
    /// Cut `name` from `others` (or from everyone when `others` is `None`).
    async fn cut(&mut self, name: &str, others: Option<&[String]>) -> Result<(), JepsenError>;
    /// Remove every cut.
    async fn heal(&mut self) -> Result<(), JepsenError>;
}

/// One thing the nemesis did, `t` seconds into the run.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Seconds since the run began.
    pub t: f64,
    /// What it did.
    pub what: String,
    /// The fault's kind (`None` for its repair).
    pub fault: Option<FaultKind>,
}

/// The schedule's knobs.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Which faults to draw from.
    pub kinds: Vec<FaultKind>,
    /// The seed.
    pub seed: u64,
    /// Quiet time between faults (drawn uniformly).
    pub quiet: (Duration, Duration),
    /// How long a fault is held (drawn uniformly).
    pub hold: (Duration, Duration),
}

fn draw(rng: &mut StdRng, (lo, hi): (Duration, Duration)) -> Duration {
    let (lo, hi) = (lo.as_millis() as u64, hi.as_millis() as u64);
    Duration::from_millis(if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    })
}

/// Runs faults until `end`, then repairs everything; the events, with times counted from
/// `origin`.
pub async fn run<C: Cluster>(
    cluster: &mut C,
    s: &Schedule,
    origin: Instant,
    end: Instant,
) -> Result<Vec<Event>, JepsenError> {
    let mut rng = StdRng::seed_from_u64(s.seed ^ 0x006e_656d_6573_6973);
    let mut events = Vec::new();
    let names = cluster.names();
    let log = |events: &mut Vec<Event>, what: String, fault: Option<FaultKind>| {
        let t = origin.elapsed().as_secs_f64();
        crate::out::line(&format!("  {t:6.2}s  {what}"));
        events.push(Event { t, what, fault });
    };
    while !s.kinds.is_empty() && !names.is_empty() {
        tokio::time::sleep_until((Instant::now() + draw(&mut rng, s.quiet)).min(end)).await;
        let hold = draw(&mut rng, s.hold);
        if Instant::now() + hold >= end {
            break;
        }
        let kind = s.kinds[rng.random_range(0..s.kinds.len())];
        let aim_leader = rng.random_bool(0.5);
        let random = names[rng.random_range(0..names.len())].clone();
        let target = match aim_leader {
            true => cluster.leader().await.unwrap_or(random),
            false => random,
        };
        let others: Vec<String> = names.iter().filter(|n| **n != target).cloned().collect();
        let who = if aim_leader { " (leader)" } else { "" };
        let until = Instant::now() + hold;
        match kind {
            FaultKind::Kill => {
                cluster.kill(&target).await?;
                log(&mut events, format!("kill {target}{who}"), Some(kind));
                tokio::time::sleep_until(until).await;
                cluster.start(&target).await?;
                log(&mut events, format!("start {target}"), None);
            }
            FaultKind::Pause => {
                cluster.pause(&target, true).await?;
                log(&mut events, format!("pause {target}{who}"), Some(kind));
                tokio::time::sleep_until(until).await;
                cluster.pause(&target, false).await?;
                log(&mut events, format!("resume {target}"), None);
            }
            FaultKind::Restart => {
                log(&mut events, format!("restart {target}{who}"), Some(kind));
                cluster.restart(&target).await?;
                log(&mut events, format!("restarted {target}"), None);
            }
            FaultKind::Partition => {
                cluster.cut(&target, Some(&others)).await?;
                let what = format!("partition {target}{who} | {}", others.join(","));
                log(&mut events, what, Some(kind));
                tokio::time::sleep_until(until).await;
                cluster.heal().await?;
                log(&mut events, "heal".into(), None);
            }
            FaultKind::Isolate => {
                cluster.cut(&target, None).await?;
                log(&mut events, format!("isolate {target}{who}"), Some(kind));
                tokio::time::sleep_until(until).await;
                cluster.heal().await?;
                log(&mut events, "heal".into(), None);
            }
            FaultKind::Flap => {
                log(&mut events, format!("flap {target}{who}"), Some(kind));
                let mut cut = false;
                while Instant::now() < until {
                    if cut {
                        cluster.heal().await?;
                    } else {
                        cluster.cut(&target, Some(&others)).await?;
                    }
                    cut = !cut;
                    let wait = Duration::from_millis(rng.random_range(150..600));
                    tokio::time::sleep_until((Instant::now() + wait).min(until)).await;
                }
                cluster.heal().await?;
                log(&mut events, "heal".into(), None);
            }
        }
    }
    Ok(events)
}
