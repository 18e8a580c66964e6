//! The agent's counters and timings (go-metrics' `IncrCounter` and `MeasureSince`), for
//! `GET /v1/agent/metrics` in both of Consul's shapes.
//!
//! ```text
//!  incr("consul.rpc.request", &[])  ─┐                      ┌─▶ interval view (JSON: Counters,
//!  sample_since("consul.api.http", ──┼─▶ Registry (mutex) ──┤     Samples; 10 s aggregates,
//!     &[("method","GET"),...], t0)  ─┘   per interval +     │     go-metrics' inmem sink)
//!                                        cumulative series  └─▶ cumulative view (Prometheus
//!                                                               counters and summaries)
//! ```
//!
//! One process-wide [`Registry`] like go-metrics' global sink: the code that measures needs no
//! handle threaded through it. Recording takes one short mutex (a hash lookup and a few
//! additions); nothing here does I/O, spawns or logs. Intervals are 10 s and kept for a
//! minute, as Consul's in-memory sink keeps them; the JSON shows the last complete interval
//! once there is one (go-metrics' `DisplayMetrics`), else the current one. The cumulative
//! series carry the time they were last updated so the Prometheus view can drop those idle
//! longer than `telemetry.prometheus_retention_time`, and the observations of the last 10 s
//! for the summary quantiles (client_golang's `MaxAge`). Gauges are not kept here: the
//! HTTP handler reads them when asked.

pub mod prometheus;

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// go-metrics' aggregation interval.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// How long complete intervals are kept (Consul's in-memory sink retains a minute).
const RETAIN: Duration = Duration::from_secs(60);

/// The window summary quantiles are computed over (client_golang's `MaxAge` in go-metrics'
/// Prometheus sink).
pub const QUANTILE_WINDOW: Duration = Duration::from_secs(10);

/// At most this many recent observations per series are kept for quantiles.
const RECENT_CAP: usize = 512;

/// A series' identity: the dotted name and its labels, sorted by label name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Consul's dotted name (`consul.raft.commitTime`).
    pub name: &'static str,
    /// Label pairs, sorted by name.
    pub labels: Vec<(&'static str, String)>,
}

impl Key {
    fn new(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
        let mut labels: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
        labels.sort();
        Key { name, labels }
    }
}

/// Counter or sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Incremented by a value (usually 1).
    Counter,
    /// A timing in milliseconds.
    Sample,
}

/// go-metrics' `AggregateSample`: what one interval saw of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    /// Observations.
    pub count: u64,
    /// Their total.
    pub sum: f64,
    /// Their total of squares (for the standard deviation).
    pub sum_sq: f64,
    /// The least observation.
    pub min: f64,
    /// The greatest observation.
    pub max: f64,
}

impl Aggregate {
    fn first(v: f64) -> Aggregate {
        Aggregate {
            count: 1,
            sum: v,
            sum_sq: v * v,
            min: v,
            max: v,
        }
    }

    /// Adds `n` observations of `v`.
    fn ingest(&mut self, v: f64, n: u64) {
        if n == 0 {
            return;
        }
        let k = n as f64;
        self.count += n;
        self.sum += v * k;
        self.sum_sq += v * v * k;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// `Sum / Count`.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// The sample standard deviation, 0 for fewer than two observations (go-metrics').
    pub fn stddev(&self) -> f64 {
        let n = self.count as f64;
        let div = n * (n - 1.0);
        if div <= 0.0 {
            return 0.0;
        }
        ((n * self.sum_sq - self.sum * self.sum) / div)
            .max(0.0)
            .sqrt()
    }

    /// The sum per second of the interval (go-metrics' `Rate`).
    pub fn rate(&self) -> f64 {
        self.sum / INTERVAL.as_secs_f64()
    }
}

/// One interval's aggregates.
#[derive(Debug, Clone, Default)]
struct Interval {
    /// Seconds since the epoch at the interval's start.
    start: u64,
    counters: HashMap<Key, Aggregate>,
    samples: HashMap<Key, Aggregate>,
}

/// A series since the agent started, for Prometheus.
#[derive(Debug, Clone)]
pub struct Cumulative {
    /// Counter or sample.
    pub kind: Kind,
    /// Observations (increments for a counter).
    pub count: u64,
    /// Their total.
    pub sum: f64,
    /// When it last changed.
    pub updated: Instant,
    /// Observations of the last [`QUANTILE_WINDOW`] (samples only).
    recent: VecDeque<(Instant, f64)>,
}

impl Cumulative {
    /// The `q` quantile (0..=1) of the observations of the last [`QUANTILE_WINDOW`] before
    /// `now`; NaN when there were none (as client_golang reports an empty window).
    pub fn quantile(&self, q: f64, now: Instant) -> f64 {
        let mut vals: Vec<f64> = self
            .recent
            .iter()
            .filter(|(t, _)| now.saturating_duration_since(*t) <= QUANTILE_WINDOW)
            .map(|(_, v)| *v)
            .collect();
        if vals.is_empty() {
            return f64::NAN;
        }
        vals.sort_by(f64::total_cmp);
        let rank = (q * (vals.len() - 1) as f64).round() as usize;
        vals[rank.min(vals.len() - 1)]
    }
}

/// What the JSON shape shows: one interval's counters and samples.
#[derive(Debug, Clone)]
pub struct IntervalView {
    /// The interval's start.
    pub start: SystemTime,
    /// Counters, sorted by key.
    pub counters: Vec<(Key, Aggregate)>,
    /// Samples, sorted by key.
    pub samples: Vec<(Key, Aggregate)>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Oldest first; the last one is the current interval.
    intervals: VecDeque<Interval>,
    cumulative: HashMap<Key, Cumulative>,
}

impl Inner {
    /// The interval holding `now`, created (and old ones dropped) as needed.
    fn interval(&mut self, now: SystemTime) -> &mut Interval {
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let start = secs - secs % INTERVAL.as_secs();
        if self.intervals.back().is_none_or(|i| i.start < start) {
            self.intervals.push_back(Interval {
                start,
                ..Interval::default()
            });
            while self
                .intervals
                .front()
                .is_some_and(|i| i.start + RETAIN.as_secs() < start)
            {
                self.intervals.pop_front();
            }
        }
        // A clock stepped back: keep adding to the newest interval.
        self.intervals.back_mut().expect("just ensured")
    }
}

/// Counters and samples of this process.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

/// The process-wide registry.
static GLOBAL: LazyLock<Registry> = LazyLock::new(Registry::default);

/// The process-wide registry every `incr`/`sample` records into.
pub fn global() -> &'static Registry {
    &GLOBAL
}

