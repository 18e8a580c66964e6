//! One upstream request for identical blocking reads of a client agent. A client agent
//! forwards every blocking query (`?index=`) to a server; 10,000 watchers of one service
//! were 10,000 forward RPCs, 10,000 parked queries on the server and 10,000 evaluations
//! and encodings of the same answer. Requests identical in everything the server sees
//! (method, URI with its `index`, `wait`, consistency and filters, forwarded headers with
//! the token, body) now share one in-flight request: the first starts it in a task of its
//! own, later ones subscribe, and all get its answer. ACL filtering stays per caller: a
//! different token is a different request. The task removes its entry before it publishes,
//! so a request arriving after an answer asks again.

use std::sync::Arc;

use super::forward::{HttpRequest, HttpResponse};
use crate::rpc::RpcError;
use crate::single_flight::Inflight;

/// Everything of a request the server's answer depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Key {
    fn of(req: &HttpRequest) -> Self {
        let mut headers = req.headers.clone();
        headers.sort();
        Key {
            method: req.method.clone(),
            uri: req.uri.clone(),
            headers,
            body: req.body.clone(),
        }
    }
}

/// The in-flight shared requests of one agent.
#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    inflight: Arc<Inflight<Key, Result<HttpResponse, RpcError>>>,
}

/// Whether `req` is a blocking read ([`crate::single_flight::is_blocking_read`]).
pub(crate) fn is_blocking_read(req: &HttpRequest) -> bool {
    let query = req.uri.split_once('?').map(|(_, q)| q);
    crate::single_flight::is_blocking_read(&req.method, query)
}

impl Coalescer {
    /// The answer to `req`, from an identical request in flight or from `send(req)` run in
    /// a task of its own (it finishes even if every caller goes away).
    pub(crate) async fn share<F, Fut>(
        &self,
        req: HttpRequest,
        send: F,
    ) -> Result<HttpResponse, RpcError>
    where
        F: FnOnce(HttpRequest) -> Fut,
        Fut: Future<Output = Result<HttpResponse, RpcError>> + Send + 'static,
    {
        let outcome = self
            .inflight
            .share(Key::of(&req), || send(req))
            .await
            .ok_or(RpcError::ShuttingDown)?;
        match &*outcome {
            Ok(resp) => Ok(resp.clone()),
            Err(e) => Err(same_error(e)),
        }
    }
}

/// `e` again for another subscriber (`RpcError` is not `Clone`): the kinds callers tell
/// apart keep their kind, the rest their message.
fn same_error(e: &RpcError) -> RpcError {
    match e {
        RpcError::NoServers => RpcError::NoServers,
        RpcError::NoLeader => RpcError::NoLeader,
        RpcError::ShuttingDown => RpcError::ShuttingDown,
        RpcError::OutcomeUnknown => RpcError::OutcomeUnknown,
        RpcError::Rejected(m) => RpcError::Rejected(m.clone()),
        RpcError::Forward(m) => RpcError::Forward(m.clone()),
        other => RpcError::Forward(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use tokio::sync::watch;

    use super::*;

    fn get(uri: &str) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            uri: uri.into(),
            headers: Vec::new(),
            body: Vec::new(),
            request_id: None,
        }
    }

    #[test]
    fn only_gets_with_an_index_are_shared() {
        assert!(is_blocking_read(&get(
            "/v1/health/service/a?index=5&wait=1s"
        )));
        assert!(!is_blocking_read(&get("/v1/health/service/a?index=0")));
        assert!(!is_blocking_read(&get("/v1/health/service/a?passing")));
        assert!(!is_blocking_read(&get("/v1/kv/a?myindex=3")));
        let mut put = get("/v1/kv/a?index=5");
        put.method = "PUT".into();
        assert!(!is_blocking_read(&put));
    }

    #[tokio::test]
    async fn identical_requests_share_one_upstream_and_tokens_do_not_mix() {
        let c = Arc::new(Coalescer::default());
        let calls = Arc::new(AtomicU64::new(0));
        let (go_tx, go_rx) = watch::channel(false);
        let send = || {
            let calls = Arc::clone(&calls);
            let go = go_rx.clone();
            move |req: HttpRequest| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let _ = go.clone().wait_for(|g| *g).await;
                Ok(HttpResponse {
                    status: 200,
                    headers: req.headers,
                    body: req.uri.into_bytes(),
                })
            }
        };
        let uri = "/v1/health/service/a?index=5";
        let mut tokened = get(uri);
        tokened.headers.push(("x-consul-token".into(), "t".into()));
        let mut requests = vec![get(uri); 10];
        requests.push(tokened);
        let waiters: Vec<_> = requests
            .into_iter()
            .map(|req| {
                let c = Arc::clone(&c);
                let send = send();
                tokio::spawn(async move { c.share(req, send).await })
            })
            .collect();
        // On this current-thread runtime tasks run in spawn order: once both upstream
        // requests (started by the first waiter of each token) are in, every waiter joined.
        while calls.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        go_tx.send_replace(true);
        for w in waiters {
            let r = w.await.expect("join").expect("answer");
            assert_eq!(r.body, uri.as_bytes());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one per token");
        assert_eq!(c.inflight.in_flight(), 0);
    }
}
