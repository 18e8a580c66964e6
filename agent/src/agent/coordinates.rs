//! Sends this agent's LAN coordinate to the servers, as Consul's agents do
//! (`sendCoordinate`): every `coordinate_sync_interval(members)` plus a random stagger of up
//! to the same again, so a large pool spreads its updates. A failed send is logged and
//! retried at the next interval; the servers keep the last coordinate they got.

use meridian_config::Config;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use std::sync::Arc;

use crate::catalog::{Command, CoordinateUpdate};
use crate::cluster::RemoteServers;
use crate::cluster::forward::HttpRequest;
use crate::gossip::GossipHandle;
use crate::rpc::RpcError;
use crate::server::ServerHandle;

/// Where coordinates go: this server's raft, or (client agents) a server's API.
pub(super) enum Sink {
    /// A server agent writes through its own server (which forwards to the leader).
    Local(ServerHandle),
    /// A client agent sends `PUT /v1/coordinate/update` to a server.
    Remote(Arc<RemoteServers>),
}

impl Sink {
    async fn send(&self, update: CoordinateUpdate) -> Result<(), RpcError> {
        match self {
            Sink::Local(server) => server
                .apply(Command::CoordinateUpdate(vec![update]))
                .await
                .map(|_| ()),
            Sink::Remote(remote) => {
                let body = serde_json::json!({
                    "Node": update.node, "Segment": update.segment, "Coord": update.coord,
                });
                let resp = remote
                    .http(HttpRequest {
                        method: "PUT".into(),
                        uri: "/v1/coordinate/update".into(),
                        headers: vec![("content-type".into(), "application/json".into())],
                        body: body.to_string().into_bytes(),
                        request_id: None,
                    })
                    .await?;
                if resp.status == 200 {
                    Ok(())
                } else {
                    Err(RpcError::Forward(
                        String::from_utf8_lossy(&resp.body).into(),
                    ))
                }
            }
        }
    }
}

/// Runs until `token` is cancelled.
pub(super) async fn sync(cfg: Config, gossip: GossipHandle, sink: Sink, token: CancellationToken) {
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
        let update = CoordinateUpdate {
            node: cfg.node_name.clone(),
            segment: String::new(),
            coord,
        };
        if let Err(e) = sink.send(update).await {
            debug!(cause = %e, "coordinate update not sent; will retry");
        }
    }
}
