//! `GET /v1/agent/monitor?loglevel=&logjson`: streams the agent's log lines at or above
//! `loglevel` (default `INFO`) until the client goes away or the agent stops, as Consul's
//! `AgentMonitor` does. An unknown level is a 400 `Unknown log level: <level>` before any
//! streaming. Lines a slow client misses are skipped, never buffered without bound. Needs
//! agent:read on this node under ACLs.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::Level;

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::error::ApiError;
use super::params::Params;
use crate::logs::{Subscription, parse_level};

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/agent/monitor", get(monitor))
}

/// What one monitor request reads from.
struct Feed {
    sub: Subscription,
    level: Level,
    json: bool,
    stop: CancellationToken,
}

impl Feed {
    /// The next line to send, or `None` when the agent stops.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            let got = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return None,
                got = self.sub.rx.recv() => got,
            };
            match got {
                // `Level` orders by verbosity: ERROR < WARN < ... < TRACE.
                Ok(rec) if rec.level <= self.level => {
                    let line = if self.json {
                        rec.json_line()
                    } else {
                        rec.text_line()
                    };
                    return Some(Bytes::from(line));
                }
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

async fn monitor(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
) -> Result<Response, ApiError> {
    authz.check(Resource::Agent, &st.agent.node_name, Need::Read)?;
    let requested = p.non_empty("loglevel").unwrap_or("INFO");
    let level = parse_level(requested)
        .ok_or_else(|| ApiError::bad_request(format!("Unknown log level: {requested}")))?;
    let feed = Feed {
        sub: st.logs.subscribe(level),
        level,
        json: p.get("logjson").is_some(),
        stop: st.shutdown.clone(),
    };
    let lines = futures::stream::unfold(feed, |mut feed| async move {
        let line = feed.next().await?;
        Some((Ok::<_, std::convert::Infallible>(line), feed))
    });
    Ok(([("content-type", "text/plain")], Body::from_stream(lines)).into_response())
}
