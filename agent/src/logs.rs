//! The agent's live log, for `/v1/agent/monitor`: a `tracing` layer that publishes each
//! event as a [`LogRecord`] on a bounded broadcast channel, and the formatting of records in
//! Consul's (hclog's) text and JSON line shapes.
//!
//! ```text
//!   tracing event ──EnvFilter (log_level)──▶ fmt layer (stderr)
//!              └──Wanted (monitors' levels)──▶ LogLayer ──broadcast(cap)──▶ each monitor
//! ```
//!
//! As Consul's monitor, a monitor sees events at its own level whatever the agent's
//! `log_level` (an agent logging at `warn` still streams `debug` to `meridian monitor
//! -log-level debug`): the layer has its own per-layer filter, open to the most verbose
//! level a connected monitor asked for and closed while nobody listens, so nothing is
//! captured or formatted for nobody. Other crates' chatter is held to what the agent's
//! default filter lets through (`info`; `warn` for openraft, sqlx and hickory, whose
//! `info`/`debug` is per request). A subscriber that falls more than the channel's capacity
//! behind skips the lines it missed rather than slowing the agent. No I/O here.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

/// Lines kept for a slow monitor before it starts skipping (Consul's monitor buffers 512).
pub const DEFAULT_CAPACITY: usize = 512;

/// One log event, captured as structured data; formatted per subscriber.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// When it was logged.
    pub time: SystemTime,
    /// Its level.
    pub level: Level,
    /// The module that logged it.
    pub target: String,
    /// The message.
    pub message: String,
    /// The other fields, in order, as `Debug`/`Display` text.
    pub fields: Vec<(&'static str, String)>,
}

/// The publishing side, shared by the layer and the API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogStream {
    tx: broadcast::Sender<Arc<LogRecord>>,
    wanted: Arc<Wanted>,
}

impl Default for LogStream {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

/// Connected monitors per level, most severe first (`ERROR` … `TRACE`).
#[derive(Debug, Default)]
pub struct Wanted([AtomicUsize; 5]);

fn slot(level: Level) -> usize {
    match level {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        Level::TRACE => 4,
    }
}

impl Wanted {
    /// The most verbose level some monitor wants (`OFF` with none connected).
    fn most_verbose(&self) -> LevelFilter {
        const LEVELS: [LevelFilter; 5] = [
            LevelFilter::ERROR,
            LevelFilter::WARN,
            LevelFilter::INFO,
            LevelFilter::DEBUG,
            LevelFilter::TRACE,
        ];
        (0..5)
            .rev()
            .find(|&i| self.0[i].load(Ordering::Relaxed) > 0)
            .map_or(LevelFilter::OFF, |i| LEVELS[i])
    }

    /// Adds `delta` (+1 or -1) monitors at `level`; when that changes the most verbose level
    /// wanted, tracing's cached callsite interest and maximum level are rebuilt.
    fn add(&self, level: Level, delta: isize) {
        let before = self.most_verbose();
        if delta >= 0 {
            self.0[slot(level)].fetch_add(1, Ordering::Relaxed);
        } else {
            self.0[slot(level)].fetch_sub(1, Ordering::Relaxed);
        }
        if self.most_verbose() != before {
            tracing::callsite::rebuild_interest_cache();
        }
    }

