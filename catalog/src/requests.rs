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
            if let Some(rec) = self.requests.remove(&id) {
                self.touch(Table::Requests, request_key(rec.index, id));
            }
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
        let old = self.insert_request(
            id,
            RequestRecord {
                at_ms,
                index,
                response: response.clone(),
            },
        );
        if let Some(old) = old.filter(|o| o.index != index) {
            self.touch(Table::Requests, request_key(old.index, id));
        }
        self.touch(Table::Requests, request_key(index, id));
        self.expire_requests(at_ms);
    }

    /// Inserts a record into both maps (apply and restore); returns the one it replaced.
    pub(crate) fn insert_request(
        &mut self,
        id: RequestId,
        rec: RequestRecord,
    ) -> Option<RequestRecord> {
        let at_ms = rec.at_ms;
        let old = self.requests.insert(id, rec);
        if let Some(old) = &old {
            self.requests_by_age.remove(&(old.at_ms, id));
        }
        self.requests_by_age.insert((at_ms, id));
        old
    }

    /// The record a `state.db` key names, if that key is still the record's current one.
    pub(crate) fn request_row(&self, key: &str) -> Option<&RequestRecord> {
        match parse_request_key(key)? {
            (Some(index), id) => self.requests.get(&id).filter(|r| r.index == index),
            // A key from before keys carried the index: rewritten under the new key on load.
            (None, _) => None,
        }
    }
}

/// The `state.db` key of request `id`'s record, first applied at raft `index`: 16 hex digits
/// of the index, then the id's 32. Records are inserted in index order and expire roughly in
/// it, so a batch of writes adds its records at the end of the table's key index and expiry
/// removes them from its front: a few pages per batch. Keyed by the random id alone, every
/// write dirtied a page of its own (4 KiB in the WAL and again at checkpoint).
pub(crate) fn request_key(index: u64, id: RequestId) -> String {
    format!("{index:016x}{id}")
}

/// The index and id a request row's key names. The index is `None` for a key written before
/// keys carried it (the id alone, 32 hex digits).
pub(crate) fn parse_request_key(key: &str) -> Option<(Option<u64>, RequestId)> {
    match key.len() {
        32 => RequestId::try_from(key.to_string())
            .ok()
            .map(|id| (None, id)),
        48 => {
            let (index, id) = key.split_at(16);
            let index = u64::from_str_radix(index, 16).ok()?;
            let id = RequestId::try_from(id.to_string()).ok()?;
            Some((Some(index), id))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
