//! Query loads for the federation scenarios (`federation`, `beyond`, `failure-matrix`): the
//! `_reads` helper inside a host's namespace,
//! once (a batch of GETs, each timed) or as a running stream (paced GETs until stopped),
//! and what its records say (the expected answer or not, latency percentiles).
//!
//! A record's times are wall-clock milliseconds on this machine, so they line up with the
//! scenario's events without any clock estimate.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::task::JoinHandle;

use crate::error::TestbedError;
use crate::helper::ReadRecord;
use crate::netns;
use crate::plan::HostPlan;
use crate::probe;
use crate::state::State;

/// Timeout of one GET: above the 7 s cross-DC bound, so a hang shows as a slow record
/// instead of being cut short at the bound.
pub(super) const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// `http://<host>:8500<path>`.
pub(super) fn url(host: &HostPlan, path: &str) -> String {
    format!("{}{path}", probe::base_url(host))
}

/// Whether `rec` is a 200 whose body is `expect`.
pub(super) fn answered(rec: &ReadRecord, expect: &str) -> bool {
    rec.status == Some(200) && rec.body.trim() == expect
}

/// When the answer came, in wall-clock milliseconds.
pub(super) fn ended_ms(rec: &ReadRecord) -> f64 {
    rec.sent_unix_ms as f64 + rec.ms
}

/// The `p`th percentile (0–100) of `values` (nearest rank), `None` when empty.
pub(super) fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// GETs every URL once, in order, from inside `host`'s namespace; one record per URL.
pub(super) async fn once(
    state: &State,
    host: &HostPlan,
    urls: &[String],
) -> Result<Vec<ReadRecord>, TestbedError> {
    once_with(state, host, urls, None).await
}

/// As [`once`], but PUTs `put` to every URL when given (timed writes).
pub(super) async fn once_with(
    state: &State,
    host: &HostPlan,
    urls: &[String],
    put: Option<&str>,
) -> Result<Vec<ReadRecord>, TestbedError> {
    let exe = state.testbed.to_string_lossy();
    let count = urls.len().to_string();
    let timeout = format!("{}s", READ_TIMEOUT.as_secs());
    let mut args = vec!["netns", "exec", host.netns.as_str(), exe.as_ref(), "_reads"];
    args.extend(["--max-count", &count, "--timeout", &timeout]);
    if let Some(body) = put {
        args.extend(["--put", body]);
    }
    for u in urls {
        args.extend(["--url", u.as_str()]);
    }
    let out = netns::run("ip", &args, None).await?;
    Ok(out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

// === impl Stream ===

/// A `_reads` helper asking one URL at a steady pace until stopped, and its records.
pub(super) struct Stream {
    /// What the plot and report call it (`dc2→dc1 kv read`).
    pub(super) label: String,
    /// The body every answer must have.
    pub(super) expect: String,
    child: Child,
    records: Arc<Mutex<Vec<ReadRecord>>>,
    reader: JoinHandle<()>,
}

impl Stream {
    /// Starts GETting `url` from `host`, at most one request per `every`.
    pub(super) fn spawn(
        state: &State,
        host: &HostPlan,
        label: &str,
        url: &str,
        expect: &str,
        every: Duration,
    ) -> Result<Stream, TestbedError> {
        Stream::start(state, host, label, &[url.to_string()], expect, every, None)
    }

    /// Starts PUTting `body` (`{n}`: the write's number) to each of `urls` once, in
    /// order, at most one write per `every`; an answer `true` is the expected one.
    pub(super) fn writes(
        state: &State,
        host: &HostPlan,
        label: &str,
        urls: &[String],
        body: &str,
        every: Duration,
    ) -> Result<Stream, TestbedError> {
        Stream::start(state, host, label, urls, "true", every, Some(body))
    }

    fn start(
        state: &State,
        host: &HostPlan,
        label: &str,
        urls: &[String],
        expect: &str,
        every: Duration,
        put: Option<&str>,
    ) -> Result<Stream, TestbedError> {
        let mut cmd = netns::helper(&state.testbed, &host.netns, "_reads");
        for u in urls {
            cmd.args(["--url", u]);
        }
        if let Some(body) = put {
            cmd.args(["--put", body])
                .args(["--max-count", &urls.len().to_string()]);
        }
        let mut child = cmd
            .args(["--every", &format!("{}ms", every.as_millis())])
            .args(["--timeout", &format!("{}s", READ_TIMEOUT.as_secs())])
            .arg("--stop-on-eof")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .map_err(|source| TestbedError::Io {
                what: format!("starting the read load on {}", host.name),
                source,
            })?;
        let records = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take();
        let sink = records.clone();
        let reader = tokio::spawn(async move {
            let Some(stdout) = stdout else { return };
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if let Ok(rec) = serde_json::from_str::<ReadRecord>(&l) {
                    sink.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(rec);
                }
            }
        });
        Ok(Stream {
            label: label.to_string(),
            expect: expect.to_string(),
            child,
            records,
            reader,
        })
    }

    /// How many records so far satisfy `pred`.
    pub(super) fn count(&self, pred: impl Fn(&ReadRecord) -> bool) -> usize {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|r| pred(r))
            .count()
    }

    /// Whether `rec` is the expected answer.
    pub(super) fn ok(&self, rec: &ReadRecord) -> bool {
        answered(rec, &self.expect)
    }

    /// Closes the helper's stdin (it stops after the GET in flight, which is bounded by
    /// `READ_TIMEOUT`), waits for it and returns every record.
    pub(super) async fn stop(mut self) -> Vec<ReadRecord> {
        drop(self.child.stdin.take());
        let grace = READ_TIMEOUT + Duration::from_secs(2);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = self.reader.await;
        std::mem::take(&mut *self.records.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0, 1.0, 3.0], 50.0), Some(3.0));
        assert_eq!(percentile(&[4.0], 99.0), Some(4.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
