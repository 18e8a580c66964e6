//! Talking to the link emulator, and the `testbed wan ...` commands built on it.
//!
//! The protocol: one JSON request line (`{"op":"reload"}` or `{"op":"stats"}`) on the Unix
//! socket `hosts/wan-router/control.sock`, one JSON `Stats` line back. The links live in the
//! state file (`wan_links`, the source of truth) and in `hosts/wan-router/links.json` (what
//! the emulator reads); a change rewrites both and then asks the emulator to reload, so the
//! command returns only once the emulator applies it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::router::{control_path, write_links};
use super::{LinkParams, WanLink, micros, topology_params};
use crate::error::TestbedError;
use crate::out::line;
use crate::state::{RunDir, State};

/// How long the emulator has to answer a request.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// A WAN command could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WanError {
    /// The topology has no DC with gateways, so no WAN router.
    #[error("this testbed has no WAN (no datacenter has gateways)")]
    NoRouter,
    /// No link joins the two names.
    #[error(
        "no WAN link between {a:?} and {b:?} (both must be datacenters with gateways; `testbed wan show` lists the links)"
    )]
    NoLink {
        /// One name.
        a: String,
        /// The other.
        b: String,
    },
    /// A value out of range.
    #[error("{0}")]
    BadValue(String),
    /// The emulator did not answer, or answered with an error.
    #[error("link emulator ({}): {reason}; see {}", socket.display(), log.display())]
    Control {
        /// Its control socket.
        socket: PathBuf,
        /// Its log.
        log: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A control request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Re-read the links file, then answer with the stats.
    Reload,
    /// Answer with the stats.
    Stats,
}

/// Packet counts of one direction of a link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Held and written back.
    pub forwarded: u64,
    /// Dropped by random loss.
    pub lost: u64,
    /// Dropped by a blackhole.
    pub blackholed: u64,
}

/// One link's parameters and counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkStats {
    /// The link and its parameters now.
    pub link: WanLink,
    /// Packets from `a` to `b`.
    pub a_to_b: Counters,
    /// Packets from `b` to `a`.
    pub b_to_a: Counters,
}

/// The emulator's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Every link.
    pub links: Vec<LinkStats>,
    /// Packets that named no link (IPv6 chatter, say), dropped.
    pub unrouted: u64,
    /// Packets dropped because too many were held.
    pub overflow: u64,
    /// Packets held right now.
    pub queued: u64,
    /// Why a request failed.
    pub error: Option<String>,
}

impl Stats {
    /// The stats of the link between `a` and `b` (either order).
    pub fn link(&self, a: &str, b: &str) -> Option<&LinkStats> {
        self.links
            .iter()
            .find(|s| (s.link.a == a && s.link.b == b) || (s.link.a == b && s.link.b == a))
    }
}

/// Sends `req` to the emulator of `run`; its answer.
pub async fn request(run: &RunDir, req: Request) -> Result<Stats, WanError> {
    let socket = control_path(run);
    let fail = |reason: String| WanError::Control {
        socket: socket.clone(),
        log: super::router::log_path(run),
        reason,
    };
    let exchange = async {
        let mut stream = UnixStream::connect(&socket).await?;
        let mut text = serde_json::to_string(&req).unwrap_or_default();
        text.push('\n');
        stream.write_all(text.as_bytes()).await?;
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    let reply = tokio::time::timeout(CONTROL_TIMEOUT, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {CONTROL_TIMEOUT:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    let stats: Stats = serde_json::from_str(&reply).map_err(|e| fail(format!("answer: {e}")))?;
    match stats.error {
        Some(e) => Err(fail(e)),
        None => Ok(stats),
    }
}

/// A change to one link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkChange {
    /// Set the one-way delay (and the jitter, when given).
    Delay(Duration, Option<Duration>),
    /// Set the loss percentage.
    Loss(f64),
    /// Drop everything.
    Blackhole,
    /// Back to what the topology file says.
    Restore,
}

/// `testbed wan delay|loss|blackhole|restore A B`.
pub async fn change(run: &RunDir, a: &str, b: &str, what: LinkChange) -> Result<(), TestbedError> {
    crate::preflight::require_privileges()?;
    let mut state = run.require()?;
    if state.plan.wan_router.is_none() {
        return Err(WanError::NoRouter.into());
    }
    let topology = state.topology.clone();
    let link = find_link(&mut state, a, b)?;
    apply(
        &mut link.params,
        what,
        &topology_params(&topology, &link.a, &link.b),
    )?;
    let now = link.clone();
    run.save(&state)?;
    write_links(run, &state.wan_links)?;
    request(run, Request::Reload).await?;
    line(&format!(
        "wan {}–{}: {}",
        now.a,
        now.b,
        now.params.describe()
    ));
    Ok(())
}

fn find_link<'a>(state: &'a mut State, a: &str, b: &str) -> Result<&'a mut WanLink, WanError> {
    state
        .wan_links
        .iter_mut()
        .find(|l| (l.a == a && l.b == b) || (l.a == b && l.b == a))
        .ok_or_else(|| WanError::NoLink {
            a: a.to_string(),
            b: b.to_string(),
        })
}

