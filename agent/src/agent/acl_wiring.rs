//! The agent's wiring of the movable ACL primary (`server::acl_primary`): a server's
//! replication and polling tasks, and the reload hook that turns a changed
//! `primary_datacenter` into a move.

use std::sync::Arc;

use meridian_config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span};

use crate::cluster::Federation;
use crate::local::reload::ReloadHook;
use crate::server::ServerHandle;
use crate::server::acl_primary::{self, PrimaryCell};
use crate::server::acl_replication::AclReplicator;

/// A reload whose `primary_datacenter` differs from the last one loaded moves the ACL
/// primary there (on a server: the record with the next epoch, unless that datacenter is
/// already the primary in effect); an unchanged value changes nothing (`acl_primary.rs`).
pub(super) fn primary_on_reload(
    cell: Arc<PrimaryCell>,
    server: Option<ServerHandle>,
) -> ReloadHook {
    Box::new(move |cfg: &Config| {
        let (cell, server) = (Arc::clone(&cell), server.clone());
        let dc = cfg.primary_datacenter().to_string();
        let on = cfg.acl.enabled;
        Box::pin(async move {
            if !cell.set_configured(&dc) || !on {
                return Ok(());
            }
            let Some(server) = server else {
                return Ok(());
            };
            match acl_primary::promote(&server, &cell, &dc).await {
                Ok(moved) => {
                    info!(primary = %dc, moved = moved.is_some(), "primary_datacenter changed on reload");
                    Ok(())
                }
                Err(e) => Err(format!("moving the ACL primary to {dc:?}: {e}")),
            }
        })
    })
}

/// A server's ACL federation duties: replication from the primary in effect (under the
/// replication token in effect) and the leader's polling of the other datacenters'
/// primary records.
pub(super) fn spawn_acl_primary(
    server: &ServerHandle,
    acl: &Arc<crate::acl::Resolver>,
    federation: &Arc<Federation>,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> Arc<AclReplicator> {
    let settings = acl.settings();
    let tokens = Arc::clone(acl.tokens());
    let r = AclReplicator::new(
        Arc::clone(&settings.primary),
        Arc::new(move || tokens.replication_token()),
        settings.enable_token_replication,
    );
    let run = Arc::clone(&r).run(server.clone(), Arc::clone(federation), token.clone());
    tracker.spawn(run.instrument(info_span!("acl-replication")));
    tracker.spawn(
        acl_primary::poll(server.clone(), Arc::clone(federation), token.child_token())
            .instrument(info_span!("acl-primary")),
    );
    r
}
