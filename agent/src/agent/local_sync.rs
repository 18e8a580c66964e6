//! Starting what keeps the agent's own services and checks alive: their check runners and
//! anti-entropy, which writes them to the catalog under the agent's ACL tokens
//! (`local::sync`). Wiring only; the behaviour lives in `local/`.

use std::sync::Arc;

use meridian_config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info_span};

use crate::acl::Resolver;
use crate::cluster::RemoteServers;
use crate::local::checks::Runners;
use crate::local::sync::{
    CatalogSync, LocalCatalog, NodeInfo, RemoteCatalog, ResolverAuthorizer, SyncAcl, Syncer,
};
use crate::local::{LocalAgent, LocalState};
use crate::rpc::Router;
use crate::server::{SelfInfo, ServerHandle};

/// Starts the check runners and anti-entropy of `local`; returns the handle the API uses.
#[allow(clippy::too_many_arguments)]
pub(super) fn spawn(
    cfg: &Config,
    me: &SelfInfo,
    local: &Arc<LocalState>,
    server: Option<&ServerHandle>,
    remote: &Arc<RemoteServers>,
    acl: &Arc<Resolver>,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> Arc<LocalAgent> {
    let (catalog, router): (Arc<dyn CatalogSync>, Router) = match server {
        Some(s) => (
            Arc::new(LocalCatalog(s.clone())),
            Router::new(cfg.datacenter.clone(), s.clone()),
        ),
        None => (
            Arc::new(RemoteCatalog(Arc::clone(remote))),
            Router::client(cfg.datacenter.clone(), Arc::clone(remote)),
        ),
    };
    let runners = Arc::new(Runners::new(
        Arc::clone(local),
        tracker.clone(),
        token.child_token(),
    ));
    runners.reconcile();
    tracker.spawn(crate::local::checks::reap_critical(
        Arc::clone(local),
        token.child_token(),
    ));
    let node_info = NodeInfo {
        id: me.node_id.clone(),
        address: me.address.clone(),
        datacenter: cfg.datacenter.clone(),
        meta: cfg.node_meta.clone().into_iter().collect(),
    };
    let sync_acl = SyncAcl {
        tokens: Arc::clone(acl.tokens()),
        authorizer: Arc::new(ResolverAuthorizer {
            resolver: Arc::clone(acl),
            router,
        }),
    };
    let syncer = Arc::new(Syncer::new(catalog, node_info, sync_acl));
    tracker.spawn(
        Arc::clone(&syncer)
            .run(
                Arc::clone(local),
                anti_entropy_interval(cfg),
                token.child_token(),
            )
            .instrument(info_span!("anti-entropy")),
    );
    Arc::new(LocalAgent {
        state: Arc::clone(local),
        runners,
        sync: syncer,
    })
}

/// Consul's anti-entropy base interval (1 min; -dev agents repair drift within 3 s).
fn anti_entropy_interval(cfg: &Config) -> std::time::Duration {
    if cfg.dev_mode {
        std::time::Duration::from_secs(3)
    } else {
        std::time::Duration::from_secs(60)
    }
}
