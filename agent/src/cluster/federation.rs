//! A server's way to other datacenters: through its own datacenter's WAN gateways, found in
//! the LAN pool (`role=gateway`). A request for `?dc=dc2` is relayed whole (the HTTP API
//! request, as a client agent forwards it) and answered by a dc2 server as a local one; the
//! gateways find the way (see `meridian-gateway`). The federation's shape (datacenters by
//! WAN round trip, WAN members, WAN coordinates) is asked of a gateway when needed and the
//! last answer kept, so a gateway outage degrades it to the last known view, never a hang.
//!
//! ```text
//!  HTTP ?dc=dc2 / DNS *.dc2.consul ──▶ Federation::relay ──Relay──▶ a dc1 gateway (next on failure)
//!  stale read, dc2 unreachable ──▶ Federation::catalog_copy ──CatalogCopy──▶ a dc1 gateway
//! ```

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use meridian_rpc::failover::try_in_turn;
use meridian_rpc::gateway::{FederationView, GatewayFailure, GatewayOp, GatewayReply, ask, millis};
use meridian_rpc::{Channels, HttpRequest, HttpResponse};
use rand::seq::SliceRandom;
use tokio::time::Instant;

use tracing::debug;

use super::breaker::{Admit, Breakers, DcHealth};
use super::copies::{self, CatalogCopy, CopyCache};
use crate::catalog::PreparedQuery;
use crate::gossip::{GossipHandle, KeyOp, KeyringSummary, MemberStatus, Role};
use crate::rpc::RpcError;
use crate::telemetry;

/// Time a non-blocking cross-datacenter request may take, every hop included.
pub const CROSS_DC_TIMEOUT: Duration = Duration::from_secs(7);
/// Time asking a gateway for the federation's shape may take.
const VIEW_TIMEOUT: Duration = Duration::from_secs(2);
/// Time a WAN keyring operation may take (the gossip query waits for every gateway).
const WAN_KEYS_TIMEOUT: Duration = Duration::from_secs(15);
/// A view younger than this is answered without asking again.
const VIEW_FRESH: Duration = Duration::from_secs(1);

/// Where a server runs a prepared query it is given (not one it stores): the failover hop
/// of prepared queries. Internal; the query definition travels as the GET body.
pub const REMOTE_QUERY_PATH: &str = "/v1/internal/query/execute";

/// A prepared query's answer from another datacenter.
#[derive(Debug)]
pub struct RemoteQueryAnswer {
    /// The datacenter that answered.
    pub datacenter: String,
    /// Datacenters asked, the answering one included (Consul's `Failovers`).
    pub tried: u32,
    /// Its execute response (Consul's JSON shape).
    pub body: serde_json::Value,
}

/// The way out of this datacenter.
#[derive(Debug)]
pub struct Federation {
    datacenter: String,
    /// The DNS domain gateway certificates are issued under (`gateway.<dc>.<domain>`).
    domain: String,
    gossip: GossipHandle,
    channels: Arc<Channels>,
    view: ArcSwapOption<(Instant, FederationView)>,
    /// Each remote datacenter's breaker and call health.
    breakers: Breakers,
    /// Remote catalogs decoded from the gateways' copies.
    copies: CopyCache,
}

impl Federation {
    /// Gateways of `datacenter` found through `gossip`, called over `channels`; under TLS
    /// they prove `gateway.<datacenter>.<domain>`.
    pub fn new(
        datacenter: String,
        domain: String,
        gossip: GossipHandle,
        channels: Arc<Channels>,
    ) -> Self {
        Self {
            datacenter,
            domain,
            gossip,
            channels,
            view: ArcSwapOption::empty(),
            breakers: Breakers::default(),
            copies: CopyCache::default(),
        }
    }

    /// `dc`'s catalog from the copy this datacenter's gateways keep, within `budget`: what
    /// a stale read answers from while `dc` is unreachable.
    pub async fn catalog_copy(&self, dc: &str, budget: Duration) -> Result<CatalogCopy, RpcError> {
        let gateways = copies::Gateways {
            addrs: self.gateways(),
            local_dc: &self.datacenter,
            domain: &self.domain,
            channels: &self.channels,
        };
        copies::fetch(gateways, &self.copies, dc, budget).await
    }

    /// The decoded copies and the answers they gave.
    pub fn copies(&self) -> &CopyCache {
        &self.copies
    }

