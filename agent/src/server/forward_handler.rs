//! The server's side of forwarding: answers what followers and client agents forward
//! (writes to apply on the leader, read indexes, whole HTTP API requests) as a
//! [`meridian_rpc::Handler`] behind the seam's `ForwardEndpoint`. The messages are
//! `cluster::forward`'s; the transport is meridian-rpc's.

use meridian_proto::v1::forward_server::ForwardServer;
use meridian_rpc::frame::{pack, unpack};
use meridian_rpc::{ForwardEndpoint, MAX_MESSAGE};

use super::ServerHandle;
use crate::cluster::forward::{FailKind, HttpRequest, HttpResponse, Op, Reply};
use crate::rpc::RpcError;

/// Answers forwarded requests on a server.
pub struct ForwardHandler {
    server: ServerHandle,
    http: Option<axum::Router>,
}

/// The tonic service for `datacenter`; `http` is the server's API router (for client
/// agents).
pub fn forward_service(
    datacenter: String,
    server: ServerHandle,
    http: Option<axum::Router>,
) -> ForwardServer<ForwardEndpoint<ForwardHandler>> {
    ForwardEndpoint::server(datacenter, ForwardHandler { server, http })
}

#[async_trait::async_trait]
impl meridian_rpc::Handler for ForwardHandler {
    async fn handle(&self, payload: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
        crate::telemetry::incr("consul.rpc.request", &[]);
        let (mut op, body): (Op, Vec<u8>) =
            unpack("forward request", &payload).map_err(tonic::Status::invalid_argument)?;
        if let Op::Http(r) = &mut op {
            r.body = body;
        }
        let reply = self.answer(op).await;
        let reply_body = match &reply {
            Reply::Http(r) => r.body.clone(),
            _ => Vec::new(),
        };
        pack("forward reply", &reply, &reply_body).map_err(tonic::Status::internal)
    }
}

impl ForwardHandler {
    async fn answer(&self, op: Op) -> Reply {
        let failed = |e: RpcError| {
            let kind = match &e {
                RpcError::Rejected(_) => FailKind::Rejected,
                RpcError::NoLeader => FailKind::NoLeader,
                RpcError::OutcomeUnknown => FailKind::Unknown,
                _ => FailKind::Other,
            };
            Reply::Failed {
                kind,
                message: e.to_string(),
            }
        };
        let not_leader = || Reply::Failed {
            kind: FailKind::NotLeader,
            message: String::new(),
        };
        match op {
            Op::Apply(_) | Op::ApplyOnce { .. } if !self.server.raft().is_leader() => not_leader(),
            Op::Apply(cmd) => match self.server.apply_local(cmd, None).await {
                Ok((index, response)) => Reply::Applied { index, response },
                Err(RpcError::Raft(e)) if e.is_not_leader() => not_leader(),
                Err(e) => failed(e),
            },
            Op::ApplyOnce { cmd, id } => match self.server.apply_local(cmd, Some(id)).await {
                Ok((index, response)) => Reply::Applied { index, response },
                Err(RpcError::Raft(e)) if e.is_not_leader() => not_leader(),
                Err(e) => failed(e),
            },
            Op::ReadIndex { consistent } => {
                if !self.server.raft().is_leader() {
                    return not_leader();
                }
                match self.server.leader_read_index(consistent).await {
                    Ok(index) => Reply::ReadIndex { index },
                    Err(e) => failed(e),
                }
            }
            Op::RaftStatus => match self.server.raft().is_initialized().await {
                Ok(initialized) => Reply::RaftStatus { initialized },
                Err(e) => failed(e.into()),
            },
            Op::Http(req) => match &self.http {
                Some(router) => Reply::Http(run_http(router.clone(), req).await),
                None => failed(RpcError::Rejected(
                    "this server does not serve forwarded HTTP requests".into(),
                )),
            },
        }
    }
}

/// Runs `req` through the API router in-process.
async fn run_http(router: axum::Router, req: HttpRequest) -> HttpResponse {
    use tower::ServiceExt;
    let mut builder = axum::http::Request::builder()
        .method(req.method.as_str())
        .uri(req.uri.as_str())
        .extension(crate::cluster::forward::ViaCluster);
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = match builder.body(axum::body::Body::from(req.body)) {
        Ok(r) => r,
        Err(e) => {
            return HttpResponse {
                status: 400,
                headers: Vec::new(),
                body: format!("invalid forwarded request: {e}").into_bytes(),
            };
        }
    };
    let run = router.oneshot(request);
    let id = req
        .request_id
        .and_then(|hex| crate::catalog::RequestId::try_from(hex).ok());
    let resp = match id {
        Some(id) => super::write::with_forwarded_id(id, run).await,
        None => run.await,
    };
    let resp = match resp {
        Ok(r) => r,
        Err(never) => match never {},
    };
    crate::cluster::forward::read_response(resp, MAX_MESSAGE).await
}
