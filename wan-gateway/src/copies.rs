//! Keeps a copy of every remote datacenter's catalog, so that datacenter's services can
//! still be read (stale) from here when it, the WAN link to it, or this datacenter's own
//! quorum is lost. One task per datacenter seen in the WAN pool streams its catalog with
//! blocking reads of [`CATALOG_COPY_PATH`], resumed from the copy's index, through the
//! same relay path as any request (nearest gateway first, the next one on failure, the
//! deadline spent hop by hop); it backs off on failures and stops when the datacenter
//! leaves the pool. The bodies are stored as they came (`copy_store.rs`); only servers
//! decode them.
//!
//! ```text
//!  dc1 gateway ──Deliver GET /v1/internal/federation/catalog?stale&index=N&wait=10s──▶ dc2
//!              ◀── 200 body @ X-Consul-Index | 304 unchanged ── (loop; backoff on failure)
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meridian_gossip::Role;
use meridian_rpc::HttpRequest;
use meridian_rpc::gateway::{CATALOG_COPY_PATH, GatewayReply};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span};

use crate::copy_store::CopyStore;
use crate::relay::Relay;

/// How long one read of a remote catalog may park waiting for a change. Short, so the
/// copy's age (time since that datacenter last answered) stays small while it is up: an
/// unchanged catalog answers `304` with no body, so this costs almost nothing.
const WAIT: Duration = Duration::from_secs(10);
/// Time on top of `WAIT` for the hops and the body.
const SLACK: Duration = Duration::from_secs(10);
/// Least time between two downloads of a new body: each is the whole catalog, so a
/// datacenter that changes all the time costs at most one copy per second of WAN traffic,
/// not one per change (the copy is then at most this much behind).
const MIN_REFRESH: Duration = Duration::from_secs(1);
/// How often the WAN pool is looked at for datacenters that came or went.
const POOL_TICK: Duration = Duration::from_secs(1);
/// First and longest wait after a failed read.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(10));

/// Until `token`: a streaming task per remote datacenter of the WAN pool (any status: a
/// datacenter whose gateways are failed is exactly the one whose copy matters).
pub async fn run(relay: Relay, store: Arc<CopyStore>, token: CancellationToken) {
    let tracker = TaskTracker::new();
    let mut running: BTreeMap<String, CancellationToken> = BTreeMap::new();
    let mut tick = tokio::time::interval(POOL_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tick.tick() => {}
        }
        let seen = relay.remote_datacenters(Role::Gateway);
        running.retain(|dc, stop| {
            let keep = seen.contains(dc);
            if !keep {
                info!(datacenter = %dc, "datacenter left the WAN pool: dropping its catalog copy");
                stop.cancel();
                store.forget(dc);
            }
            keep
        });
        for dc in seen {
            if running.contains_key(&dc) {
                continue;
            }
            let stop = token.child_token();
            running.insert(dc.clone(), stop.clone());
            let (relay, store) = (relay.clone(), store.clone());
            let span = info_span!("catalog_copy", datacenter = %dc);
            tracker.spawn(stream(relay, store, dc, stop).instrument(span));
        }
    }
    tracker.close();
    tracker.wait().await;
}

/// Follows `dc`'s catalog until `stop`.
async fn stream(relay: Relay, store: Arc<CopyStore>, dc: String, stop: CancellationToken) {
    let mut backoff = BACKOFF.0;
    loop {
        let index = store.index(&dc);
        let req = HttpRequest {
            method: "GET".into(),
            uri: format!(
                "{CATALOG_COPY_PATH}?stale&index={index}&wait={}s",
                WAIT.as_secs()
            ),
            headers: Vec::new(),
            body: Vec::new(),
            request_id: None,
        };
        let deadline = Instant::now() + WAIT + WAIT / 16 + SLACK;
        let reply = tokio::select! {
            _ = stop.cancelled() => return,
            r = relay.relay(&dc, req, deadline) => r,
        };
        match outcome(reply) {
            Ok((at, body)) => {
                let new = body.is_some();
                if let Some(b) = &body {
                    debug!(index = at, bytes = b.len(), "catalog copy refreshed");
                }
                store.refreshed(&dc, at, body, Instant::now());
                backoff = BACKOFF.0;
                if new {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(MIN_REFRESH) => {}
                    }
                }
            }
            Err(why) => {
                debug!(cause = %why, retry_in = ?backoff, "catalog copy refresh failed");
                store.failed(&dc, why);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF.1);
            }
        }
    }
}

/// A relayed read's index and new body (`None`: unchanged), or why it failed.
fn outcome(reply: GatewayReply) -> Result<(u64, Option<Vec<u8>>), String> {
    let resp = match reply {
        GatewayReply::Http(resp) => resp,
        GatewayReply::Failed { message, .. } => return Err(message),
        other => return Err(format!("unexpected reply {other:?}")),
    };
    let index = resp
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-consul-index"))
        .and_then(|(_, v)| v.parse::<u64>().ok());
    match (resp.status, index) {
        (200, Some(i)) => Ok((i, Some(resp.body))),
        (304, Some(i)) => Ok((i, None)),
        (status, _) => Err(format!(
            "HTTP {status} from {CATALOG_COPY_PATH}: {}",
            String::from_utf8_lossy(&resp.body)
        )),
    }
}

#[cfg(test)]
mod tests {
    use meridian_rpc::HttpResponse;

    use super::*;

    fn http(status: u16, index: Option<&str>, body: &[u8]) -> GatewayReply {
        GatewayReply::Http(HttpResponse {
            status,
            headers: index
                .map(|i| ("X-Consul-Index".to_string(), i.to_string()))
                .into_iter()
                .collect(),
            body: body.to_vec(),
        })
    }

    #[test]
    fn reads_become_new_bodies_unchanged_copies_or_failures() {
        assert_eq!(
            outcome(http(200, Some("7"), b"c")),
            Ok((7, Some(b"c".to_vec())))
        );
        assert_eq!(outcome(http(304, Some("7"), b"")), Ok((7, None)));
        assert!(outcome(http(200, None, b"c")).is_err());
        assert!(outcome(http(404, Some("7"), b"no such path")).is_err());
        assert!(outcome(http(500, Some("x"), b"")).is_err());
    }
}
