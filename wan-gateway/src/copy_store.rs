//! The copies a gateway holds of other datacenters' catalogs: opaque bodies (it never
//! decodes them) with the index they were taken at and when that datacenter last answered.
//! Pure bookkeeping behind one short lock; the tasks that fill it are in `copies.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use meridian_rpc::gateway::{CatalogCopyReply, CopyView, GatewayFailure, GatewayReply, millis};
use parking_lot::Mutex;
use tokio::time::Instant;

/// One datacenter's copy.
#[derive(Debug, Default)]
struct Entry {
    index: u64,
    body: Option<Arc<Vec<u8>>>,
    /// When that datacenter's catalog last answered (new body or "unchanged").
    contact: Option<Instant>,
    refreshes: u64,
    last_error: Option<String>,
}

/// Every remote datacenter's copy.
#[derive(Debug, Default)]
pub struct CopyStore {
    copies: Mutex<BTreeMap<String, Entry>>,
}

impl CopyStore {
    /// The index of `dc`'s copy (0: none), to resume the stream from.
    pub fn index(&self, dc: &str) -> u64 {
        self.copies.lock().get(dc).map_or(0, |e| e.index)
    }

    /// `dc`'s catalog answered at `index`: with a new `body`, or unchanged (`None`).
    pub fn refreshed(&self, dc: &str, index: u64, body: Option<Vec<u8>>, now: Instant) {
        let mut copies = self.copies.lock();
        let e = copies.entry(dc.to_string()).or_default();
        if let Some(body) = body {
            e.body = Some(Arc::new(body));
            e.refreshes += 1;
        }
        // An "unchanged" answer only counts for the body held: without one, keep index 0 so
        // the next read asks for the whole copy.
        if e.body.is_some() {
            e.index = index;
        }
        e.contact = Some(now);
        e.last_error = None;
    }

    /// Refreshing `dc`'s copy failed; the copy (if any) is kept.
    pub fn failed(&self, dc: &str, why: String) {
        self.copies
            .lock()
            .entry(dc.to_string())
            .or_default()
            .last_error = Some(why);
    }

    /// `dc` left the WAN pool: its copy goes.
    pub fn forget(&self, dc: &str) {
        self.copies.lock().remove(dc);
    }

    /// The answer to `CatalogCopy { dc, have_index }`: the body only when the caller's
    /// index differs from the copy's.
    pub fn answer(&self, dc: &str, have_index: u64, now: Instant) -> GatewayReply {
        let copies = self.copies.lock();
        let Some((e, body)) = copies.get(dc).and_then(|e| Some((e, e.body.as_ref()?))) else {
            return GatewayReply::Failed {
                kind: GatewayFailure::Unreachable,
                message: format!("this gateway holds no copy of datacenter {dc:?}'s catalog"),
            };
        };
        GatewayReply::CatalogCopy(CatalogCopyReply {
            index: e.index,
            age_ms: age_ms(e.contact, now).unwrap_or(u64::MAX),
            body: (have_index != e.index).then(|| body.as_ref().clone()),
        })
    }

    /// The state of every copy, for the federation view.
    pub fn views(&self, now: Instant) -> Vec<CopyView> {
        self.copies
            .lock()
            .iter()
            .map(|(dc, e)| CopyView {
                dc: dc.clone(),
                index: e.index,
                bytes: e.body.as_ref().map_or(0, |b| b.len() as u64),
                age_ms: age_ms(e.contact, now),
                refreshes: e.refreshes,
                last_error: e.last_error.clone(),
            })
            .collect()
    }
}

fn age_ms(contact: Option<Instant>, now: Instant) -> Option<u64> {
    contact.map(|t| millis(now.saturating_duration_since(t)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn copy(reply: GatewayReply) -> CatalogCopyReply {
        match reply {
            GatewayReply::CatalogCopy(c) => c,
            other => panic!("not a copy: {other:?}"),
        }
    }

    #[test]
    fn the_body_goes_only_to_callers_without_that_index() {
        let store = CopyStore::default();
        let t0 = Instant::now();
        assert!(matches!(
            store.answer("dc2", 0, t0),
            GatewayReply::Failed {
                kind: GatewayFailure::Unreachable,
                ..
            }
        ));
        // "Unchanged" before any body holds nothing and keeps asking for the whole copy.
        store.refreshed("dc2", 4, None, t0);
        assert_eq!(store.index("dc2"), 0);
        store.refreshed("dc2", 5, Some(b"v5".to_vec()), t0);
        assert_eq!(store.index("dc2"), 5);
        let c = copy(store.answer("dc2", 0, t0 + Duration::from_millis(30)));
        assert_eq!(
            (c.index, c.age_ms, c.body.as_deref()),
            (5, 30, Some(&b"v5"[..]))
        );
        let c = copy(store.answer("dc2", 5, t0));
        assert_eq!((c.index, c.body), (5, None));
        // An older or newer index than the caller's gets the body.
        assert!(copy(store.answer("dc2", 6, t0)).body.is_some());
        store.refreshed("dc2", 9, Some(b"v9".to_vec()), t0);
        let c = copy(store.answer("dc2", 5, t0));
        assert_eq!((c.index, c.body.as_deref()), (9, Some(&b"v9"[..])));
    }

    #[test]
    fn failures_keep_the_copy_and_age_it_and_forgetting_drops_it() {
        let store = CopyStore::default();
        let t0 = Instant::now();
        store.refreshed("dc2", 3, Some(b"abc".to_vec()), t0);
        store.failed("dc2", "cut off".into());
        let later = t0 + Duration::from_secs(2);
        let c = copy(store.answer("dc2", 0, later));
        assert_eq!((c.index, c.age_ms), (3, 2000));
        let v = store.views(later);
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].bytes, v[0].refreshes, v[0].last_error.as_deref()),
            (3, 1, Some("cut off"))
        );
        store.refreshed("dc2", 3, None, later);
        assert_eq!(copy(store.answer("dc2", 0, later)).age_ms, 0);
        assert_eq!(store.views(later)[0].last_error, None);
        store.forget("dc2");
        assert!(store.views(later).is_empty());
        assert!(matches!(
            store.answer("dc2", 0, later),
            GatewayReply::Failed { .. }
        ));
    }
}
