//! Reads with Consul's metadata: consistency, blocking queries and the `X-Consul-*` headers.
//!
//! A blocking read evaluates its query against the state, and if the query's own index is
//! not past the client's `?index`, waits for the next applied batch and evaluates again —
//! so a watcher on one key only returns when that key's index moves. Queries that can tell
//! their index cheaply (`*_indexed`) check only that on later rounds. Jitter of up to
//! `wait/16` spreads out the wake-ups of many watchers, as in Consul.
//!
//! A read's [`Source`] is this server's state, or another datacenter's catalog copy when
//! that datacenter is cut off (`copy_read.rs`): the same handlers answer both, so filters,
//! tags, `node-meta` and `near` behave alike.
//!
//! Lists of catalog, health and coordinate rows go through [`list_readable`]: ACL pruning
//! with the authorizer resolved before the wait, on every round, ahead of `?filter=`.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_filter_catalog::Readable;
use super::acl_filter_kv::mark_filtered;
use super::error::ApiError;
use super::filter::{self, Filter};
use super::params::{CopyRead, Params, ReadOpts};
use crate::catalog::State;
use crate::gossip::coordinate::Coordinate;
use crate::rpc::Consistency;
use crate::server::ServerHandle;

/// Metadata of one read, turned into headers.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadMeta {
    /// `X-Consul-Index`.
    pub index: u64,
    /// `X-Consul-KnownLeader`.
    pub known_leader: bool,
    /// `X-Consul-LastContact` (ms).
    pub last_contact_ms: u64,
    /// `X-Consul-Effective-Consistency`.
    pub consistency: Consistency,
}

impl ReadMeta {
    /// The headers of this read.
    pub(super) fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("X-Consul-Index", HeaderValue::from(self.index.max(1)));
        h.insert(
            "X-Consul-KnownLeader",
            HeaderValue::from_static(if self.known_leader { "true" } else { "false" }),
        );
        h.insert(
            "X-Consul-LastContact",
            HeaderValue::from(self.last_contact_ms),
        );
        h.insert(
            "X-Consul-Effective-Consistency",
            HeaderValue::from_static(self.consistency.as_str()),
        );
        h
    }

    /// A JSON 200 response with these headers.
    pub(super) fn json<T: Serialize>(&self, body: &T) -> Response {
        (self.headers(), json_body(body)).into_response()
    }

    /// A 404 with these headers (Consul still reports the index on a miss).
    pub(super) fn not_found(&self) -> Response {
        (StatusCode::NOT_FOUND, self.headers()).into_response()
    }
}

/// A JSON body with Consul's content type.
pub(super) fn json_body<T: Serialize>(body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => ([("content-type", "application/json")], bytes).into_response(),
        Err(e) => ApiError::internal(format!("failed to encode response: {e}")).into_response(),
    }
}

/// Where a read's state comes from.
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    /// This datacenter's server.
    Server(&'a ServerHandle),
    /// Another datacenter's catalog copy (that datacenter is unreachable).
    Copy(&'a CopyRead),
}

impl<'a> From<&'a ServerHandle> for Source<'a> {
    fn from(s: &'a ServerHandle) -> Self {
        Source::Server(s)
    }
}

/// The source of a read: the catalog copy the request carries, else the server for
/// `opts.dc`.
pub(super) fn source<'a>(
    st: &'a ApiState,
    p: &'a Params,
    opts: &ReadOpts,
) -> Result<Source<'a>, ApiError> {
    match p.copy() {
        Some(c) => Ok(Source::Copy(c)),
        None => Ok(Source::Server(st.router.server(opts.dc.as_deref())?)),
    }
}

/// Runs `query` against the state of `source`, blocking per `opts`. `query` returns the
/// index of what it read and its result.
pub(super) async fn blocking<'a, T>(
    source: impl Into<Source<'a>>,
    opts: &ReadOpts,
    query: impl Fn(&State) -> (u64, T),
) -> Result<(ReadMeta, T), ApiError> {
    blocking_indexed(source, opts, None::<fn(&State) -> u64>, query).await
}

/// [`blocking`] with `index_of`, a cheap function giving the same index as `query`: after
/// the first round a parked query only re-runs `query` once `index_of` has moved past the
/// client's `?index`. Without it, every parked watcher rebuilds its whole result on every
/// applied batch, whatever the batch touched (10,000 watchers of one service did 10,000
/// full health queries per unrelated write).
pub(super) async fn blocking_indexed<'a, T>(
    source: impl Into<Source<'a>>,
    opts: &ReadOpts,
    index_of: Option<impl Fn(&State) -> u64>,
    query: impl Fn(&State) -> (u64, T),
) -> Result<(ReadMeta, T), ApiError> {
    match source.into() {
        Source::Server(server) => on_server(server, opts, index_of, query).await,
        Source::Copy(c) => Ok(on_copy(c, opts, query).await),
    }
}

