//! One upstream request for identical blocking reads of a client agent. A client agent
//! forwards every blocking query (`?index=`) to a server; 10,000 watchers of one service
//! were 10,000 forward RPCs, 10,000 parked queries on the server and 10,000 evaluations
//! and encodings of the same answer. Requests identical in everything the server sees
//! (method, URI with its `index`, `wait`, consistency and filters, forwarded headers with
//! the token, body) now share one in-flight request: the first starts it in a task of its
//! own, later ones subscribe, and all get its answer. ACL filtering stays per caller: a
//! different token is a different request. The task removes its entry before it publishes,
//! so a request arriving after an answer asks again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::watch;

use super::forward::{HttpRequest, HttpResponse};
use crate::rpc::RpcError;

/// The answer of one upstream request, shared by its subscribers.
type Outcome = Arc<Result<HttpResponse, RpcError>>;

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

struct Slot {
    id: u64,
    rx: watch::Receiver<Option<Outcome>>,
}

/// The in-flight shared requests of one agent.
#[derive(Default)]
pub(crate) struct Coalescer {
    inflight: Mutex<HashMap<Key, Slot>>,
    next: AtomicU64,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("inflight", &self.inflight.lock().len())
            .finish()
    }
}

/// Whether `req` is a blocking read (a `GET` with a non-zero `?index=`): only those wait
/// long enough, and only for them is a shared answer as good as a fresh one (each caller
/// gets an answer past its index, or the wait's end).
pub(crate) fn is_blocking_read(req: &HttpRequest) -> bool {
    req.method == "GET"
        && req.uri.split_once('?').is_some_and(|(_, q)| {
            q.split('&').any(|kv| {
                kv.strip_prefix("index=")
                    .is_some_and(|v| !v.is_empty() && v != "0")
            })
        })
}

impl Coalescer {
    /// The answer to `req`, from an identical request in flight or from `send(req)` run in
    /// a task of its own (it finishes even if every caller goes away).
    pub(crate) async fn share<F, Fut>(
        self: &Arc<Self>,
        req: HttpRequest,
        send: F,
    ) -> Result<HttpResponse, RpcError>
    where
        F: FnOnce(HttpRequest) -> Fut,
        Fut: Future<Output = Result<HttpResponse, RpcError>> + Send + 'static,
    {
        let key = Key::of(&req);
        let mut rx = {
            let mut inflight = self.inflight.lock();
            match inflight.get(&key) {
                Some(slot) => slot.rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    let id = self.next.fetch_add(1, Ordering::Relaxed);
                    inflight.insert(key.clone(), Slot { id, rx: rx.clone() });
                    let upstream = send(req);
                    let this = Arc::clone(self);
                    tokio::spawn(async move {
                        let out = upstream.await;
                        {
                            let mut inflight = this.inflight.lock();
                            if inflight.get(&key).is_some_and(|s| s.id == id) {
                                inflight.remove(&key);
                            }
                        }
                        tx.send_replace(Some(Arc::new(out)));
                    });
                    rx
                }
            }
        };
        let outcome = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => return Err(RpcError::ShuttingDown),
        };
        match outcome.as_deref() {
            Some(Ok(resp)) => Ok(resp.clone()),
            Some(Err(e)) => Err(same_error(e)),
            None => Err(RpcError::ShuttingDown),
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
        // Let every waiter subscribe before the upstream answers.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        go_tx.send_replace(true);
        for w in waiters {
            let r = w.await.expect("join").expect("answer");
            assert_eq!(r.body, uri.as_bytes());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one per token");
        assert!(c.inflight.lock().is_empty());
    }
}
