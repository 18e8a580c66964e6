//! The gateway's answers on both of its RPC ports ([`meridian_rpc::Handler`]): `Relay` from
//! its own datacenter's servers goes to a gateway of the target datacenter, `Deliver` from
//! another datacenter's gateway goes to one of its own servers, `Federation` reports the
//! WAN pool, `WanKeys` runs a keyring operation over it and `CatalogCopy` answers from
//! the copies of remote catalogs (`copies.rs`). Every hop spends only the time
//! the caller has left, and tries the next
//! peer when one cannot be reached (or, for reads and writes with a request id, when one
//! lost its answer).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meridian_gossip::GossipHandle;
use meridian_rpc::failover::{Exhausted, try_in_turn};
use meridian_rpc::gateway::{
    FederationView, GatewayFailure, GatewayOp, GatewayReply, ask, decode_op, encode_reply, millis,
    server_name,
};
use meridian_rpc::http::{server_request_payload, server_response};
use meridian_rpc::{Channels, HttpRequest, TransportError, call_named};
use tokio::time::Instant;

use crate::copy_store::CopyStore;
use crate::directory::{self, Route};

/// How much of its time a hop keeps back for its own reply, so a downstream timeout comes
/// back as an answer before the caller gives up.
fn margin(left: Duration) -> Duration {
    (left / 10).min(Duration::from_millis(200))
}

/// Counters of what the gateway relayed, for its status line and tests.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Requests relayed to another datacenter and answered.
    pub relayed: AtomicU64,
    /// Requests from another datacenter delivered to a local server and answered.
    pub delivered: AtomicU64,
    /// Requests that failed (unknown or unreachable datacenter, no server).
    pub failed: AtomicU64,
}

/// Which port an op arrived on: servers call the LAN one, other gateways the WAN one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// From this datacenter's servers: `Relay` and `Federation`.
    Lan,
    /// From other datacenters' gateways: `Deliver` only, so a gateway is never an open
    /// relay from one remote datacenter to another.
    Wan,
}

/// Answers gateway ops.
#[derive(Clone)]
pub struct Relay {
    side: Side,
    dc: String,
    domain: String,
    lan: GossipHandle,
    wan: GossipHandle,
    channels: Arc<Channels>,
    stats: Arc<RelayStats>,
    copies: Arc<CopyStore>,
}

impl Relay {
    /// A relay for datacenter `dc`, whose peers prove names under `domain` when TLS is on.
    pub fn new(
        dc: String,
        domain: String,
        lan: GossipHandle,
        wan: GossipHandle,
        channels: Arc<Channels>,
        stats: Arc<RelayStats>,
        copies: Arc<CopyStore>,
    ) -> Self {
        Self {
            side: Side::Lan,
            dc,
            domain,
            lan,
            wan,
            channels,
            stats,
            copies,
        }
    }

    /// The same relay answering on `side`.
    pub fn on(&self, side: Side) -> Self {
        Self {
            side,
            ..self.clone()
        }
    }

    /// The federation as the WAN pool shows it, with this gateway's catalog copies.
    pub fn federation(&self) -> FederationView {
        let mut view = directory::federation_view(
            &self.dc,
            self.wan.coordinate().as_ref(),
            &self.wan.members(),
            |n| self.wan.coordinate_of(n),
        );
        view.copies = self.copies.views(Instant::now());
        view
    }