/// A read of another datacenter's copy: stale, with no known leader and the copy's age as
/// last contact. Nothing newer can arrive while answering, so a blocking read the copy
/// cannot satisfy waits out the client's `wait` (from when its request came) instead of
/// answering at once: a watcher does not spin during an outage.
async fn on_copy<T>(
    c: &CopyRead,
    opts: &ReadOpts,
    query: impl Fn(&State) -> (u64, T),
) -> (ReadMeta, T) {
    let (index, out) = query(&c.copy.state);
    let index = index.max(1);
    if opts.index != 0 && index <= opts.index {
        tokio::time::sleep_until(c.started + with_jitter(opts.wait)).await;
    }
    let meta = ReadMeta {
        index,
        known_leader: false,
        last_contact_ms: c.copy.age_ms(),
        consistency: opts.consistency,
    };
    (meta, out)
}

async fn on_server<T>(
    server: &ServerHandle,
    opts: &ReadOpts,
    index_of: Option<impl Fn(&State) -> u64>,
    query: impl Fn(&State) -> (u64, T),
) -> Result<(ReadMeta, T), ApiError> {
    let mut applied = server.applied_rx();
    let deadline = tokio::time::Instant::now() + with_jitter(opts.wait);
    let mut mode = opts.consistency;
    let mut last: Option<(ReadMeta, T)> = None;
    // A snapshot restore replaces the state and may move indexes back: a read that began
    // before one answers at once, as Consul's do when the state store is abandoned.
    let mut began_after: Option<u64> = None;
    loop {
        applied.borrow_and_update();
        let view = server.read(mode).await?;
        let restored = view.state.restored_index();
        let was_restored = *began_after.get_or_insert(restored) != restored;
        // A consistent read confirms leadership once; later rounds read the same leader.
        if mode == Consistency::Consistent {
            mode = Consistency::Default;
        }
        let meta_at = |index: u64| ReadMeta {
            index: index.max(1),
            known_leader: view.known_leader,
            last_contact_ms: view.last_contact_ms,
            consistency: opts.consistency,
        };
        let unchanged = !was_restored
            && match (&index_of, &mut last) {
                (Some(f), Some((meta, _))) => {
                    let index = f(&view.state);
                    let still = index <= opts.index;
                    if still {
                        *meta = meta_at(index);
                    }
                    still
                }
                _ => false,
            };
        if !unchanged {
            let (index, out) = query(&view.state);
            last = Some((meta_at(index), out));
        }
        let index = last.as_ref().map_or(0, |(m, _)| m.index);
        if opts.index == 0
            || index > opts.index
            || was_restored
            || tokio::time::Instant::now() >= deadline
        {
            return Ok(last.expect("evaluated at least once"));
        }
        tokio::select! {
            changed = applied.changed() => {
                if changed.is_err() {
                    return Err(crate::rpc::RpcError::ShuttingDown.into());
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Ok(last.expect("evaluated at least once"));
            }
        }
    }
}

fn with_jitter(wait: Duration) -> Duration {
    let max_jitter = wait.as_millis() as u64 / 16;
    if max_jitter == 0 {
        return wait;
    }
    wait + Duration::from_millis(rand::random_range(0..max_jitter))
}

/// A blocking read of a list that also honours `?filter=`, evaluated on each row's JSON
/// exactly as the client will see it, and `?near=` (see [`sort_near`]). `query` returns the
/// index of what it read and the rows.
pub(super) async fn list<T: Serialize>(
    st: &ApiState,
    p: &Params,
    query: impl Fn(&State) -> (u64, Vec<T>),
) -> Result<Response, ApiError> {
    list_indexed(st, p, None::<fn(&State) -> u64>, query).await
}

/// [`list`] with a cheap `index_of` for parked queries (see [`blocking_indexed`]).
pub(super) async fn list_indexed<T: Serialize>(
    st: &ApiState,
    p: &Params,
    index_of: Option<impl Fn(&State) -> u64>,
    query: impl Fn(&State) -> (u64, Vec<T>),
) -> Result<Response, ApiError> {
    let (resp, _) = list_kept(st, p, index_of, query, |_: &T| true).await?;
    Ok(resp)
}

/// [`list_indexed`] of rows the token may or may not read: on every round (blocking
/// wake-ups included) the rows `authz` may not read are dropped before `?filter=` sees
/// them, and a pruned answer is marked (reference/acl.md §5.4, `acl_filter_catalog.rs`).
pub(super) async fn list_readable<T: Serialize + Readable>(
    st: &ApiState,
    p: &Params,
    authz: &Authz,
    index_of: Option<impl Fn(&State) -> u64>,
    query: impl Fn(&State) -> (u64, Vec<T>),
) -> Result<Response, ApiError> {
    // A token that reads every node and service (ACLs off included) prunes nothing.
    let all = authz.authorizer.read_all(meridian_acl::Resource::Node)
        && authz.authorizer.read_all(meridian_acl::Resource::Service);
    let keep = |r: &T| all || r.readable(authz);
    let (resp, pruned) = list_kept(st, p, index_of, query, keep).await?;
    Ok(mark_filtered(authz, pruned, resp))
}

/// The list read behind [`list_indexed`] and [`list_readable`]: rows failing `keep` are
/// dropped first (the flag says whether any was), then `?filter=` and `?near=` apply.
async fn list_kept<T: Serialize>(
    st: &ApiState,
    p: &Params,
    index_of: Option<impl Fn(&State) -> u64>,
    query: impl Fn(&State) -> (u64, Vec<T>),
    keep: impl Fn(&T) -> bool,
) -> Result<(Response, bool), ApiError> {
    let opts = p.read_opts()?;
    let f = parse_filter(p)?;
    let near = p.non_empty("near").map(|n| match n {
        "_agent" => st.agent.node_name.clone(),
        other => other.to_string(),
    });
    let from = source(st, p, &opts)?;
    let (meta, (rows, pruned, source)) = blocking_indexed(from, &opts, index_of, |s| {
        let (index, rows) = query(s);
        let before = rows.len();
        let rows: Vec<T> = rows.into_iter().filter(|r| keep(r)).collect();
        let pruned = rows.len() != before;
        let source = near
            .as_deref()
            .map(|n| (s.coordinate(n).cloned(), s.coordinate_map()));
        (index, (rows, pruned, source))
    })
    .await?;
    if f.is_none() && source.is_none() {
        // Nothing to filter or sort: serialize the rows once, not via serde_json::Value.
        return Ok((meta.json(&rows), pruned));
    }
    let mut rows = apply_filter(rows, &f);
    if let Some((Some(from), coords)) = source {
        sort_near(&mut rows, &from, &coords);
    }
    Ok((meta.json(&rows), pruned))
}

/// Consul's `sortNodesByDistanceFrom`: a stable sort by estimated RTT from `from` to each
/// row's node (`"Node": "name"` or `"Node": {"Node": "name"}`); rows whose node has no
/// coordinate go last. Without a coordinate for the `near` node nothing is sorted.
fn sort_near(rows: &mut [serde_json::Value], from: &Coordinate, coords: &Coordinates) {
    let distance = |row: &serde_json::Value| {
        let node = match &row["Node"] {
            serde_json::Value::String(n) => Some(n.as_str()),
            obj => obj["Node"].as_str(),
        };
        node.and_then(|n| coords.get(&(n.to_string(), String::new())))
            .map_or(Duration::MAX, |c| from.distance_to(c))
    };
    rows.sort_by_cached_key(distance);
}

type Coordinates = imbl::OrdMap<(String, String), Coordinate>;

/// The `?filter=` expression of a read, if any; a malformed one is a 400 carrying the parse
/// error (every endpoint that takes `filter` parses it before reading).
pub(super) fn parse_filter(p: &Params) -> Result<Option<Filter>, ApiError> {
    p.non_empty("filter")
        .map(|f| {
            filter::parse(f).map_err(|e| {
                ApiError::bad_request(format!(
                    "Failed to create boolean expression evaluator: {e}"
                ))
            })
        })
        .transpose()
}

/// Whether `row`, serialized as the client will see it, passes `f` (no filter: always).
pub(super) fn passes<T: Serialize>(f: Option<&Filter>, row: &T) -> bool {
    f.is_none_or(|f| serde_json::to_value(row).is_ok_and(|v| f.matches(&v)))
}

/// Serializes rows and keeps those the filter accepts.
fn apply_filter<T: Serialize>(rows: Vec<T>, f: &Option<Filter>) -> Vec<serde_json::Value> {
    rows.into_iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .filter(|v| f.as_ref().is_none_or(|f| f.matches(v)))
        .collect()
}