/// Applies `what` to `params` (`topology`: the link as the topology file has it).
pub fn apply(
    params: &mut LinkParams,
    what: LinkChange,
    topology: &LinkParams,
) -> Result<(), WanError> {
    match what {
        LinkChange::Delay(delay, jitter) => {
            params.delay_us = micros(delay);
            if let Some(j) = jitter {
                params.jitter_us = micros(j);
            }
        }
        LinkChange::Loss(p) if (0.0..=100.0).contains(&p) => params.loss_percent = p,
        LinkChange::Loss(p) => {
            return Err(WanError::BadValue(format!(
                "loss {p} is not a percentage (0–100)"
            )));
        }
        LinkChange::Blackhole => params.blackhole = true,
        LinkChange::Restore => *params = *topology,
    }
    Ok(())
}

/// `testbed wan show`: every link, its parameters and the emulator's packet counts.
pub async fn show(run: &RunDir, json: bool) -> Result<(), TestbedError> {
    crate::preflight::require_privileges()?;
    let state = run.require()?;
    if state.plan.wan_router.is_none() {
        return Err(WanError::NoRouter.into());
    }
    let stats = request(run, Request::Stats).await?;
    if json {
        line(&serde_json::to_string_pretty(&stats).unwrap_or_default());
        return Ok(());
    }
    for s in &stats.links {
        let c = |c: &Counters| {
            format!(
                "{} fwd, {} lost, {} blackholed",
                c.forwarded, c.lost, c.blackholed
            )
        };
        line(&format!(
            "{}–{}: {}\n  {}→{}: {}\n  {}→{}: {}",
            s.link.a,
            s.link.b,
            s.link.params.describe(),
            s.link.a,
            s.link.b,
            c(&s.a_to_b),
            s.link.b,
            s.link.a,
            c(&s.b_to_a)
        ));
    }
    line(&format!(
        "held now: {}; dropped: {} naming no link, {} over the queue bound",
        stats.queued, stats.unrouted, stats.overflow
    ));
    Ok(())
}

/// Whether `path` is short enough for a Unix socket address (108 bytes with the NUL).
pub fn socket_path_fits(path: &Path) -> bool {
    path.as_os_str().len() < 108
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{LinkChange, apply};
    use crate::wan::LinkParams;

    #[test]
    fn changes_set_one_thing_and_restore_goes_back_to_the_topology() {
        let topo = LinkParams {
            delay_us: 20_000,
            ..LinkParams::default()
        };
        let mut p = topo;
        apply(
            &mut p,
            LinkChange::Delay(Duration::from_millis(80), None),
            &topo,
        )
        .expect("delay");
        apply(&mut p, LinkChange::Loss(5.0), &topo).expect("loss");
        assert_eq!((p.delay_us, p.loss_percent), (80_000, 5.0));
        assert!(apply(&mut p, LinkChange::Loss(101.0), &topo).is_err());
        apply(&mut p, LinkChange::Blackhole, &topo).expect("blackhole");
        assert!(p.blackhole);
        apply(&mut p, LinkChange::Restore, &topo).expect("restore");
        assert_eq!(p, topo);
    }
}
