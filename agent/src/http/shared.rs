//! Identical blocking reads share one answer. 10,000 watchers of one service, connected to
//! a server, were 10,000 parked queries: each woke on every applied batch, evaluated and
//! encoded the same rows and held its own copy while parked (~110 KiB a watcher). A `GET`
//! with a non-zero `?index=` now joins an identical one in flight (same path and query,
//! same token and the few headers an answer depends on), and all get the first one's
//! status, headers and body bytes. ACL filtering stays per caller: another token is another
//! key. The shared request runs in a task of its own ([`crate::single_flight`]), so a
//! watcher that hangs up does not cancel the others' answer; an answer is never reused
//! after it is sent (a watcher arriving later asks afresh, at its own index).
//!
//! On a client agent it sits in front of the forwarding (which also shares, per RPC), so a
//! parked watcher there is a connection and a small future too.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::single_flight::{Inflight, is_blocking_read};

/// Request headers an answer may depend on (tokens, content negotiation, caching).
const KEYED_HEADERS: [HeaderName; 7] = [
    HeaderName::from_static("x-consul-token"),
    header::AUTHORIZATION,
    header::ACCEPT,
    header::ACCEPT_ENCODING,
    header::CACHE_CONTROL,
    header::IF_NONE_MATCH,
    header::CONTENT_TYPE,
];

/// What makes two blocking reads the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ReadKey {
    path_and_query: String,
    headers: Vec<(usize, Vec<u8>)>,
}

/// A finished answer, as every sharer sends it.
#[derive(Debug)]
pub(super) struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// The blocking reads in flight on one API listener set.
pub(super) type SharedReads = Arc<Inflight<ReadKey, Option<Answer>>>;

fn key_of(req: &Request) -> Option<ReadKey> {
    let pq = req.uri().path_and_query()?;
    if !is_blocking_read(req.method().as_str(), pq.query()) {
        return None;
    }
    let headers = KEYED_HEADERS
        .iter()
        .enumerate()
        .flat_map(|(i, h)| {
            req.headers()
                .get_all(h)
                .iter()
                .map(move |v| (i, v.as_bytes().to_vec()))
        })
        .collect();
    Some(ReadKey {
        path_and_query: pq.as_str().to_string(),
        headers,
    })
}

/// Layer: a blocking read joins an identical one in flight, or starts it.
pub(super) async fn share(State(reads): State<SharedReads>, req: Request, next: Next) -> Response {
    let Some(key) = key_of(&req) else {
        return next.run(req).await;
    };
    let answer = reads
        .share(key, move || async move {
            let (parts, body) = next.run(req).await.into_parts();
            // Blocking reads answer JSON bodies; one that cannot be read is a 500 for all.
            let body = axum::body::to_bytes(body, usize::MAX).await.ok()?;
            Some(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        })
        .await;
    match answer.as_deref() {
        Some(Some(a)) => {
            let mut resp = Response::new(Body::from(a.body.clone()));
            *resp.status_mut() = a.status;
            *resp.headers_mut() = a.headers.clone();
            resp
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "blocking read failed").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use axum::Router;
    use axum::routing::get;
    use tokio::sync::watch;
    use tower::ServiceExt;

    use super::*;

    /// Ten identical watchers and one with another token, against a real axum router: two
    /// handler runs, every watcher gets its answer (body and headers), nothing left in flight.
    #[tokio::test]
    async fn identical_blocking_reads_run_the_handler_once_per_token() {
        let calls = Arc::new(AtomicU64::new(0));
        let (go_tx, go_rx) = watch::channel(false);
        let reads = SharedReads::default();
        let app = {
            let calls = Arc::clone(&calls);
            Router::new()
                .route(
                    "/v1/health/service/web",
                    get(move |h: HeaderMap| {
                        let (calls, go) = (Arc::clone(&calls), go_rx.clone());
                        async move {
                            let n = calls.fetch_add(1, Ordering::SeqCst);
                            let _ = go.clone().wait_for(|g| *g).await;
                            let token = h
                                .get("x-consul-token")
                                .map_or("anonymous", |v| v.to_str().unwrap_or("?"))
                                .to_string();
                            ([("x-consul-index", "9")], format!("{token} {n}"))
                        }
                    }),
                )
                .layer(axum::middleware::from_fn_with_state(reads.clone(), share))
        };
        let request = |token: Option<&str>| {
            let mut b = Request::builder().uri("/v1/health/service/web?index=5&wait=60s");
            if let Some(t) = token {
                b = b.header("x-consul-token", t);
            }
            b.body(Body::empty()).expect("request")
        };
        let mut waiters = Vec::new();
        for token in [None; 10].into_iter().chain([Some("t")]) {
            let app = app.clone();
            let req = request(token);
            waiters.push(tokio::spawn(async move { app.oneshot(req).await }));
        }
        // Current-thread runtime: tasks run in spawn order, so once both handler runs have
        // begun every watcher has joined one.
        while calls.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        go_tx.send_replace(true);
        let mut bodies = Vec::new();
        for w in waiters {
            let resp = w.await.expect("join").expect("infallible");
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()["x-consul-index"], "9");
            let body = axum::body::to_bytes(resp.into_body(), 1024)
                .await
                .expect("body");
            bodies.push(String::from_utf8(body.to_vec()).expect("utf8"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(bodies[..10].iter().all(|b| b == &bodies[0]), "{bodies:?}");
        assert!(bodies[0].starts_with("anonymous "), "{bodies:?}");
        assert!(bodies[10].starts_with("t "), "{bodies:?}");
        assert_eq!(reads.in_flight(), 0);
        // A non-blocking read is never shared.
        let plain = Request::builder()
            .uri("/v1/health/service/web")
            .body(Body::empty())
            .expect("request");
        app.oneshot(plain).await.expect("infallible");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