    /// `dc`'s breaker and call health.
    pub fn health(&self, dc: &str) -> DcHealth {
        self.breakers.health(dc)
    }

    /// Until `token` is cancelled, every second: a trial call to each datacenter whose
    /// breaker waited long enough, so it closes as soon as the datacenter is back even
    /// when nothing else asks for it.
    pub async fn probe_open_breakers(self: Arc<Self>, token: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tick.tick() => {}
            }
            for dc in self.breakers.due() {
                let req = HttpRequest {
                    method: "GET".into(),
                    uri: "/v1/status/leader".into(),
                    headers: Vec::new(),
                    body: Vec::new(),
                    request_id: None,
                };
                let got = self.relay(&dc, req, VIEW_TIMEOUT).await;
                debug!(datacenter = %dc, ok = got.is_ok(), "breaker probe");
            }
        }
    }

    /// RPC addresses of this datacenter's alive gateways, shuffled.
    pub fn gateways(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .gossip
            .members()
            .into_iter()
            .filter(|m| {
                m.status == MemberStatus::Alive
                    && m.tags.role() == Some(Role::Gateway)
                    && m.tags.datacenter() == Some(self.datacenter.as_str())
            })
            .filter_map(|m| m.tags.rpc_addr().map(|a| a.to_string()))
            .collect();
        out.shuffle(&mut rand::rng());
        out
    }

    /// Runs `req` in datacenter `dc` within `budget`; a write must carry its request id, so
    /// a retry through another gateway is applied once. Refused at once while `dc`'s
    /// breaker is open; every outcome is recorded in it.
    pub async fn relay(
        &self,
        dc: &str,
        req: HttpRequest,
        budget: Duration,
    ) -> Result<HttpResponse, RpcError> {
        self.relay_judged(dc, req, budget, true).await
    }

    /// [`Federation::relay`] for a background follower (ACL replication): its failures do
    /// not count toward `dc`'s breaker. Its long polls are always in flight, so every
    /// connection reset would end several at once and open the breaker for the requests
    /// of users; they retry with their own backoff, and still honour an open breaker.
    pub async fn relay_background(
        &self,
        dc: &str,
        req: HttpRequest,
        budget: Duration,
    ) -> Result<HttpResponse, RpcError> {
        self.relay_judged(dc, req, budget, false).await
    }

    async fn relay_judged(
        &self,
        dc: &str,
        req: HttpRequest,
        budget: Duration,
        judge: bool,
    ) -> Result<HttpResponse, RpcError> {
        let admit = self.breakers.admit(dc);
        if let Admit::Refuse(retry_in) = admit {
            telemetry::incr("meridian.federation.errors", &[("datacenter", dc)]);
            return Err(RpcError::DatacenterUnavailable {
                dc: dc.to_string(),
                retry_in,
            });
        }
        // A trial's outcome is always recorded: the breaker waits for it.
        let judge = judge || admit == Admit::Trial;
        let started = Instant::now();
        let blocking = req.is_blocking();
        let got = self.relay_once(dc, req, budget).await;
        // An unknown datacenter (a `?dc=` typo) is no series: its name comes from the
        // caller, and each would be kept for good. A blocking query's time is its wait, not
        // the link's.
        let known = !matches!(got, Err(RpcError::NoPathToDatacenter(_)));
        if known && !blocking {
            telemetry::sample_ms(
                "meridian.federation.rpc",
                &[("datacenter", dc)],
                started.elapsed(),
            );
        }
        if known && got.is_err() {
            telemetry::incr("meridian.federation.errors", &[("datacenter", dc)]);
        }
        match &got {
            Ok(_) => {
                self.breakers
                    .success(dc, (!blocking).then(|| started.elapsed()));
                self.copies.forget(dc);
            }
            // An unknown datacenter has no health to keep.
            Err(RpcError::NoPathToDatacenter(_)) => self.breakers.forget(dc),
            Err(e) if judge => self.breakers.failure(dc, &e.to_string()),
            Err(_) => {}
        }
        got
    }

    async fn relay_once(
        &self,
        dc: &str,
        req: HttpRequest,
        budget: Duration,
    ) -> Result<HttpResponse, RpcError> {
        let gateways = self.gateways();
        if gateways.is_empty() {
            return Err(RpcError::NoPathToDatacenter(dc.to_string()));
        }
        let deadline = Instant::now() + budget;
        let retry = req.is_read() || req.request_id.is_some();
        let long = req.is_blocking();
        let read = req.is_read();
        let result = try_in_turn(&gateways, deadline, retry, long, |addr, t| {
            let op = GatewayOp::Relay {
                dc: dc.to_string(),
                http: req.clone(),
                // The gateway answers a little before we give up, with its reason.
                deadline_ms: millis(t.saturating_sub((t / 10).min(Duration::from_millis(300)))),
            };
            let channels = Arc::clone(&self.channels);
            let local = self.datacenter.clone();
            let domain = self.domain.clone();
            async move { ask(&channels, &addr, &local, &domain, &op, t).await }
        })
        .await;
        match result {
            Ok(GatewayReply::Http(resp)) => Ok(resp),
            Ok(GatewayReply::Failed { kind, message }) => Err(match kind {
                GatewayFailure::UnknownDatacenter => RpcError::NoPathToDatacenter(dc.to_string()),
                GatewayFailure::OutcomeUnknown => RpcError::OutcomeUnknown,
                GatewayFailure::Unreachable | GatewayFailure::Refused => {
                    RpcError::DatacenterUnreachable(message)
                }
            }),
            Ok(other) => Err(RpcError::Forward(format!(
                "a gateway answered a relay with {other:?}"
            ))),
            Err(e) if e.maybe_sent && !read => Err(RpcError::OutcomeUnknown),
            Err(e) => Err(RpcError::DatacenterUnreachable(format!(
                "datacenter {dc:?}: no gateway of {:?} answered ({})",
                self.datacenter,
                e.last.unwrap_or_else(|| "no time left".into())
            ))),
        }
    }

    /// Runs `query` in every one of `dcs` at once, under one `budget`: the answer of the
    /// first of `dcs` (their order is the query's failover order) that has instances, chosen
    /// as soon as every earlier one answered without or failed; or how many datacenters
    /// were asked without one. `tried` counts the datacenters up to the one that answered
    /// (Consul's `Failovers`).
    ///
    /// ACLs: `token` (the query's captured token, else the caller's; `""` for none) goes
    /// with each request, so the answering datacenter filters with it as Consul's
    /// `ExecuteRemote` does; and each answer keeps only the instances `keep(node, service)`
    /// allows here, before "has instances" is judged, so a datacenter whose instances are
    /// all hidden counts as one without.
    pub async fn execute_query_elsewhere(
        &self,
        query: &PreparedQuery,
        dcs: &[String],
        limit: usize,
        budget: Duration,
        token: &str,
        keep: impl Fn(&str, &str) -> bool + Sync,
    ) -> Result<RemoteQueryAnswer, u32> {
        let deadline = Instant::now() + budget;
        let definition = PreparedQuery {
            token: String::new(),
            ..query.clone()
        };
        let Ok(body) = serde_json::to_vec(&definition) else {
            return Err(0);
        };
        let ask = |dc: String| {
            let dc_param: String = form_urlencoded::byte_serialize(dc.as_bytes()).collect();
            let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
            if !token.is_empty() {
                headers.push(("x-consul-token".into(), token.to_string()));
            }
            let req = HttpRequest {
                method: "GET".into(),
                uri: format!("{REMOTE_QUERY_PATH}?dc={dc_param}&limit={limit}"),
                headers,
                body: body.clone(),
                request_id: None,
            };
            let keep = &keep;
            async move {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.relay(&dc, req, left).await {
                    Ok(resp) if resp.status == 200 => {
                        let mut answer = serde_json::from_slice::<serde_json::Value>(&resp.body)
                            .map_err(|e| RpcError::Forward(e.to_string()))?;
                        if let Some(nodes) = answer["Nodes"].as_array_mut() {
                            nodes.retain(|e| {
                                let node = e["Node"]["Node"].as_str().unwrap_or_default();
                                let service = e["Service"]["Service"].as_str().unwrap_or_default();
                                keep(node, service)
                            });
                        }
                        Ok(answer)
                    }
                    Ok(resp) => {
                        debug!(dc = %dc, status = resp.status, "prepared query failover: datacenter refused");
                        Err(RpcError::Forward(format!("HTTP {}", resp.status)))
                    }
                    Err(e) => {
                        debug!(dc = %dc, cause = %e, "prepared query failover: datacenter failed");
                        Err(e)
                    }
                }
            }
        };
        let has_nodes =
            |b: &serde_json::Value| b["Nodes"].as_array().is_some_and(|n| !n.is_empty());
        let got = super::fanout::nearest(dcs, deadline, ask, has_nodes).await;
        match got.found {
            Some((datacenter, body)) => Ok(RemoteQueryAnswer {
                tried: dcs
                    .iter()
                    .position(|d| *d == datacenter)
                    .map_or(0, |i| i as u32 + 1),
                datacenter,
                body,
            }),
            None => Err(dcs.len() as u32),
        }
    }

    /// Asks one of this datacenter's gateways to run an operation on the WAN pool.
    async fn on_wan_pool(
        &self,
        op: GatewayOp,
        what: &str,
        timeout: Duration,
    ) -> Result<GatewayReply, RpcError> {
        let deadline = Instant::now() + timeout;
        let got = try_in_turn(&self.gateways(), deadline, true, false, |addr, t| {
            let channels = Arc::clone(&self.channels);
            let local = self.datacenter.clone();
            let domain = self.domain.clone();
            let op = op.clone();
            async move { ask(&channels, &addr, &local, &domain, &op, t).await }
        })
        .await;
        match got {
            Ok(GatewayReply::Failed {
                kind: GatewayFailure::UnknownDatacenter,
                message,
            }) => Err(RpcError::NoPathToDatacenter(message)),
            Ok(GatewayReply::Failed { message, .. }) => Err(RpcError::Rejected(message)),
            Ok(reply) => Ok(reply),
            Err(e) if e.tried == 0 => Err(RpcError::Rejected(format!(
                "{what} runs on the WAN gateways, and datacenter {:?} has none alive",
                self.datacenter
            ))),
            Err(e) => Err(RpcError::Forward(format!(
                "no gateway answered ({what}): {}",
                e.last.unwrap_or_default()
            ))),
        }
    }

    /// Runs a keyring operation on the WAN pool through one of this datacenter's gateways.
    pub async fn wan_keys(&self, op: KeyOp) -> Result<KeyringSummary, RpcError> {
        let op = GatewayOp::WanKeys(op);
        match self
            .on_wan_pool(op, "the WAN keyring", WAN_KEYS_TIMEOUT)
            .await?
        {
            GatewayReply::WanKeys(summary) => Ok(summary),
            other => Err(RpcError::Forward(format!("unexpected reply {other:?}"))),
        }
    }

    /// Removes datacenter `dc` (all of whose gateways are gone) from the WAN pool: the
    /// names of the members removed.
    pub async fn remove_datacenter(&self, dc: &str) -> Result<Vec<String>, RpcError> {
        let op = GatewayOp::RemoveDatacenter { dc: dc.to_string() };
        match self
            .on_wan_pool(op, "removing a datacenter", VIEW_TIMEOUT)
            .await?
        {
            GatewayReply::Removed(names) => {
                self.view.store(None);
                Ok(names)
            }
            other => Err(RpcError::Forward(format!("unexpected reply {other:?}"))),
        }
    }

    /// Alive gateways of every other datacenter, from [`Federation::view`] (empty when no
    /// gateway answered yet).
    pub async fn gateways_alive(&self) -> Vec<(String, usize)> {
        let Some(view) = self.view().await else {
            return Vec::new();
        };
        view.datacenters
            .into_iter()
            .filter(|d| d.name != self.datacenter)
            .map(|d| (d.name, d.gateways_alive))
            .collect()
    }

    /// The federation as a gateway sees it: asked again when the last answer is older than
    /// a second; the last answer (or none) when no gateway answers in time.
    pub async fn view(&self) -> Option<FederationView> {
        if let Some(v) = self.view.load_full()
            && v.0.elapsed() < VIEW_FRESH
        {
            return Some(v.1.clone());
        }
        let deadline = Instant::now() + VIEW_TIMEOUT;
        let got = try_in_turn(&self.gateways(), deadline, true, false, |addr, t| {
            let channels = Arc::clone(&self.channels);
            let local = self.datacenter.clone();
            let domain = self.domain.clone();
            async move {
                match ask(&channels, &addr, &local, &domain, &GatewayOp::Federation, t).await? {
                    GatewayReply::Federation(v) => Ok(v),
                    other => Err(meridian_rpc::TransportError::Protocol(format!(
                        "unexpected reply {other:?}"
                    ))),
                }
            }
        })
        .await;
        match got {
            Ok(v) => {
                self.view.store(Some(Arc::new((Instant::now(), v.clone()))));
                Some(v)
            }
            Err(_) => self.view.load_full().map(|v| v.1.clone()),
        }
    }
}
