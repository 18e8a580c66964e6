//! Exactly-once writes: the state machine remembers the result of every command that carries a
//! [`RequestId`], so a command proposed again with the same id (a retry after the leader was
//! lost with the first copy in flight) answers the first result instead of applying twice.
//! These are the client sessions of the Raft dissertation (§6.3), keyed per request instead of
//! per client.
//!
//! Records expire by age, measured with the leader-chosen `now_ms` of the command being
//! applied (never a clock read here), and by count, oldest first, so the table stays bounded
//! under any write rate. Both rules depend only on the state and the command, so every server
//! keeps the same records; they travel in snapshots and persist as rows of their own table.
//! No I/O here.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Response, State, Table};

/// How long a request's result is remembered: far longer than any retry window (a request
/// is retried for at most its hold timeout, 7 s at most).
pub const REQUEST_RETENTION_MS: u64 = 10 * 60 * 1000;

/// At most this many results are remembered; the oldest go first. At 10 000 writes a
/// second this still covers several seconds of retries; memory stays in the megabytes.
pub const MAX_REQUESTS: usize = 100_000;

/// A unique id of one client write, chosen once by the server that first handles it and kept
/// across retries. Serialized as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct RequestId(u128);

impl RequestId {
    /// An id from 128 bits the caller chose (randomly: ids must not collide).
    pub fn from_u128(v: u128) -> Self {
        Self(v)
    }

    /// The 128 bits.
    pub fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for RequestId {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if s.len() != 32 {
            return Err(format!("request id {s:?} is not 32 hex digits"));
        }
        u128::from_str_radix(&s, 16)
            .map(Self)
            .map_err(|e| format!("request id {s:?}: {e}"))
    }
}

/// What is remembered of one applied request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Leader time of the first apply (expiry is measured from here).
    pub at_ms: u64,
    /// Raft index of the first apply.
    pub index: u64,
    /// The answer the first apply gave.
    pub response: Response,
}

impl State {
    /// The remembered result of request `id`, if it was applied and has not expired.
    pub fn request_result(&self, id: &RequestId) -> Option<&RequestRecord> {
        self.requests.get(id)
    }

    /// How many request results are remembered.
    pub fn remembered_requests(&self) -> usize {
        self.requests.len()
    }

    /// Forgets results older than the retention at leader time `now_ms`, then the oldest
    /// beyond [`MAX_REQUESTS`].
    pub(crate) fn expire_requests(&mut self, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(REQUEST_RETENTION_MS);
        while let Some(&(at_ms, id)) = self.requests_by_age.get_min() {
            if at_ms >= cutoff && self.requests.len() <= MAX_REQUESTS {
                break;
            }
            self.requests_by_age.remove(&(at_ms, id));
            self.requests.remove(&id);
            self.touch(Table::Requests, id.to_string());
        }
    }

    /// Remembers the result of request `id`, first applied at `index`.
    pub(crate) fn remember_request(
        &mut self,
        id: RequestId,
        at_ms: u64,
        index: u64,
        response: &Response,
    ) {
        self.insert_request(
            id,
            RequestRecord {
                at_ms,
                index,
                response: response.clone(),
            },
        );
        self.touch(Table::Requests, id.to_string());
        self.expire_requests(at_ms);
    }

    /// Inserts a record into both maps (apply and restore).
    pub(crate) fn insert_request(&mut self, id: RequestId, rec: RequestRecord) {
        if let Some(old) = self.requests.insert(id, rec.clone()) {
            self.requests_by_age.remove(&(old.at_ms, id));
        }
        self.requests_by_age.insert((rec.at_ms, id));
    }
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
