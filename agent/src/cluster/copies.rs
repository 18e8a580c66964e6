//! Another datacenter's catalog from the copy this datacenter's gateways keep of it
//! (`meridian-gateway`'s `copies`), for stale reads while that datacenter is cut off.
//! The copy is decoded once per (datacenter, index) and kept, so repeated reads during an
//! outage cost one small gateway round trip each ("still index N?"), not a restore.
//! No HTTP here: `http::copy_read` and DNS decide when a copy may answer.
//!
//! ```text
//!  stale read ?dc=dc2 ─relay fails (unreachable)─▶ fetch ─CatalogCopy{dc2, have}─▶ dc1 gateway
//!                                                     ◀── index, age, body if new ──┘
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meridian_rpc::Channels;
use meridian_rpc::failover::try_in_turn;
use meridian_rpc::gateway::{CatalogCopyReply, GatewayOp, GatewayReply, ask, millis};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::catalog::State;
use crate::rpc::RpcError;

/// Time kept back from a relay that a copy could answer instead, to fetch that copy from a
/// local gateway (and decode it, when it is new) within the request's deadline.
pub const COPY_MARGIN: Duration = Duration::from_secs(1);

/// A remote datacenter's catalog as its copy holds it.
#[derive(Debug)]
pub struct CatalogCopy {
    /// The datacenter.
    pub dc: String,
    /// The copy's index (its `X-Consul-Index`).
    pub index: u64,
    /// The catalog.
    pub state: Arc<State>,
    /// Age of the copy when it was fetched (ms since that datacenter last answered).
    age_ms: u64,
    /// When it was fetched.
    fetched: Instant,
}

impl CatalogCopy {
    /// Milliseconds since the datacenter last answered the gateway: `X-Consul-LastContact`.
    pub fn age_ms(&self) -> u64 {
        self.age_ms.saturating_add(millis(self.fetched.elapsed()))
    }
}

/// The copies decoded so far, and how many answers each gave.
#[derive(Debug, Default)]
pub struct CopyCache {
    held: Mutex<BTreeMap<String, (u64, Arc<State>)>>,
    served: Mutex<BTreeMap<String, u64>>,
}

impl CopyCache {
    /// Counts an answer given from `dc`'s copy.
    pub fn served(&self, dc: &str) {
        *self.served.lock().entry(dc.to_string()).or_default() += 1;
    }

    /// Answers given from each datacenter's copy.
    pub fn served_counts(&self) -> BTreeMap<String, u64> {
        self.served.lock().clone()
    }

    /// `dc` answered a relay: its decoded copy (tens of MB for a large catalog) is not kept
    /// for an outage that is over; the next one decodes it again.
    pub fn forget(&self, dc: &str) {
        // The guard goes at the end of the statement: a large state is freed outside it.
        let dropped = self.held.lock().remove(dc);
        drop(dropped);
    }

    fn held(&self, dc: &str) -> Option<(u64, Arc<State>)> {
        self.held.lock().get(dc).cloned()
    }

    /// `dc`'s catalog from a gateway's reply: the decoded one when it holds that index.
    async fn take(&self, dc: &str, reply: CatalogCopyReply) -> Result<Arc<State>, RpcError> {
        if let Some((index, state)) = self.held(dc)
            && index == reply.index
        {
            return Ok(state);
        }
        let Some(body) = reply.body else {
            return Err(RpcError::Forward(format!(
                "the gateway left out the body of {dc:?}'s catalog copy {}",
                reply.index
            )));
        };
        // Decoding thousands of rows is CPU work: off the async workers.
        let decoded = tokio::task::spawn_blocking(move || State::decode_copy(&body))
            .await
            .map_err(|e| RpcError::Forward(format!("decoding a catalog copy: {e}")))?
            .map_err(|e| RpcError::Forward(format!("{dc:?}'s catalog copy: {e}")))?;
        let state = Arc::new(decoded.1);
        self.held
            .lock()
            .insert(dc.to_string(), (decoded.0, state.clone()));
        Ok(state)
    }
}

/// Where and how to ask this datacenter's gateways.
pub struct Gateways<'a> {
    /// Their RPC addresses.
    pub addrs: Vec<String>,
    /// This datacenter (the gateways' own).
    pub local_dc: &'a str,
    /// Their certificates' domain.
    pub domain: &'a str,
    /// The connections.
    pub channels: &'a Channels,
}

/// `dc`'s catalog from the copy of one of `gateways` (the next one when one fails),
/// within `budget`.
pub async fn fetch(
    gateways: Gateways<'_>,
    cache: &CopyCache,
    dc: &str,
    budget: Duration,
) -> Result<CatalogCopy, RpcError> {
    let deadline = Instant::now() + budget;
    let have_index = cache.held(dc).map_or(0, |(i, _)| i);
    let op = GatewayOp::CatalogCopy {
        dc: dc.to_string(),
        have_index,
    };
    let got = try_in_turn(&gateways.addrs, deadline, true, false, |addr, t| {
        let op = op.clone();
        async move {
            match ask(
                gateways.channels,
                &addr,
                gateways.local_dc,
                gateways.domain,
                &op,
                t,
            )
            .await?
            {
                GatewayReply::CatalogCopy(c) => Ok(c),
                // This gateway has none (new, or never reached dc): another may.
                GatewayReply::Failed { message, .. } => {
                    Err(meridian_rpc::TransportError::Unreachable {
                        addr,
                        reason: message,
                    })
                }
                other => Err(meridian_rpc::TransportError::Protocol(format!(
                    "unexpected reply {other:?}"
                ))),
            }
        }
    })
    .await;
    let reply = got.map_err(|e| {
        RpcError::Forward(format!(
            "no copy of datacenter {dc:?}'s catalog: {}",
            e.last.unwrap_or_else(|| "no gateway alive".into())
        ))
    })?;
    let (index, age_ms) = (reply.index, reply.age_ms);
    let state = cache.take(dc, reply).await?;
    Ok(CatalogCopy {
        dc: dc.to_string(),
        index,
        state,
        age_ms,
        fetched: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(index: u64, body: Option<Vec<u8>>) -> CatalogCopyReply {
        CatalogCopyReply {
            index,
            age_ms: 0,
            body,
        }
    }

    #[tokio::test]
    async fn a_copy_is_decoded_once_per_index_and_forgotten_when_the_datacenter_answers() {
        let cache = CopyCache::default();
        let body = State::new().encode_copy();
        // Without a body and nothing held, there is nothing to answer from.
        assert!(cache.take("dc2", reply(0, None)).await.is_err());
        let first = cache
            .take("dc2", reply(0, Some(body)))
            .await
            .expect("decoded");
        let again = cache.take("dc2", reply(0, None)).await.expect("cached");
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(cache.held("dc2").map(|(i, _)| i), Some(0));
        cache.forget("dc2");
        assert!(cache.held("dc2").is_none());
        assert!(cache.take("dc2", reply(0, None)).await.is_err());
        assert!(
            cache
                .take("dc2", reply(3, Some(b"not a copy".to_vec())))
                .await
                .is_err()
        );
    }
}
