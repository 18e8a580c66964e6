//! Query-string parsing: Consul's flag-style parameters (`?recurse`, `?stale`), typed values
//! with errors naming the parameter, and the common read options (`dc`, consistency,
//! `index`, `wait`). A read that another datacenter's catalog copy answers
//! (`copy_read.rs`) finds that copy here too, so handlers need not know.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;
use meridian_config::duration::parse_go_duration;

use super::error::ApiError;
use crate::cluster::copies::CatalogCopy;
use crate::rpc::Consistency;

/// Consul's `default_query_time`.
pub(super) const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// Consul's `max_query_time`.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(600);

/// The raw query parameters of a request. Flags without a value map to "". A repeated
/// parameter keeps its last value in `get`; `get_all` returns every value.
#[derive(Debug, Default, Clone)]
pub(super) struct Params {
    last: HashMap<String, String>,
    all: Vec<(String, String)>,
    copy: Option<Arc<CopyRead>>,
}

/// A request extension: this read is answered from another datacenter's catalog copy.
#[derive(Debug)]
pub(super) struct CopyRead {
    /// The copy.
    pub copy: CatalogCopy,
    /// When the request arrived: a blocking read on a copy waits out `wait` from here.
    pub started: tokio::time::Instant,
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let RawQuery(q) = RawQuery::from_request_parts(parts, state)
            .await
            .unwrap_or(RawQuery(None));
        let mut p = Params::parse(q.as_deref().unwrap_or(""));
        p.copy = parts.extensions.get::<Arc<CopyRead>>().cloned();
        Ok(p)
    }
}

impl Params {
    /// Parses a raw query string.
    pub(super) fn parse(q: &str) -> Self {
        let all: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        Params {
            last: all.iter().cloned().collect(),
            all,
            copy: None,
        }
    }

    /// The catalog copy this read is answered from, if any.
    pub(super) fn copy(&self) -> Option<&CopyRead> {
        self.copy.as_deref()
    }

    /// Every value of a repeatable parameter, in order.
    pub(super) fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.all
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// True if the parameter is present (with or without a value), unless its value is
    /// explicitly false.
    pub(super) fn flag(&self, name: &str) -> bool {
        self.last
            .get(name)
            .is_some_and(|v| !matches!(v.as_str(), "false" | "0"))
    }

    /// The value if present.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.last.get(name).map(String::as_str)
    }

    /// A non-empty value if present.
    pub(super) fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// A u64 parameter; a malformed value is a 400 naming the parameter.
    pub(super) fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.non_empty(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "Invalid {name} parameter: {v:?} is not an unsigned integer"
                ))
            }),
        }
    }

    /// A Go duration parameter.
    pub(super) fn duration(&self, name: &str) -> Result<Option<Duration>, ApiError> {
        match self.non_empty(name) {
            None => Ok(None),
            Some(v) => parse_go_duration(v)
                .map(Some)
                .map_err(|e| ApiError::bad_request(format!("Invalid {name} parameter {v:?}: {e}"))),
        }
    }

    /// The read options every read endpoint accepts.
    pub(super) fn read_opts(&self) -> Result<ReadOpts, ApiError> {
        let stale = self.flag("stale");
        let consistent = self.flag("consistent");
        if stale && consistent {
            return Err(ApiError::bad_request(
                "Cannot specify ?stale with ?consistent, conflicting semantics.",
            ));
        }
        let consistency = if stale {
            Consistency::Stale
        } else if consistent {
            Consistency::Consistent
        } else {
            Consistency::Default
        };
        let wait = self.duration("wait")?.unwrap_or(DEFAULT_WAIT).min(MAX_WAIT);
        Ok(ReadOpts {
            dc: self.non_empty("dc").map(str::to_string),
            consistency,
            index: self.u64("index")?.unwrap_or(0),
            wait,
        })
    }

    /// `?dc=` of a write.
    pub(super) fn dc(&self) -> Option<&str> {
        self.non_empty("dc")
    }
}

/// Options of a read: where, how fresh, and whether to block.
#[derive(Debug, Clone)]
pub(super) struct ReadOpts {
    /// Target datacenter (`None` = local).
    pub dc: Option<String>,
    /// Consistency mode.
    pub consistency: Consistency,
    /// Blocking index (0 = do not block).
    pub index: u64,
    /// Maximum blocking time.
    pub wait: Duration,
}
