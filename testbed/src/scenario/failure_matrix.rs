//! Scenario `failure-matrix` (issue #16 item 6) on `examples/beyond.toml`: every operation
//! (local read, stale read and write; `?dc=` read, stale read and write; DNS local, remote
//! and `any`; `?dc=*`; KV replication) under every fault (none; local leader lost; local
//! quorum lost; one gateway lost; all of dc1's gateways lost; dc2 lost; the dc1–dc2 WAN
//! link cut; that link at 300 ms with 5% loss), asked from dc1's client.
//!
//! For each fault: wait until the federation is healthy, put the fault in force, measure
//! every operation at once (a few attempts each, timed, classified from the answers:
//! `measure`), repair, and for replication check that keys which were not copied in time
//! arrive after the repair. Every cell is a check: measured outcome == `table::expected`.
//! The measurements (not the table) are rendered as Markdown into the results directory
//! and, with `--doc PATH`, to PATH (`scripts/failure-matrix.sh` writes
//! docs/failure-matrix.md).

mod faults;
mod measure;
mod render;
mod table;

use std::path::Path;

use tokio::time::Instant;

use super::sites::{Sites, put};
use super::{Report, ScenarioError};
use crate::error::TestbedError;
use crate::out::Progress;
use crate::state::{RunDir, State};
use measure::{Attempt, Ctx};
use table::{Fault, Op, Outcome};

/// How long a key that was not copied in time may take to arrive after the repair.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(30);

/// One measured cell.
#[derive(Debug, Clone)]
struct Cell {
    fault: Fault,
    op: Op,
    expected: Outcome,
    why: &'static str,
    /// The class most of its attempts had (ties: the worse one).
    measured: Outcome,
    attempts: Vec<Attempt>,
    /// Replication cells whose keys came after the repair: how long after.
    caught_up_s: Option<f64>,
}

impl Cell {
    fn new(fault: Fault, op: Op, attempts: Vec<Attempt>) -> Cell {
        let (expected, why) = table::expected(op, fault);
        let measured = most_common(attempts.iter().map(|a| a.class));
        Cell {
            fault,
            op,
            expected,
            why,
            measured,
            attempts,
            caught_up_s: None,
        }
    }

    /// As expected: the measured outcome is the expected one and no attempt hung or was
    /// wrong (never acceptable, not even once).
    fn as_expected(&self) -> bool {
        self.measured == self.expected
            && !self
                .attempts
                .iter()
                .any(|a| matches!(a.class, Outcome::Hangs | Outcome::Wrong))
    }

    /// How many attempts had the measured outcome, of how many.
    fn agreeing(&self) -> (usize, usize) {
        let n = self
            .attempts
            .iter()
            .filter(|a| a.class == self.measured)
            .count();
        (n, self.attempts.len())
    }

    /// Median and largest attempt time, in ms.
    fn p50_max(&self) -> (f64, f64) {
        let mut ms: Vec<f64> = self.attempts.iter().map(|a| a.ms).collect();
        ms.sort_by(f64::total_cmp);
        let p50 = ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN);
        (p50, ms.last().copied().unwrap_or(f64::NAN))
    }
}

/// The class most of `classes` have; on a tie the worse one; `Hangs` for none.
fn most_common(classes: impl Iterator<Item = Outcome>) -> Outcome {
    let mut counts: std::collections::BTreeMap<Outcome, usize> = std::collections::BTreeMap::new();
    for c in classes {
        *counts.entry(c).or_default() += 1;
    }
    // Outcomes are ordered best first, so on equal counts the later (worse) one wins.
    counts
        .into_iter()
        .max_by_key(|(c, n)| (*n, *c))
        .map_or(Outcome::Hangs, |(c, _)| c)
}