    /// Every other datacenter with a member of `role` in the WAN pool, any status.
    pub(crate) fn remote_datacenters(&self, role: meridian_gossip::Role) -> Vec<String> {
        let mut out: Vec<String> = self
            .wan
            .members()
            .iter()
            .filter(|m| m.tags.role() == Some(role))
            .filter_map(|m| m.tags.datacenter())
            .filter(|dc| *dc != self.dc)
            .map(str::to_string)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    async fn answer(&self, op: GatewayOp) -> GatewayReply {
        let allowed = match (&op, self.side) {
            (GatewayOp::Deliver { .. }, side) => side == Side::Wan,
            (_, side) => side == Side::Lan,
        };
        if !allowed {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            return failed(
                GatewayFailure::Refused,
                format!(
                    "this op is not accepted on the gateway's {:?} port",
                    self.side
                ),
            );
        }
        let reply = match op {
            GatewayOp::Relay {
                dc,
                http,
                deadline_ms,
            } => {
                let deadline = Instant::now() + Duration::from_millis(deadline_ms);
                if dc == self.dc {
                    self.deliver(http, deadline).await
                } else {
                    self.relay(&dc, http, deadline).await
                }
            }
            GatewayOp::Deliver { http, deadline_ms } => {
                self.deliver(http, Instant::now() + Duration::from_millis(deadline_ms))
                    .await
            }
            GatewayOp::Federation => return GatewayReply::Federation(self.federation()),
            GatewayOp::WanKeys(op) => match self.wan.key_query(op).await {
                Ok(summary) => GatewayReply::WanKeys(summary),
                Err(e) => failed(GatewayFailure::Refused, e.to_string()),
            },
            GatewayOp::RemoveDatacenter { dc } => self.remove_datacenter(&dc).await,
            GatewayOp::CatalogCopy { dc, have_index } => {
                return self.copies.answer(&dc, have_index, Instant::now());
            }
        };
        if matches!(reply, GatewayReply::Failed { .. }) {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        reply
    }

    /// Removes every WAN member of `dc` (force-leave and prune, gossiped to the whole pool),
    /// so it leaves `/v1/catalog/datacenters` everywhere now rather than after the 72 h
    /// reconnect timeout. Refused for this datacenter and for one with a gateway alive
    /// (it would only gossip its way back).
    async fn remove_datacenter(&self, dc: &str) -> GatewayReply {
        if dc == self.dc {
            return failed(
                GatewayFailure::Refused,
                format!("{dc:?} is this gateway's own datacenter"),
            );
        }
        let members: Vec<_> = self
            .wan
            .members()
            .into_iter()
            .filter(|m| m.tags.datacenter() == Some(dc))
            .collect();
        if members.is_empty() {
            return failed(
                GatewayFailure::UnknownDatacenter,
                format!("No path to datacenter {dc:?}: no gateway of it in the WAN pool"),
            );
        }
        let alive: Vec<&str> = members
            .iter()
            .filter(|m| m.status == meridian_gossip::MemberStatus::Alive)
            .map(|m| m.name.as_str())
            .collect();
        if !alive.is_empty() {
            return failed(
                GatewayFailure::Refused,
                format!(
                    "datacenter {dc:?} still has gateways alive in the WAN pool ({}); stop them first",
                    alive.join(", ")
                ),
            );
        }
        let mut removed = Vec::new();
        for m in members {
            match self.wan.force_leave_prune(&m.name).await {
                Ok(()) => removed.push(m.name),
                Err(e) => {
                    return failed(GatewayFailure::Refused, format!("removing {}: {e}", m.name));
                }
            }
        }
        tracing::info!(datacenter = %dc, members = ?removed, "removed a datacenter from the WAN pool");
        GatewayReply::Removed(removed)
    }

    /// To a gateway of `dc`, nearest first.
    pub(crate) async fn relay(
        &self,
        dc: &str,
        http: HttpRequest,
        deadline: Instant,
    ) -> GatewayReply {
        let members = self.wan.members();
        let gateways = match directory::route(&members, dc, |n| {
            let me = self.wan.coordinate()?;
            Some(me.distance_to(&self.wan.coordinate_of(n)?))
        }) {
            Route::Unknown => {
                return failed(
                    GatewayFailure::UnknownDatacenter,
                    format!("No path to datacenter {dc:?}: no gateway of it in the WAN pool"),
                );
            }
            Route::Down => {
                return failed(
                    GatewayFailure::Unreachable,
                    format!(
                        "datacenter {dc:?} is unreachable: none of its gateways is alive in the WAN pool"
                    ),
                );
            }
            Route::Via(g) => g,
        };
        let retry = http.is_read() || http.request_id.is_some();
        let long = http.is_blocking();
        let read = http.is_read();
        let result = try_in_turn(&gateways, deadline, retry, long, |addr, t| {
            let op = GatewayOp::Deliver {
                http: http.clone(),
                deadline_ms: millis(t.saturating_sub(margin(t))),
            };
            let channels = self.channels.clone();
            let dc = dc.to_string();
            let domain = self.domain.clone();
            async move {
                match ask(&channels, &addr, &dc, &domain, &op, t).await? {
                    // The remote gateway found no server: another gateway of that
                    // datacenter may (a different LAN view); reads and id-carrying writes
                    // try it.
                    GatewayReply::Failed {
                        kind: GatewayFailure::Unreachable,
                        message,
                    } => Err(TransportError::Unreachable {
                        addr,
                        reason: message,
                    }),
                    other => Ok(other),
                }
            }
        })
        .await;
        match result {
            Ok(reply) => {
                self.stats.relayed.fetch_add(1, Ordering::Relaxed);
                reply
            }
            Err(e) => exhausted(&format!("datacenter {dc:?}"), &e, read),
        }
    }

    /// To a server of this datacenter.
    async fn deliver(&self, http: HttpRequest, deadline: Instant) -> GatewayReply {
        let servers = directory::local_servers(&self.lan.members(), &self.dc);
        if servers.is_empty() {
            return failed(
                GatewayFailure::Unreachable,
                format!(
                    "datacenter {:?} has no server alive in its LAN pool",
                    self.dc
                ),
            );
        }
        let payload = match server_request_payload(&http) {
            Ok(p) => p,
            Err(e) => return failed(GatewayFailure::Refused, e),
        };
        let retry = http.is_read() || http.request_id.is_some();
        let result = try_in_turn(&servers, deadline, retry, http.is_blocking(), |addr, t| {
            let channels = self.channels.clone();
            let payload = payload.clone();
            let dc = self.dc.clone();
            let name = server_name(&dc, &self.domain);
            async move {
                let reply = call_named(&channels, &addr, &name, &dc, payload, t).await?;
                match server_response(&reply) {
                    Ok(Ok(resp)) => Ok(resp),
                    Ok(Err(refusal)) => Err(TransportError::Protocol(refusal.to_string())),
                    Err(e) => Err(TransportError::Protocol(e)),
                }
            }
        })
        .await;
        match result {
            Ok(resp) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                GatewayReply::Http(resp)
            }
            Err(e) => exhausted(&format!("the servers of {:?}", self.dc), &e, http.is_read()),
        }
    }
}

fn failed(kind: GatewayFailure, message: String) -> GatewayReply {
    GatewayReply::Failed { kind, message }
}

/// The failure for peers that all failed: unknown outcome when a write may have landed.
fn exhausted(what: &str, e: &Exhausted, read: bool) -> GatewayReply {
    let last = e.last.as_deref().unwrap_or("no time left");
    if e.maybe_sent && !read {
        return failed(
            GatewayFailure::OutcomeUnknown,
            format!(
                "the outcome of the write is unknown: {what} received it but no answer came back ({last})"
            ),
        );
    }
    let why = if e.timed_out {
        "did not answer before the deadline"
    } else {
        "could not be reached"
    };
    failed(
        GatewayFailure::Unreachable,
        format!("{what} {why} ({} tried; last: {last})", e.tried),
    )
}

#[async_trait::async_trait]
impl meridian_rpc::Handler for Relay {
    async fn handle(&self, payload: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
        let op = decode_op(&payload).map_err(tonic::Status::invalid_argument)?;
        let reply = self.answer(op).await;
        encode_reply(&reply).map_err(tonic::Status::internal)
    }
}
