//! Single flight: callers asking for the same thing while an answer is being made share
//! that answer instead of each making their own. The first caller's work runs in a task of
//! its own, so it finishes (and the others get it) even if that caller goes away; its entry
//! is removed before the answer is published, so a caller arriving after an answer starts
//! afresh. Used for identical blocking reads: forwarded by a client agent
//! (`cluster/coalesce.rs`) and answered over HTTP (`http/shared.rs`).
//!
//! ```text
//!   share(key, work) ── key in flight? ── yes ─▶ wait for its answer
//!                                    └─── no ──▶ spawn work ─▶ remove key ─▶ publish
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::watch;

/// Whether a request is a blocking read: a `GET` whose query holds a non-zero `index`
/// (only those wait long enough to meet an identical one, and only for them is a shared
/// answer as good as a fresh one: each caller gets one past its index, or the wait's end).
pub(crate) fn is_blocking_read(method: &str, query: Option<&str>) -> bool {
    method == "GET"
        && query.is_some_and(|q| {
            q.split('&').any(|kv| {
                kv.strip_prefix("index=")
                    .is_some_and(|v| !v.is_empty() && v != "0")
            })
        })
}

/// One answer in the making, shared by its waiters.
struct Slot<V> {
    id: u64,
    rx: watch::Receiver<Option<Arc<V>>>,
}

/// The answers in flight, by key.
pub(crate) struct Inflight<K, V> {
    map: Mutex<HashMap<K, Slot<V>>>,
    next: AtomicU64,
}

impl<K, V> Default for Inflight<K, V> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        }
    }
}

impl<K, V> std::fmt::Debug for Inflight<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflight")
            .field("in_flight", &self.map.lock().len())
            .finish()
    }
}

/// Removes a key's entry when its work ends, also by a panic.
struct Remove<K: Hash + Eq, V> {
    owner: Arc<Inflight<K, V>>,
    key: K,
    id: u64,
}

impl<K: Hash + Eq, V> Drop for Remove<K, V> {
    fn drop(&mut self) {
        let mut map = self.owner.map.lock();
        if map.get(&self.key).is_some_and(|s| s.id == self.id) {
            map.remove(&self.key);
        }
    }
}

impl<K, V> Inflight<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// The answer for `key`: the one in flight, else `work()`'s, run in a task of its own.
    /// `None` only if that work panicked or the runtime is going away.
    pub(crate) async fn share<Fut>(
        self: &Arc<Self>,
        key: K,
        work: impl FnOnce() -> Fut,
    ) -> Option<Arc<V>>
    where
        Fut: Future<Output = V> + Send + 'static,
    {
        let mut rx = {
            let mut map = self.map.lock();
            match map.get(&key) {
                Some(slot) => {
                    // A joiner's work (the request it would have made) is freed now, not
                    // held while it waits: 10,000 parked watchers hold only their receivers.
                    drop(work);
                    slot.rx.clone()
                }
                None => {
                    let (tx, rx) = watch::channel(None);
                    let id = self.next.fetch_add(1, Ordering::Relaxed);
                    map.insert(key.clone(), Slot { id, rx: rx.clone() });
                    let fut = work();
                    let remove = Remove {
                        owner: Arc::clone(self),
                        key,
                        id,
                    };
                    tokio::spawn(async move {
                        let out = fut.await;
                        drop(remove);
                        tx.send_replace(Some(Arc::new(out)));
                    });
                    rx
                }
            }
        };
        let answered = rx.wait_for(Option::is_some).await.ok()?;
        answered.clone()
    }

    /// Answers being made now.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten waiters of one key and one of another: two pieces of work; a panicking piece of
    /// work answers `None` and leaves nothing behind.
    #[tokio::test]
    async fn one_work_per_key_and_nothing_left_after() {
        let f: Arc<Inflight<&'static str, u32>> = Arc::default();
        let calls = Arc::new(AtomicU64::new(0));
        let (go_tx, go_rx) = watch::channel(false);
        let mut waiters = Vec::new();
        for key in ["a"; 10].into_iter().chain(["b"]) {
            let (f, calls, go) = (Arc::clone(&f), Arc::clone(&calls), go_rx.clone());
            waiters.push(tokio::spawn(async move {
                f.share(key, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let _ = go.clone().wait_for(|g| *g).await;
                    7
                })
                .await
            }));
        }
        // On this current-thread runtime tasks run in spawn order: once both pieces of work
        // (spawned by the first waiter of each key) have begun, every waiter has joined.
        while calls.load(Ordering::SeqCst) < 2 || f.in_flight() < 2 {
            tokio::task::yield_now().await;
        }
        go_tx.send_replace(true);
        for w in waiters {
            assert_eq!(w.await.expect("join").as_deref(), Some(&7));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(f.in_flight(), 0);
        let panicked = f.share("c", || async { panic!("work failed") }).await;
        assert!(panicked.is_none());
        assert_eq!(f.in_flight(), 0);
    }
}