/// Runs the scenario, filling `report`; writes the document to `doc` too when given.
pub(super) async fn run(
    run_dir: &RunDir,
    state: &mut State,
    report: &mut Report,
    progress: Progress,
    doc: Option<&Path>,
) -> Result<(), TestbedError> {
    crate::preflight::require_tool("dig", "bind9-dnsutils")?;
    let s = Sites::pick(state, "failure-matrix")?;
    progress.say("registering web and api; waiting for the WAN pool to sort by round trip");
    s.prepare(state).await?;
    let ctx_prefix = format!("matrix/{}", report.started_unix);
    let replicated = format!("config/matrix-{}", report.started_unix);
    seed(state, &s, &ctx_prefix).await?;
    let mut cells = Vec::new();
    let mut outcome = Ok(());
    for fault in Fault::ALL {
        let started = Instant::now();
        let done = one_fault(
            run_dir,
            state,
            &s,
            &ctx_prefix,
            &replicated,
            fault,
            &mut cells,
        )
        .await;
        let secs = started.elapsed().as_secs_f64();
        report
            .timings
            .insert(format!("fault_{}_s", fault.key()), secs);
        progress.say(&format!(
            "{}: measured and repaired in {secs:.1}s",
            fault.title()
        ));
        if let Err(e) = done {
            report.check(
                &format!("{}_injected_and_repaired", fault.key()),
                false,
                e.to_string(),
            );
            outcome = Err(e);
            break;
        }
    }
    for c in &cells {
        let (p50, max) = c.p50_max();
        report
            .timings
            .insert(format!("{}__{}_p50_ms", c.fault.key(), c.op.key()), p50);
        let notes: Vec<&str> = c.attempts.iter().map(|a| a.note.as_str()).collect();
        report.check(
            &format!("{}__{}", c.fault.key(), c.op.key()),
            c.as_expected(),
            format!(
                "expected {}, measured {} in {} of {} attempts (p50 {p50:.0} ms, max {max:.0} ms): {}",
                c.expected.word(),
                c.measured.word(),
                c.agreeing().0,
                c.agreeing().1,
                notes.join(" | ")
            ),
        );
    }
    report.counts.insert("cells".into(), cells.len() as u64);
    report.counts.insert(
        "cells_as_expected".into(),
        cells.iter().filter(|c| c.as_expected()).count() as u64,
    );
    let text = render::markdown(state, report, &cells, progress.secs());
    let written = write(run_dir, report, doc, &text);
    report.check(
        "matrix_document_written",
        written.is_ok(),
        written.unwrap_or_else(|e| e),
    );
    outcome
}

/// The keys the reads ask: `<prefix>/local` = dc1 in dc1, `<prefix>/remote` = dc2 in dc2.
async fn seed(state: &State, s: &Sites, prefix: &str) -> Result<(), TestbedError> {
    let local = put(
        state,
        &s.near.asker,
        &format!("/v1/kv/{prefix}/local"),
        &s.near.name,
    )
    .await;
    let path = format!("/v1/kv/{prefix}/remote?dc={}", s.mid.name);
    let remote = put(state, &s.near.asker, &path, &s.mid.name).await;
    for r in [&local, &remote] {
        if r.status != Some(200) {
            return Err(ScenarioError::Step(format!("seeding: {}", super::sites::brief(r))).into());
        }
    }
    Ok(())
}

/// One row: health gate, fault, measurements, repair (always), late replication keys.
async fn one_fault(
    run_dir: &RunDir,
    state: &mut State,
    s: &Sites,
    prefix: &str,
    replicated: &str,
    fault: Fault,
    cells: &mut Vec<Cell>,
) -> Result<(), TestbedError> {
    faults::healthy(run_dir, state, s).await?;
    let mut broken = faults::Broken::default();
    let injected = faults::inject(run_dir, state, s, fault, &mut broken).await;
    let measured = match &injected {
        Ok(()) => {
            let ctx = Ctx {
                state,
                s,
                prefix: prefix.to_string(),
                replicated: replicated.to_string(),
            };
            measure::all(&ctx, fault).await
        }
        Err(_) => Vec::new(),
    };
    let repaired = faults::repair(run_dir, state, s, broken).await;
    let repair_done = Instant::now();
    injected?;
    repaired?;
    let ctx = Ctx {
        state,
        s,
        prefix: prefix.to_string(),
        replicated: replicated.to_string(),
    };
    for (op, attempts) in measured {
        let mut cell = Cell::new(fault, op, attempts);
        let pending: Vec<String> = cell
            .attempts
            .iter()
            .filter_map(|a| a.pending_key.clone())
            .collect();
        if !pending.is_empty() {
            let mut all = true;
            for key in &pending {
                all &= measure::seen_in_replica(&ctx, key, Instant::now() + CATCH_UP).await;
            }
            cell.caught_up_s = Some(repair_done.elapsed().as_secs_f64());
            if !all {
                // Acknowledged in dc1 and never copied: lost.
                cell.measured = Outcome::Wrong;
            }
        }
        cells.push(cell);
    }
    Ok(())
}

/// Writes the document into the results directory and to `doc`; says where.
fn write(
    run_dir: &RunDir,
    report: &Report,
    doc: Option<&Path>,
    text: &str,
) -> Result<String, String> {
    let dir = run_dir.results_dir();
    let _ = run_dir.create_dir(&dir);
    let mut paths = vec![dir.join(format!("failure-matrix-{}.md", report.started_unix))];
    paths.extend(doc.map(Path::to_path_buf));
    for p in &paths {
        std::fs::write(p, text).map_err(|e| format!("writing {}: {e}", p.display()))?;
    }
    Ok(paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", "))
}

#[cfg(test)]
mod tests {
    use super::most_common;
    use super::table::Outcome::{FailsFast, Hangs, Stale, Works};

    #[test]
    fn a_cell_is_what_most_attempts_did_ties_to_the_worse() {
        assert_eq!(most_common([Works, Works, FailsFast].into_iter()), Works);
        assert_eq!(
            most_common([FailsFast, Works, FailsFast].into_iter()),
            FailsFast
        );
        assert_eq!(most_common([Works, Stale].into_iter()), Stale);
        assert_eq!(most_common([].into_iter()), Hangs);
    }
}
