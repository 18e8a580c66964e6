//! The gateway protocol, spoken over the same `Forward` service as the server protocol:
//! what a server asks its datacenter's WAN gateways, and what gateways ask each other.
//!
//! ```text
//!  dc1 server ──Relay{dc2, http}──▶ dc1 gateway ──Deliver{http}──▶ dc2 gateway ──Http──▶ dc2 server
//!             ◀────── Http(resp) / Failed{UnknownDatacenter | Unreachable | OutcomeUnknown}
//!  dc1 server ──Federation──▶ dc1 gateway: datacenters by WAN RTT, WAN members, coordinates
//!  dc1 server ──WanKeys(op)──▶ dc1 gateway ──key query over the WAN pool──▶ every gateway
//!  dc1 server ──CatalogCopy{dc2, have_index}──▶ dc1 gateway: its copy of dc2's catalog
//!             ◀────── CatalogCopy{index, age_ms, body unless the caller has that index}
//! ```
//!
//! Every op carries the time left to answer it (`deadline_ms`), so each hop spends only
//! what the caller still has: a dead or slow datacenter costs a bounded wait, never a hang.

use std::collections::BTreeMap;
use std::time::Duration;

use meridian_gossip::{KeyOp, KeyringSummary};
use serde::{Deserialize, Serialize};

use crate::frame::{pack, unpack};
use crate::http::{HttpRequest, HttpResponse};
use crate::{Channels, TransportError};

/// The internal HTTP read a gateway makes of another datacenter's servers to keep its copy
/// of that catalog: a blocking read (`?index=&wait=`) answering the copy body at the
/// catalog's `X-Consul-Index`, or `304 Not Modified` with no body when `wait` passed with
/// no change.
pub const CATALOG_COPY_PATH: &str = "/v1/internal/federation/catalog";

/// A request to a gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum GatewayOp {
    /// From a server of the gateway's own datacenter: run `http` in datacenter `dc`, within
    /// `deadline_ms`.
    Relay {
        /// The target datacenter.
        dc: String,
        /// The request (its body travels raw).
        http: HttpRequest,
        /// Milliseconds left.
        deadline_ms: u64,
    },
    /// From a gateway of another datacenter: run `http` on a server of this one.
    Deliver {
        /// The request (its body travels raw).
        http: HttpRequest,
        /// Milliseconds left.
        deadline_ms: u64,
    },
    /// The federation as this gateway sees it.
    Federation,
    /// A keyring operation on the WAN pool (every datacenter's gateways).
    WanKeys(KeyOp),
    /// Remove a datacenter whose gateways are all gone from the WAN pool.
    RemoveDatacenter {
        /// Its name.
        dc: String,
    },
    /// The gateway's copy of datacenter `dc`'s catalog (kept for outages of `dc`).
    CatalogCopy {
        /// The remote datacenter.
        dc: String,
        /// The index of the copy the caller already holds (0: none): the body is left out
        /// when the gateway's copy has the same index.
        have_index: u64,
    },
}

impl GatewayOp {
    fn body(&self) -> &[u8] {
        match self {
            GatewayOp::Relay { http, .. } | GatewayOp::Deliver { http, .. } => &http.body,
            GatewayOp::Federation
            | GatewayOp::WanKeys(_)
            | GatewayOp::RemoveDatacenter { .. }
            | GatewayOp::CatalogCopy { .. } => &[],
        }
    }
}

/// Why a gateway could not deliver a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GatewayFailure {
    /// No gateway of the WAN pool belongs to that datacenter.
    UnknownDatacenter,
    /// The datacenter is known but nothing there answered in time (nothing was applied, or
    /// it was a read).
    Unreachable,
    /// A write may have been applied there, but no answer came back in time.
    OutcomeUnknown,
    /// The request was refused (wrong datacenter, not from a peer that may send it).
    Refused,
}

