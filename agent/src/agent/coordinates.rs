//! Sends this agent's LAN coordinate to the servers, as Consul's agents do
//! (`sendCoordinate`): every `coordinate_sync_interval(members)` plus a random stagger of up
//! to the same again, so a large pool spreads its updates. A failed send is logged and
//! retried at the next interval; the servers keep the last coordinate they got.

use meridian_config::Config;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::catalog::{Command, CoordinateUpdate};
use crate::gossip::GossipHandle;
use crate::server::ServerHandle;

/// Runs until `token` is cancelled.
pub(super) async fn sync(
    cfg: Config,
    gossip: GossipHandle,
    server: ServerHandle,
    token: CancellationToken,
) {
    loop {
        let interval = cfg.coordinate_sync_interval(gossip.members().len());
        let stagger = interval.mul_f64(rand::random::<f64>());
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(interval + stagger) => {}
        }
        let Some(coord) = gossip.coordinate() else {
            continue;
        };
        let update = Command::CoordinateUpdate(vec![CoordinateUpdate {
            node: cfg.node_name.clone(),
            segment: String::new(),
            coord,
        }]);
        if let Err(e) = server.apply(update).await {
            debug!(cause = %e, "coordinate update not sent; will retry");
        }
    }
}
