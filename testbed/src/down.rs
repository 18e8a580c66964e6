//! `testbed down`: ends every process and removes every namespace of a run. Idempotent, and
//! works from whatever is left after a crash:
//!
//! 1. the namespaces: those in the state file plus every `<prefix>-*` namespace;
//! 2. the processes: recorded pids (checked by start time), every pid inside those
//!    namespaces (`ip netns pids`), and any process whose command line points into the
//!    run's `hosts/` directory;
//! 3. SIGKILL them all, wait until they are gone, then `ip netns del` each namespace (the
//!    veths and bridges inside go with it);
//! 4. check that no `<prefix>-*` namespace is left, and remove the state file.

use std::collections::BTreeSet;
use std::time::Duration;

use rustix::process::Signal;

use crate::error::TestbedError;
use crate::netns;
use crate::out::{Progress, line};
use crate::proc::{self, Liveness};
use crate::state::RunDir;
use crate::wait;

/// How long processes get to disappear after SIGKILL.
const KILL_DEADLINE: Duration = Duration::from_secs(10);

/// What `down` removed.
#[derive(Debug, Default)]
pub struct Removed {
    /// Namespaces deleted.
    pub namespaces: usize,
    /// Processes ended.
    pub processes: usize,
}

/// `testbed down`: removes the run in `run` and reports it.
pub async fn down(run: &RunDir, prefix: Option<&str>, purge: bool) -> Result<(), TestbedError> {
    crate::preflight::require_privileges()?;
    if let Some(p) = prefix
        && !is_run_prefix(p)
    {
        return Err(TestbedError::BadPrefix(p.to_string()));
    }
    let progress = Progress::start();
    let removed = teardown(run, prefix, purge).await?;
    if removed.namespaces == 0 && removed.processes == 0 {
        line("down: nothing of this run is left (already down)");
    } else {
        progress.say(&format!(
            "down: ended {} processes, removed {} namespaces",
            removed.processes, removed.namespaces
        ));
    }
    Ok(())
}

/// `mtb` + 4 hex digits: what `up` makes, and nothing broader (so `--prefix` cannot sweep
/// other runs).
fn is_run_prefix(p: &str) -> bool {
    p.strip_prefix("mtb")
        .is_some_and(|id| id.len() == 4 && id.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Removes everything of the run in `run` (and of `extra_prefix`); the shared core of
/// `down` and of `up`'s cleanup.
pub async fn teardown(
    run: &RunDir,
    extra_prefix: Option<&str>,
    purge: bool,
) -> Result<Removed, TestbedError> {
    let state = run.load()?;
    let mut prefixes: BTreeSet<String> = extra_prefix.map(str::to_string).into_iter().collect();
    if let Some(s) = &state {
        prefixes.insert(s.plan.prefix.clone());
    }
    // The state's namespaces all carry its prefix, so the listing covers them, and also
    // finds any made after the last save.
    let mut existing: BTreeSet<String> = BTreeSet::new();
    for p in &prefixes {
        existing.extend(netns::list_with_prefix(p).await?);
    }

    // Every process to end.
    let mut pids: BTreeSet<i32> = BTreeSet::new();
    if let Some(s) = &state {
        for p in s.processes.values().chain(&s.wan_emulator) {
            if proc::liveness(p) != Liveness::Dead {
                proc::signal(p, Signal::KILL)?;
                pids.insert(p.pid);
            }
        }
    }
    for ns in &existing {
        pids.extend(netns::pids_in(ns).await);
    }
    let hosts_dir = format!("{}/", run.root().join("hosts").display());
    pids.extend(proc::pids_with_arg(&hosts_dir));
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    pids.remove(&me);
    for pid in &pids {
        proc::signal_pid(*pid, Signal::KILL);
    }
    wait::until(
        "the end of this run's processes",
        KILL_DEADLINE,
        "",
        || async {
            let left = pids
                .iter()
                .filter(|p| !matches!(proc::stat(**p), None | Some(('Z' | 'X' | 'x', _))))
                .count();
            (left == 0).then_some(())
        },
    )
    .await?;

    for ns in &existing {
        netns::delete(ns).await?;
    }
    for p in &prefixes {
        let left = netns::list_with_prefix(p).await?;
        if !left.is_empty() {
            return Err(TestbedError::Io {
                what: format!("removing namespaces {}", left.join(" ")),
                source: std::io::Error::other("still listed after `ip netns del`"),
            });
        }
    }
    run.clear()?;
    if purge && run.root().exists() {
        std::fs::remove_dir_all(run.root()).map_err(|source| TestbedError::Io {
            what: format!("removing {}", run.root().display()),
            source,
        })?;
    }
    Ok(Removed {
        namespaces: existing.len(),
        processes: pids.len(),
    })
}
