//! The ACL primary datacenter in effect, and how it moves at runtime (#17; reference/acl.md
//! §6.6). Each datacenter keeps a raft record `AclPrimary { datacenter, epoch }`; without
//! one the configured `primary_datacenter` is in effect (epoch 0). Records are compared by
//! [`AclPrimary::beats`] (higher epoch; at equal epochs the smaller name), so whatever
//! order they arrive in, every datacenter ends with the same one.
//!
//! - [`PrimaryCell`]: the effective primary, read by every "am I primary / where is it"
//!   question (no raft round trip). [`follow_state`] refreshes it from the applied state.
//! - Promotion (`PUT /v1/operator/federation/primary`, `http/acl_primary.rs`): the
//!   receiving datacenter writes `epoch = effective epoch + 1`, then [`announce`]s the
//!   record to every federated datacenter through the gateways (each keeps the winner).
//! - Datacenters that were unreachable learn it by [`poll`]: every [`POLL_EVERY`] each
//!   leader asks every other datacenter for its record (deadline [`POLL_BUDGET`], open
//!   breakers refuse at once) and applies any that beats its own. Nothing here blocks a
//!   local answer.
//! - Config: on a reload whose `primary_datacenter` differs from the previously loaded
//!   value (and from the effective primary), the agent writes that datacenter with
//!   `epoch + 1`; an unchanged value changes nothing, so a stale config file never undoes
//!   a promotion. At start the record, when there is one, wins over the config (a warning
//!   says so when they differ).
//!
//! ```text
//!  promote ─▶ raft SetPrimary{dc, e+1} ─▶ applied ─▶ follow_state ─▶ PrimaryCell
//!     └─▶ announce: PUT /v1/internal/acl/primary ─▶ every DC (keeps the winner)
//!  poll (leader, every 3 s): GET /v1/internal/acl/primary of every DC ─▶ SetPrimary if it beats
//! ```

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::ServerHandle;
use crate::catalog::Command;
use crate::catalog::acl::{AclPrimary, AclWrite};
use crate::cluster::federation::Federation;
use crate::cluster::forward::HttpRequest;
use crate::rpc::RpcError;

/// Where a server reads (GET) or offers (PUT) the record.
pub const PRIMARY_PATH: &str = "/v1/internal/acl/primary";
/// How often a leader asks the other datacenters for their record.
pub const POLL_EVERY: Duration = Duration::from_secs(3);
/// How long one datacenter may take to answer a poll.
pub const POLL_BUDGET: Duration = Duration::from_secs(2);
/// How long an announcement to one datacenter may take.
pub const ANNOUNCE_BUDGET: Duration = Duration::from_secs(5);

/// The effective ACL primary of this agent: the raft record, else the configured value.
#[derive(Debug)]
pub struct PrimaryCell {
    /// This agent's datacenter.
    datacenter: String,
    /// `primary_datacenter` as last loaded (start or reload).
    configured: Mutex<String>,
    /// The record last seen in the applied state.
    record: Mutex<Option<AclPrimary>>,
    effective: watch::Sender<AclPrimary>,
}

impl PrimaryCell {
    /// A cell for an agent of `datacenter` configured with `configured` as primary.
    pub fn new(datacenter: &str, configured: &str) -> Arc<Self> {
        let (effective, _) = watch::channel(AclPrimary {
            datacenter: configured.to_string(),
            epoch: 0,
        });
        Arc::new(PrimaryCell {
            datacenter: datacenter.to_string(),
            configured: Mutex::new(configured.to_string()),
            record: Mutex::new(None),
            effective,
        })
    }

    /// The primary in effect (with its epoch; 0 = the configured value).
    pub fn get(&self) -> AclPrimary {
        self.effective.borrow().clone()
    }

    /// The primary datacenter in effect.
    pub fn datacenter(&self) -> String {
        self.effective.borrow().datacenter.clone()
    }

    /// Whether this agent's datacenter is the primary in effect.
    pub fn is_me(&self) -> bool {
        self.effective.borrow().datacenter == self.datacenter
    }

    /// This agent's datacenter.
    pub fn local(&self) -> &str {
        &self.datacenter
    }

    /// Changes of the effective primary.
    pub fn subscribe(&self) -> watch::Receiver<AclPrimary> {
        self.effective.subscribe()
    }

    /// Records a newly loaded `primary_datacenter`; true when it differs from the last one.
    pub fn set_configured(&self, dc: &str) -> bool {
        let changed = {
            let mut c = self.configured.lock();
            let changed = *c != dc;
            *c = dc.to_string();
            changed
        };
        self.recompute();
        changed
    }

    /// Takes the applied state's record into account.
    pub fn observe(&self, record: Option<&AclPrimary>) {
        {
            let mut r = self.record.lock();
            if r.as_ref() == record {
                return;
            }
            *r = record.cloned();
        }
        self.recompute();
    }

    fn recompute(&self) {
        let next = self.record.lock().clone().unwrap_or_else(|| AclPrimary {
            datacenter: self.configured.lock().clone(),
            epoch: 0,
        });
        let changed = self.effective.send_if_modified(|cur| {
            let changed = *cur != next;
            *cur = next.clone();
            changed
        });
        if changed {
            info!(primary = %next.datacenter, epoch = next.epoch, "ACL primary datacenter in effect");
        }
    }
}