/// Adds 1 to the counter `name` with `labels` in the process-wide registry.
pub fn incr(name: &'static str, labels: &[(&'static str, &str)]) {
    count_many(name, labels, 1);
}

/// Records the milliseconds since `start` as a sample of `name` with `labels`.
pub fn sample_since(name: &'static str, labels: &[(&'static str, &str)], start: Instant) {
    sample_ms(name, labels, start.elapsed());
}

/// Records `took` in milliseconds as a sample of `name` with `labels`.
pub fn sample_ms(name: &'static str, labels: &[(&'static str, &str)], took: Duration) {
    sample_many(name, labels, took, 1);
}

/// Adds `n` to the counter `name` with `labels`, under one lock.
pub fn count_many(name: &'static str, labels: &[(&'static str, &str)], n: u64) {
    GLOBAL.record_many(
        Kind::Counter,
        name,
        labels,
        1.0,
        n,
        SystemTime::now(),
        Instant::now(),
    );
}

/// Records `n` samples of `took` (milliseconds) for `name` with `labels`, under one lock.
pub fn sample_many(name: &'static str, labels: &[(&'static str, &str)], took: Duration, n: u64) {
    GLOBAL.record_many(
        Kind::Sample,
        name,
        labels,
        took.as_secs_f64() * 1000.0,
        n,
        SystemTime::now(),
        Instant::now(),
    );
}

impl Registry {
    /// Records `value` for the series `name`/`labels` at wall time `now` (for the interval)
    /// and monotonic time `mono` (for retention and quantiles).
    pub fn record(
        &self,
        kind: Kind,
        name: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
        now: SystemTime,
        mono: Instant,
    ) {
        self.record_many(kind, name, labels, value, 1, now, mono);
    }