    /// Whether some monitor wants events at `level`: one at that level or a more verbose one.
    fn wants(&self, level: Level) -> bool {
        self.0[slot(level)..]
            .iter()
            .any(|n| n.load(Ordering::Relaxed) > 0)
    }
}

/// Whether an event of another crate goes to monitors at all: as the agent's default
/// filter, at most `info`, and `warn` for the crates that log per request or per RPC.
fn chatter_allowed(meta: &Metadata<'_>) -> bool {
    const QUIET: [&str; 3] = ["openraft", "sqlx", "hickory"];
    let target = meta.target();
    if target.starts_with("meridian") {
        return true;
    }
    let most = if QUIET.iter().any(|q| target.starts_with(q)) {
        Level::WARN
    } else {
        Level::INFO
    };
    *meta.level() <= most
}

/// The [`LogLayer`]'s per-layer filter: open while a monitor wants the event's level.
#[derive(Debug, Clone)]
pub struct WantedFilter(Arc<Wanted>);

impl<S> Filter<S> for WantedFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.0.wants(*meta.level()) && chatter_allowed(meta)
    }

    // Cached per callsite, and rebuilt whenever the most verbose level a monitor wants
    // changes (`Wanted::changed`). "Sometimes" here made every `trace!`/`debug!` of every
    // crate (openraft, hyper, h2) a dynamic check on the hot path: KV reads lost a quarter
    // of their rate.
    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.0.wants(*meta.level()) && chatter_allowed(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    // Lets the process-wide maximum level stay at the agent's `log_level` while no monitor
    // wants more, so disabled `debug!`s cost one comparison.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.0.most_verbose())
    }
}

/// A monitor's feed: records from now on; while it lives, events at its level are captured.
#[derive(Debug)]
pub struct Subscription {
    /// The records.
    pub rx: broadcast::Receiver<Arc<LogRecord>>,
    wanted: Arc<Wanted>,
    level: Level,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.wanted.add(self.level, -1);
    }
}

impl LogStream {
    /// A stream keeping up to `capacity` records for each subscriber.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::Sender::new(capacity.max(1)),
            wanted: Arc::default(),
        }
    }

    /// The layer to install in the process's subscriber, with its own filter.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        LogLayer {
            tx: self.tx.clone(),
        }
        .with_filter(WantedFilter(Arc::clone(&self.wanted)))
    }

    /// Records logged from now on, at `level` and more severe (and, for other monitors'
    /// sake, possibly more verbose ones: the subscriber narrows).
    pub fn subscribe(&self, level: Level) -> Subscription {
        self.wanted.add(level, 1);
        Subscription {
            rx: self.tx.subscribe(),
            wanted: Arc::clone(&self.wanted),
            level,
        }
    }

    /// Publishes a record (the layer does this; tests use it directly).
    pub fn publish(&self, record: LogRecord) {
        // Err only means nobody is listening.
        let _ = self.tx.send(Arc::new(record));
    }
}

/// The `tracing` layer of a [`LogStream`].
#[derive(Debug)]
pub struct LogLayer {
    tx: broadcast::Sender<Arc<LogRecord>>,
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        let meta = event.metadata();
        let _ = self.tx.send(Arc::new(LogRecord {
            time: SystemTime::now(),
            level: *meta.level(),
            target: meta.target().to_string(),
            message: visitor.message,
            fields: visitor.fields,
        }));
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.push((field.name(), format!("{value:?}")));
        }
    }
}

/// Parses a Consul log level (`trace`, `debug`, `info`, `warn`, `err`/`error`, any case),
/// as `logging.ValidateLogLevel` accepts them.
pub fn parse_level(s: &str) -> Option<Level> {
    match s.trim().to_ascii_lowercase().as_str() {
        "trace" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "info" => Some(Level::INFO),
        "warn" | "warning" => Some(Level::WARN),
        "err" | "error" => Some(Level::ERROR),
        _ => None,
    }
}

fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl LogRecord {
    /// hclog's text line: `2024-05-01T10:00:00.123Z [INFO]  target: message: k=v` (the
    /// bracketed level padded to 7 columns, as hclog's `_levelToBracket`).
    pub fn text_line(&self) -> String {
        let mut line = format!(
            "{} {:<7} {}: {}",
            timestamp(self.time),
            format!("[{}]", self.level.as_str()),
            self.target,
            self.message
        );
        if !self.fields.is_empty() {
            line.push(':');
        }
        for (k, v) in &self.fields {
            let _ = write!(line, " {k}={v}");
        }
        line.push('\n');
        line
    }

    /// hclog's JSON line: `{"@level":"info","@message":..,"@module":..,"@timestamp":..,k:v}`.
    pub fn json_line(&self) -> String {
        let mut m = serde_json::Map::new();
        m.insert(
            "@level".into(),
            self.level.as_str().to_ascii_lowercase().into(),
        );
        m.insert("@message".into(), self.message.clone().into());
        m.insert("@module".into(), self.target.clone().into());
        m.insert("@timestamp".into(), timestamp(self.time).into());
        for (k, v) in &self.fields {
            m.insert((*k).to_string(), v.clone().into());
        }
        let mut line = serde_json::Value::Object(m).to_string();
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn consul_level_names_parse_and_others_do_not() {
        assert_eq!(parse_level("TRACE"), Some(Level::TRACE));
        assert_eq!(parse_level("err"), Some(Level::ERROR));
        assert_eq!(parse_level(" Warn "), Some(Level::WARN));
        assert_eq!(parse_level("not-a-real-level"), None);
        assert_eq!(parse_level(""), None);
    }

    #[test]
    fn events_reach_subscribers_with_their_fields() {
        let logs = LogStream::new(8);
        let mut sub = logs.subscribe(Level::INFO);
        let subscriber = tracing_subscriber::registry().with(logs.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(node = "n1", count = 3, "member failed");
        });
        let rec = sub.rx.try_recv().expect("a record");
        assert_eq!(rec.level, Level::WARN);
        assert_eq!(rec.message, "member failed");
        let text = rec.text_line();
        assert!(text.contains(" [WARN]  meridian"), "{text}");
        assert!(text.ends_with("member failed: node=n1 count=3\n"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&rec.json_line()).expect("json");
        assert_eq!(json["@level"], "warn");
        assert_eq!(json["node"], "n1");
    }

    #[test]
    fn monitors_get_their_level_whatever_the_agents_and_nothing_once_gone() {
        let logs = LogStream::new(16);
        // The agent logs at warn; a debug monitor still sees its debug lines.
        let agent = tracing_subscriber::filter::LevelFilter::WARN;
        let stderr_seen = Arc::new(AtomicUsize::new(0));
        let counter = Counter(Arc::clone(&stderr_seen));
        let subscriber = tracing_subscriber::registry()
            .with(logs.layer())
            .with(counter.with_filter(agent));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "meridian::x", "before any monitor");
            let mut debug = logs.subscribe(Level::DEBUG);
            tracing::debug!(target: "meridian::x", "synced service");
            tracing::debug!(target: "openraft::core", "append entries");
            tracing::trace!(target: "meridian::x", "too verbose");
            let rec = debug.rx.try_recv().expect("the debug line");
            assert_eq!(rec.message, "synced service");
            // openraft's debug is per RPC: held back; trace is beyond what was asked.
            assert!(debug.rx.try_recv().is_err());
            drop(debug);
            let mut info = logs.subscribe(Level::INFO);
            tracing::debug!(target: "meridian::x", "after the debug monitor left");
            assert!(info.rx.try_recv().is_err());
        });
        // The agent's own output kept to its level.
        assert_eq!(stderr_seen.load(Ordering::Relaxed), 0);
    }

    struct Counter(Arc<AtomicUsize>);

    impl<S: Subscriber> Layer<S> for Counter {
        fn on_event(&self, _e: &Event<'_>, _cx: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_lagging_subscriber_skips_instead_of_blocking() {
        let logs = LogStream::new(2);
        let mut sub = logs.subscribe(Level::INFO);
        for i in 0..5 {
            logs.publish(LogRecord {
                time: SystemTime::now(),
                level: Level::INFO,
                target: "t".into(),
                message: i.to_string(),
                fields: Vec::new(),
            });
        }
        assert!(matches!(
            sub.rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
        assert_eq!(
            sub.rx.try_recv().map(|r| r.message.clone()).ok(),
            Some("3".into())
        );
    }
}
