//! The query load of the rotation phases: every DC reads every other DC's `whoami` key
//! with `?dc=` at a steady pace (one `_reads` helper per ordered pair, from each DC's
//! asker), and what it found: every read into the report's samples, ok/failed counts under
//! the phase's name and one "no failed query" check. A phase may stop its load and start
//! it again; a [`Tally`] adds up the reads of each run.

use std::collections::BTreeMap;
use std::time::Duration;

use super::stream::{Stream, answered, url};
use super::{Fed, record};
use crate::error::TestbedError;
use crate::helper::ReadRecord;
use crate::scenario::Report;
use crate::state::State;
use crate::wait;

/// Pace of each pair's reads: 10 a second, so 60 a second with three DCs.
pub(super) const EVERY: Duration = Duration::from_millis(100);
/// Deadline for every pair to have its first answers.
const WARM_DEADLINE: Duration = Duration::from_secs(30);

/// The running reads of every ordered pair of DCs.
pub(super) struct AllPairs {
    /// What the report calls the phase (`wan_key_rotation`).
    phase: String,
    streams: Vec<Stream>,
}

impl AllPairs {
    /// Starts one stream per ordered pair (A reads B) of `fed`'s DCs, labelled `A->B
    /// reads` as the latency phase's (ASCII: the plot's font has no arrow), so the plot
    /// has one colour per pair; the events on it tell the phases apart.
    pub(super) fn start(state: &State, fed: &Fed, phase: &str) -> Result<AllPairs, TestbedError> {
        let mut streams = Vec::new();
        for a in &fed.dcs {
            for b in fed.dcs.iter().filter(|b| b.name != a.name) {
                let label = format!("{}->{} reads", a.name, b.name);
                let path = fed.kv("whoami", &format!("?raw&dc={}", b.name));
                let u = url(&a.asker, &path);
                streams.push(Stream::spawn(state, &a.asker, &label, &u, &b.name, EVERY)?);
            }
        }
        Ok(AllPairs {
            phase: phase.to_string(),
            streams,
        })
    }

    /// Waits until every pair has `n` answered reads.
    pub(super) async fn warm(&self, n: usize) -> Result<(), TestbedError> {
        wait::until(
            &format!("{n} answered reads of every pair before the {}", self.phase),
            WARM_DEADLINE,
            "",
            || async {
                self.streams
                    .iter()
                    .all(|s| s.count(|r| s.ok(r)) >= n)
                    .then_some(())
            },
        )
        .await
    }

    /// Waits until every pair has made `n` reads sent at or after `since_ms` (wall clock),
    /// answered or not.
    pub(super) async fn reads_after(
        &self,
        since_ms: f64,
        n: usize,
        deadline: Duration,
    ) -> Result<(), TestbedError> {
        wait::until(
            &format!("{n} reads of every pair after the {}", self.phase),
            deadline,
            "",
            || async {
                self.streams
                    .iter()
                    .all(|s| s.count(|r| r.sent_unix_ms as f64 >= since_ms) >= n)
                    .then_some(())
            },
        )
        .await
    }

    /// Stops every stream and adds their reads to `tally`.
    pub(super) async fn stop_into(self, tally: &mut Tally) {
        for s in self.streams {
            let (label, expect) = (s.label.clone(), s.expect.clone());
            for r in s.stop().await {
                tally.reads.push((label.clone(), expect.clone(), r));
            }
        }
    }

    /// Stops every stream and reports what they saw ([`Tally::report`]). Returns the
    /// failed count.
    pub(super) async fn finish(self, report: &mut Report, fed: &Fed, min: usize) -> usize {
        let mut tally = Tally::new(&self.phase);
        self.stop_into(&mut tally).await;
        tally.report(report, fed, min)
    }
}

// === impl Tally ===

/// The reads of one phase's loads, when a phase stops its load in between (to end
/// connections while no read is in flight) and starts it again.
pub(super) struct Tally {
    phase: String,
    /// (stream label, expected body, the read).
    reads: Vec<(String, String, ReadRecord)>,
}

impl Tally {
    /// An empty tally for `phase`.
    pub(super) fn new(phase: &str) -> Tally {
        Tally {
            phase: phase.to_string(),
            reads: Vec::new(),
        }
    }

    /// Records what the loads saw: each read as a sample, counts `<phase>_reads_ok` /
    /// `<phase>_reads_failed`, and the check `<phase>_no_failed_query` (every read
    /// answered, at least `min` of them). Returns the failed count.
    pub(super) fn report(self, report: &mut Report, fed: &Fed, min: usize) -> usize {
        let total = self.reads.len();
        let mut failed: Vec<&(String, String, ReadRecord)> = Vec::new();
        let mut per_pair: BTreeMap<&str, usize> = BTreeMap::new();
        for read in &self.reads {
            let (label, expect, r) = read;
            record(report, fed, label, r, expect);
            if answered(r, expect) {
                *per_pair.entry(pair_of(label)).or_default() += 1;
            } else {
                failed.push(read);
            }
        }
        let phase = &self.phase;
        let n_failed = failed.len();
        report
            .counts
            .insert(format!("{phase}_reads_ok"), (total - n_failed) as u64);
        report
            .counts
            .insert(format!("{phase}_reads_failed"), n_failed as u64);
        let pairs: Vec<String> = per_pair.iter().map(|(p, n)| format!("{p}: {n}")).collect();
        report.check(
            &format!("{phase}_no_failed_query"),
            n_failed == 0 && total >= min,
            match failed.first() {
                Some((label, _, f)) => format!(
                    "{n_failed} of {total} reads failed; first at {:.2}s ({label}): {:?} after {:.0} ms: {:.200}",
                    fed.t(f.sent_unix_ms as f64),
                    f.status,
                    f.ms,
                    f.body
                ),
                None => format!(
                    "{total} cross-DC reads (at least {min} wanted), all answered ({})",
                    pairs.join(", ")
                ),
            },
        );
        n_failed
    }
}

/// `dc1->dc2` of a stream label `dc1->dc2 reads`.
fn pair_of(label: &str) -> &str {
    label.split(' ').next().unwrap_or(label)
}