    /// Records `n` observations of `value` at once: one lock for a batch of equal ones (the
    /// DNS cache's hits of one `sendmmsg` batch). `n == 0` records nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn record_many(
        &self,
        kind: Kind,
        name: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
        n: u64,
        now: SystemTime,
        mono: Instant,
    ) {
        if n == 0 {
            return;
        }
        let key = Key::new(name, labels);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let interval = inner.interval(now);
        let map = match kind {
            Kind::Counter => &mut interval.counters,
            Kind::Sample => &mut interval.samples,
        };
        match map.get_mut(&key) {
            Some(a) => a.ingest(value, n),
            None => {
                let mut a = Aggregate::first(value);
                a.ingest(value, n - 1);
                map.insert(key.clone(), a);
            }
        }
        let c = inner.cumulative.entry(key).or_insert_with(|| Cumulative {
            kind,
            count: 0,
            sum: 0.0,
            updated: mono,
            recent: VecDeque::new(),
        });
        c.count += n;
        c.sum += value * n as f64;
        c.updated = mono;
        if kind == Kind::Sample {
            let add = usize::try_from(n).unwrap_or(usize::MAX).min(RECENT_CAP);
            while c.recent.len() + add > RECENT_CAP
                || c.recent
                    .front()
                    .is_some_and(|(t, _)| mono.saturating_duration_since(*t) > QUANTILE_WINDOW)
            {
                if c.recent.pop_front().is_none() {
                    break;
                }
            }
            c.recent.extend(std::iter::repeat_n((mono, value), add));
        }
    }

    /// The interval the JSON shape shows at `now`: the last complete one kept, else the
    /// current (go-metrics' `DisplayMetrics` takes the one before the newest).
    pub fn interval_view(&self, now: SystemTime) -> IntervalView {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.interval(now);
        let n = inner.intervals.len();
        let shown = &inner.intervals[n.saturating_sub(2)];
        let sorted = |m: &HashMap<Key, Aggregate>| {
            let mut v: Vec<(Key, Aggregate)> = m.iter().map(|(k, a)| (k.clone(), *a)).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        IntervalView {
            start: UNIX_EPOCH + Duration::from_secs(shown.start),
            counters: sorted(&shown.counters),
            samples: sorted(&shown.samples),
        }
    }

    /// Every series updated within `retention` of `mono`, sorted by key, for Prometheus.
    pub fn cumulative(&self, mono: Instant, retention: Duration) -> Vec<(Key, Cumulative)> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<(Key, Cumulative)> = inner
            .cumulative
            .iter()
            .filter(|(_, c)| mono.saturating_duration_since(c.updated) <= retention)
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn intervals_aggregate_and_the_view_shows_the_last_complete_one() {
        let r = Registry::default();
        let t0 = Instant::now();
        for v in [2.0, 4.0, 6.0] {
            r.record(Kind::Sample, "s", &[("node", "a")], v, at(1000), t0);
        }
        r.record(Kind::Counter, "c", &[], 1.0, at(1001), t0);
        // Only the current interval so far: it is shown.
        let v = r.interval_view(at(1005));
        assert_eq!(v.start, at(1000));
        let (k, a) = &v.samples[0];
        assert_eq!(
            (k.name, k.labels.clone()),
            ("s", vec![("node", "a".into())])
        );
        assert_eq!(
            (a.count, a.sum, a.min, a.max, a.mean()),
            (3, 12.0, 2.0, 6.0, 4.0)
        );
        assert!((a.stddev() - 2.0).abs() < 1e-9);
        assert!((a.rate() - 1.2).abs() < 1e-9);
        assert_eq!(v.counters[0].1.count, 1);
        // The next interval began: the complete one is shown, not the empty new one.
        let v = r.interval_view(at(1012));
        assert_eq!(v.start, at(1000));
        assert_eq!(v.samples.len(), 1);
        // Long after: the old interval is gone, an empty one shows.
        let v = r.interval_view(at(2000));
        assert!(v.samples.is_empty() && v.counters.is_empty());
    }

    #[test]
    fn cumulative_series_keep_totals_and_drop_idle_ones() {
        let r = Registry::default();
        let t0 = Instant::now();
        r.record(Kind::Counter, "old", &[], 1.0, at(0), t0);
        let later = t0 + Duration::from_secs(90);
        for v in [1.0, 2.0, 3.0, 4.0, 100.0] {
            r.record(Kind::Sample, "new", &[], v, at(90), later);
        }
        let all = r.cumulative(later, Duration::from_secs(120));
        assert_eq!(all.len(), 2);
        let kept = r.cumulative(later, Duration::from_secs(60));
        assert_eq!(kept.len(), 1);
        let c = &kept[0].1;
        assert_eq!((c.count, c.sum), (5, 110.0));
        assert_eq!(c.quantile(0.5, later), 3.0);
        assert_eq!(c.quantile(0.99, later), 100.0);
        assert!(c.quantile(0.5, later + Duration::from_secs(11)).is_nan());
    }

    /// A batch of `n` equal samples is the same as `n` single ones: count, sum, min/max,
    /// standard deviation and quantiles.
    #[test]
    fn a_batch_of_samples_counts_as_each_one() {
        let (one, many) = (Registry::default(), Registry::default());
        let t0 = Instant::now();
        for _ in 0..3 {
            one.record(Kind::Sample, "s", &[], 2.0, at(1000), t0);
        }
        one.record(Kind::Sample, "s", &[], 5.0, at(1000), t0);
        many.record_many(Kind::Sample, "s", &[], 2.0, 3, at(1000), t0);
        many.record_many(Kind::Sample, "s", &[], 5.0, 1, at(1000), t0);
        many.record_many(Kind::Sample, "s", &[], 9.0, 0, at(1000), t0);
        let agg = |r: &Registry| {
            let v = r.interval_view(at(1011));
            let a = v.samples.into_iter().next().expect("one series").1;
            (a.count, a.sum, a.min, a.max, a.stddev())
        };
        assert_eq!(agg(&one), agg(&many));
        assert_eq!(agg(&many).0, 4);
        let c = |r: &Registry| r.cumulative(t0, Duration::from_secs(60))[0].1.clone();
        let (a, b) = (c(&one), c(&many));
        assert_eq!((a.count, a.sum), (b.count, b.sum));
        assert_eq!(a.quantile(0.5, t0), b.quantile(0.5, t0));
        assert_eq!(b.quantile(0.99, t0), 5.0);
    }
}