/// A gateway's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum GatewayReply {
    /// The remote server's HTTP response (its body travels raw).
    Http(HttpResponse),
    /// The federation.
    Federation(FederationView),
    /// The WAN pool's answers to a keyring operation.
    WanKeys(KeyringSummary),
    /// The WAN members removed with their datacenter.
    Removed(Vec<String>),
    /// A copy of a remote datacenter's catalog (its body travels raw).
    CatalogCopy(CatalogCopyReply),
    /// Not delivered.
    Failed {
        /// Why.
        kind: GatewayFailure,
        /// For people.
        message: String,
    },
}

/// A gateway's copy of a remote datacenter's catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogCopyReply {
    /// The copy's index (the remote catalog's `X-Consul-Index` when it was taken).
    pub index: u64,
    /// Milliseconds since the gateway last heard from that datacenter's catalog.
    pub age_ms: u64,
    /// The copy (`meridian_catalog` copy format), unless the caller already holds `index`.
    pub body: Option<Vec<u8>>,
}

/// The state of a gateway's copy of one remote datacenter's catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyView {
    /// The remote datacenter.
    pub dc: String,
    /// The copy's index (0: none yet).
    pub index: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Milliseconds since the gateway last heard from that datacenter's catalog (`None`:
    /// never).
    pub age_ms: Option<u64>,
    /// Refreshes that brought a new body.
    pub refreshes: u64,
    /// The last failure to refresh, if the last attempt failed.
    pub last_error: Option<String>,
}

/// What a gateway knows of the federation, from the WAN pool.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FederationView {
    /// The answering gateway's datacenter.
    pub local_dc: String,
    /// Every datacenter of the WAN pool (its own included), nearest first.
    pub datacenters: Vec<DatacenterView>,
    /// The WAN pool's members.
    pub members: Vec<WanMember>,
    /// The answering gateway's copies of other datacenters' catalogs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<CopyView>,
}

/// One datacenter of the federation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatacenterView {
    /// Its name.
    pub name: String,
    /// Estimated round trip from the answering gateway (median over that datacenter's
    /// gateways), when coordinates are known.
    pub rtt_ms: Option<f64>,
    /// Gateways alive in the WAN pool.
    pub gateways_alive: usize,
    /// Gateways in the WAN pool, any status.
    pub gateways: usize,
}

/// A member of the WAN pool (`members -wan`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WanMember {
    /// `<node>.<dc>`.
    pub name: String,
    /// Gossip address.
    pub addr: String,
    /// Gossip port.
    pub port: u16,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// serf status (1 alive, 2 leaving, 3 left, 4 failed).
    pub status: u8,
    /// Its WAN network coordinate in Consul's JSON shape, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coord: Option<serde_json::Value>,
}

/// Encodes `op` as a forward payload.
pub fn encode_op(op: &GatewayOp) -> Result<Vec<u8>, String> {
    let header = match op {
        GatewayOp::Relay {
            dc,
            http,
            deadline_ms,
        } => GatewayOp::Relay {
            dc: dc.clone(),
            http: HttpRequest {
                body: Vec::new(),
                ..http.clone()
            },
            deadline_ms: *deadline_ms,
        },
        GatewayOp::Deliver { http, deadline_ms } => GatewayOp::Deliver {
            http: HttpRequest {
                body: Vec::new(),
                ..http.clone()
            },
            deadline_ms: *deadline_ms,
        },
        other => other.clone(),
    };
    pack("gateway request", &header, op.body())
}

/// Decodes a forward payload into an op (body put back).
pub fn decode_op(payload: &[u8]) -> Result<GatewayOp, String> {
    let (mut op, body): (GatewayOp, Vec<u8>) = unpack("gateway request", payload)?;
    match &mut op {
        GatewayOp::Relay { http, .. } | GatewayOp::Deliver { http, .. } => http.body = body,
        GatewayOp::Federation
        | GatewayOp::WanKeys(_)
        | GatewayOp::RemoveDatacenter { .. }
        | GatewayOp::CatalogCopy { .. } => {}
    }
    Ok(op)
}

