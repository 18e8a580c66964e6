//! What the clients did: one [`Op`] per request, with when it was sent, when (if ever) its
//! answer came, and what the answer said. Written as JSON lines (`history.jsonl`) so a
//! failed run can be read, re-checked and plotted later.

use serde::{Deserialize, Serialize};

/// What a client asked of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Call {
    /// `GET /v1/kv/KEY` (in the run's read mode).
    Read,
    /// `PUT /v1/kv/KEY` with a value no other write uses.
    Write {
        /// The value.
        value: String,
    },
    /// `PUT /v1/kv/KEY?cas=INDEX`: INDEX is the ModifyIndex this client last read with
    /// `from` (0 when it read the key absent), so "the key still has INDEX" is "the key
    /// still holds `from`" — values are never written twice.
    Cas {
        /// The value the client read, `None` for absent.
        from: Option<String>,
        /// The new value.
        to: String,
    },
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outcome {
    /// A read's value (`None`: 404, the key is absent).
    Read {
        /// The value.
        value: Option<String>,
    },
    /// A write or CAS answered; for a write `applied` is always true.
    Done {
        /// `true`, or `false` for a CAS whose index did not match.
        applied: bool,
    },
    /// Refused before anything could happen (no leader known, connection refused): the
    /// server promises it was not applied.
    Fail {
        /// Why.
        error: String,
    },
    /// No answer, a timeout, or the server said the outcome is unknown: it may or may not
    /// have been applied.
    Unknown {
        /// Why.
        error: String,
    },
}

/// One client request and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Which client (one HTTP connection, one request at a time).
    pub client: u32,
    /// Which server it asked (an index into the run's servers).
    pub server: u32,
    /// The KV key.
    pub key: String,
    /// The request.
    pub call: Call,
    /// When it was sent, in nanoseconds since the run began.
    pub invoke_ns: u64,
    /// When the answer came (or the client gave up).
    pub complete_ns: u64,
    /// The answer.
    pub outcome: Outcome,
}

impl Op {
    /// Whether the op may have changed the key: acknowledged or unknown writes and CASes.
    pub fn may_write(&self) -> bool {
        !matches!(self.call, Call::Read) && !matches!(self.outcome, Outcome::Fail { .. })
    }

    /// A short human form: `cas "c1-3" → "c2-9" = false`.
    pub fn describe(&self) -> String {
        let show = |v: &Option<String>| v.as_deref().map_or("absent".into(), |s| format!("{s:?}"));
        let call = match &self.call {
            Call::Read => "read".to_string(),
            Call::Write { value } => format!("write {value:?}"),
            Call::Cas { from, to } => format!("cas {} → {to:?}", show(from)),
        };
        let answer = match &self.outcome {
            Outcome::Read { value } => show(value),
            Outcome::Done { applied } => applied.to_string(),
            Outcome::Fail { error } => format!("failed ({error})"),
            Outcome::Unknown { error } => format!("unknown ({error})"),
        };
        format!(
            "{call} = {answer} [client {} via server {}, {:.3}–{:.3} s]",
            self.client,
            self.server,
            self.invoke_ns as f64 / 1e9,
            self.complete_ns as f64 / 1e9
        )
    }
}