/// Keeps `cell` in step with the applied state until `cancel`.
pub async fn follow_state(server: ServerHandle, cell: Arc<PrimaryCell>, cancel: CancellationToken) {
    let mut applied = server.applied_rx();
    let configured = cell.configured.lock().clone();
    if let Some(r) = server.raft().state().acl_primary()
        && r.datacenter != configured
    {
        warn!(configured = %configured, primary = %r.datacenter, epoch = r.epoch,
            "primary_datacenter in the config differs from the ACL primary in effect; \
             the record wins (promote-primary or a reload with a changed value moves it)");
    }
    loop {
        cell.observe(server.raft().state().acl_primary());
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = applied.changed() => if r.is_err() { return },
        }
    }
}

/// Writes `dc` as primary with the effective epoch + 1, unless it already is the primary
/// in effect: the record written, or `None` when nothing changed.
pub async fn promote(
    server: &ServerHandle,
    cell: &PrimaryCell,
    dc: &str,
) -> Result<Option<AclPrimary>, RpcError> {
    let held = cell.get();
    if held.datacenter == dc && held.epoch > 0 {
        return Ok(None);
    }
    let record = AclPrimary {
        datacenter: dc.to_string(),
        epoch: held.epoch + 1,
    };
    server
        .apply(Command::Acl(AclWrite::SetPrimary(record.clone())))
        .await?;
    Ok(Some(record))
}

/// What a datacenter said to an announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// It holds the record now.
    Acknowledged,
    /// It answered, and holds another record that beats this one.
    Superseded(AclPrimary),
    /// It was not reached, or refused (the reason).
    Failed(String),
    /// The request may or may not have been applied there.
    Unknown(String),
}

/// Offers `record` to each of `dcs` at once through the gateways, with `token` (the
/// caller's): each one's answer, within [`ANNOUNCE_BUDGET`].
pub async fn announce(
    federation: &Federation,
    record: &AclPrimary,
    token: &str,
    dcs: &[String],
) -> Vec<(String, Ack)> {
    let body = serde_json::to_vec(record).unwrap_or_default();
    let calls = dcs.iter().map(|dc| {
        let req = HttpRequest {
            method: "PUT".into(),
            uri: PRIMARY_PATH.into(),
            headers: vec![("x-consul-token".into(), token.to_string())],
            body: body.clone(),
            request_id: Some(super::write::relay_request_id().to_string()),
        };
        async move {
            let ack = match federation.relay(dc, req, ANNOUNCE_BUDGET).await {
                Ok(resp) if resp.status == 200 => {
                    match serde_json::from_slice::<AclPrimary>(&resp.body) {
                        Ok(held) if &held == record => Ack::Acknowledged,
                        Ok(held) => Ack::Superseded(held),
                        Err(e) => Ack::Unknown(format!("undecodable answer: {e}")),
                    }
                }
                Ok(resp) => Ack::Failed(format!(
                    "HTTP {}: {}",
                    resp.status,
                    String::from_utf8_lossy(&resp.body).trim()
                )),
                Err(e @ RpcError::OutcomeUnknown) => Ack::Unknown(e.to_string()),
                Err(e) => Ack::Failed(e.to_string()),
            };
            (dc.clone(), ack)
        }
    });
    futures::future::join_all(calls).await
}

/// Until `cancel`: while this server leads, every [`POLL_EVERY`], asks every other
/// datacenter the gateways know for its record and applies the best one that beats this
/// datacenter's.
pub async fn poll(server: ServerHandle, federation: Arc<Federation>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !server.raft().is_leader() {
            continue;
        }
        let me = server.me().datacenter.clone();
        let Some(view) = federation.view().await else {
            continue;
        };
        let asks = view
            .datacenters
            .iter()
            .filter(|d| d.name != me)
            .map(|d| ask(&federation, d.name.clone()));
        let answers = futures::future::join_all(asks).await;
        let held = server.raft().state().acl_primary().cloned();
        let best = answers.into_iter().flatten().fold(held.clone(), |best, r| {
            if r.beats(best.as_ref()) {
                Some(r)
            } else {
                best
            }
        });
        if let Some(best) = best
            && best.beats(held.as_ref())
        {
            info!(primary = %best.datacenter, epoch = best.epoch,
                "learned a newer ACL primary from another datacenter");
            let cmd = Command::Acl(AclWrite::SetPrimary(best));
            if let Err(e) = server.apply_local(cmd, None).await {
                warn!(cause = %e, "storing the ACL primary record failed");
            }
        }
    }
}

/// `dc`'s record, if it answers in time with a stored one.
async fn ask(federation: &Federation, dc: String) -> Option<AclPrimary> {
    let req = HttpRequest {
        method: "GET".into(),
        uri: format!("{PRIMARY_PATH}?stale"),
        headers: Vec::new(),
        body: Vec::new(),
        request_id: None,
    };
    match federation.relay_background(&dc, req, POLL_BUDGET).await {
        Ok(resp) if resp.status == 200 => serde_json::from_slice::<AclPrimary>(&resp.body)
            .ok()
            .filter(|r| r.epoch > 0),
        Ok(resp) => {
            debug!(datacenter = %dc, status = resp.status, "ACL primary poll refused");
            None
        }
        Err(e) => {
            debug!(datacenter = %dc, cause = %e, "ACL primary poll failed");
            None
        }
    }
}