/// Encodes a reply.
pub fn encode_reply(reply: &GatewayReply) -> Result<Vec<u8>, String> {
    match reply {
        GatewayReply::Http(r) => pack(
            "gateway reply",
            &GatewayReply::Http(HttpResponse {
                body: Vec::new(),
                ..r.clone()
            }),
            &r.body,
        ),
        GatewayReply::CatalogCopy(c) => pack(
            "gateway reply",
            &GatewayReply::CatalogCopy(CatalogCopyReply {
                body: c.body.as_ref().map(|_| Vec::new()),
                ..c.clone()
            }),
            c.body.as_deref().unwrap_or_default(),
        ),
        other => pack("gateway reply", other, &[]),
    }
}

/// Decodes a reply (body put back).
pub fn decode_reply(payload: &[u8]) -> Result<GatewayReply, String> {
    let (mut reply, body): (GatewayReply, Vec<u8>) = unpack("gateway reply", payload)?;
    match &mut reply {
        GatewayReply::Http(r) => r.body = body,
        GatewayReply::CatalogCopy(c) => {
            if let Some(b) = &mut c.body {
                *b = body;
            }
        }
        _ => {}
    }
    Ok(reply)
}

/// The name a gateway of `dc` proves under TLS: `gateway.<dc>.<domain>`, as
/// `meridian tls cert create -gateway` writes it.
pub fn gateway_name(dc: &str, domain: &str) -> String {
    format!(
        "gateway.{dc}.{}",
        domain.trim_matches('.').to_ascii_lowercase()
    )
}

/// The name a server of `dc` proves under TLS: `server.<dc>.<domain>`.
pub fn server_name(dc: &str, domain: &str) -> String {
    format!(
        "server.{dc}.{}",
        domain.trim_matches('.').to_ascii_lowercase()
    )
}

/// Sends `op` to the gateway at `addr` (of datacenter `dc`, proving [`gateway_name`] under
/// TLS), waiting at most `timeout`.
pub async fn ask(
    channels: &Channels,
    addr: &str,
    dc: &str,
    domain: &str,
    op: &GatewayOp,
    timeout: Duration,
) -> Result<GatewayReply, TransportError> {
    let payload = encode_op(op).map_err(TransportError::Protocol)?;
    let name = gateway_name(dc, domain);
    let reply = crate::call_named(channels, addr, &name, dc, payload, timeout).await?;
    decode_reply(&reply).map_err(TransportError::Protocol)
}

/// Milliseconds of `d`, for `deadline_ms`.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_and_replies_round_trip_with_raw_bodies() {
        let http = HttpRequest {
            method: "PUT".into(),
            uri: "/v1/kv/x?dc=dc2".into(),
            headers: vec![("x-consul-token".into(), "t".into())],
            body: b"\x00raw".to_vec(),
            request_id: Some("ab".into()),
        };
        let op = GatewayOp::Relay {
            dc: "dc2".into(),
            http,
            deadline_ms: 5000,
        };
        let GatewayOp::Relay {
            dc,
            http,
            deadline_ms,
        } = decode_op(&encode_op(&op).expect("encode")).expect("decode")
        else {
            panic!("not a relay");
        };
        assert_eq!((dc.as_str(), deadline_ms), ("dc2", 5000));
        assert_eq!(http.body, b"\x00raw");
        assert_eq!(http.request_id.as_deref(), Some("ab"));
        let reply = GatewayReply::Http(HttpResponse {
            status: 200,
            headers: vec![],
            body: b"[]".to_vec(),
        });
        let GatewayReply::Http(r) =
            decode_reply(&encode_reply(&reply).expect("encode")).expect("decode")
        else {
            panic!("not http");
        };
        assert_eq!((r.status, r.body.as_slice()), (200, &b"[]"[..]));
        assert!(decode_op(b"\x00\x00\x00\x01x").is_err());
        for body in [Some(b"{\"x\":1}\n[1]".to_vec()), Some(Vec::new()), None] {
            let reply = GatewayReply::CatalogCopy(CatalogCopyReply {
                index: 9,
                age_ms: 12,
                body: body.clone(),
            });
            let GatewayReply::CatalogCopy(c) =
                decode_reply(&encode_reply(&reply).expect("encode")).expect("decode")
            else {
                panic!("not a copy");
            };
            assert_eq!((c.index, c.age_ms, c.body), (9, 12, body));
        }
    }
}
