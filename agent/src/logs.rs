//! The agent's live log, for `/v1/agent/monitor`: a `tracing` layer that publishes each
//! event as a [`LogRecord`] on a bounded broadcast channel, and the formatting of records in
//! Consul's (hclog's) text and JSON line shapes.
//!
//! ```text
//!   tracing event ──EnvFilter──▶ fmt layer (stderr)
//!                        └─────▶ LogLayer ──broadcast(cap)──▶ each monitor request
//! ```
//!
//! The layer sits under the agent's log filter, so a monitor sees what the agent logs (at
//! `log_level`), narrowed to its own level. Nothing is formatted while nobody listens, and a
//! subscriber that falls more than the channel's capacity behind skips the lines it missed
//! rather than slowing the agent. No I/O here.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

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
}

impl Default for LogStream {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl LogStream {
    /// A stream keeping up to `capacity` records for each subscriber.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::Sender::new(capacity.max(1)),
        }
    }

    /// The layer to install in the process's subscriber.
    pub fn layer(&self) -> LogLayer {
        LogLayer {
            tx: self.tx.clone(),
        }
    }

    /// Records logged from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogRecord>> {
        self.tx.subscribe()
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
        let mut rx = logs.subscribe();
        let subscriber = tracing_subscriber::registry().with(logs.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(node = "n1", count = 3, "member failed");
        });
        let rec = rx.try_recv().expect("a record");
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
    fn a_lagging_subscriber_skips_instead_of_blocking() {
        let logs = LogStream::new(2);
        let mut rx = logs.subscribe();
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
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
        assert_eq!(
            rx.try_recv().map(|r| r.message.clone()).ok(),
            Some("3".into())
        );
    }
}
