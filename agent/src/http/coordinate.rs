//! `/v1/coordinate/{nodes,node/:node,update}`: LAN network coordinates as the servers store
//! them (consul.md §1.11, §2.8), blocking on the coordinates table; and
//! `/v1/coordinate/datacenters`, each datacenter's servers (here) or WAN gateways (others)
//! with their coordinates.
//!
//! ACLs (reference/acl.md §5.3 row Coordinate): `datacenters` needs nothing; `nodes` and
//! `node/:n` keep the coordinates of nodes the token may read (`acl_filter_catalog.rs`);
//! `update` needs node:write on the node.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, put};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_filter_catalog::{self as acl_filter, Readable};
use super::acl_filter_kv::mark_filtered;
use super::error::ApiError;
use super::params::Params;
use super::read::{self, json_body};
use crate::catalog::{Command, CoordinateUpdate, State as Catalog};
use crate::gossip::coordinate::{Coordinate, VivaldiConfig};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/coordinate/nodes", get(nodes))
        .route("/v1/coordinate/node/{node}", get(node))
        .route("/v1/coordinate/update", put(update))
        .route("/v1/coordinate/datacenters", get(datacenters))
}

/// One datacenter of `/v1/coordinate/datacenters` (Consul's `structs.DatacenterMap`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DatacenterMap {
    datacenter: String,
    #[serde(rename = "AreaID")]
    area_id: &'static str,
    coordinates: Vec<ServerCoord>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServerCoord {
    node: String,
    coord: Coordinate,
}

/// Consul lists the servers of every datacenter in its WAN pool (area `wan`) with their WAN
/// coordinates, node names stripped of their `.<dc>` suffix (`Coordinate.ListDatacenters`).
/// Meridian's WAN pool is its gateways', so each datacenter lists its gateways with their
/// WAN coordinates, nearest datacenter first. A datacenter without gateways (a single one)
/// lists its raft servers with their current LAN coordinates (gossip's latest, else the
/// catalog's), whose names are catalog node names, so `/v1/coordinate/update` and
/// `/v1/coordinate/node` work with them as with Consul's.
async fn datacenters(State(st): State<ApiState>) -> Result<Response, ApiError> {
    let server = st.router.server(None)?;
    let state = server.raft().state();
    let cfg = server.raft().configuration();
    let names = cfg.voters.iter().chain(&cfg.learners).map(|(_, n)| &n.name);
    let local: Vec<ServerCoord> = names
        .filter_map(|name| {
            let coord = st
                .gossip
                .coordinate_of(name)
                .or_else(|| state.coordinate(name).cloned())?;
            Some(ServerCoord {
                node: name.clone(),
                coord,
            })
        })
        .collect();
    let local_dc = st.router.local_dc().to_string();
    let view = match st.router.federation() {
        Some(f) => f.view().await,
        None => None,
    };
    let Some(view) = view else {
        return Ok(json_body(&[DatacenterMap {
            datacenter: local_dc,
            area_id: "wan",
            coordinates: local,
        }]));
    };
    let mut local = Some(local);
    let maps: Vec<DatacenterMap> = view
        .datacenters
        .iter()
        .map(|d| {
            let suffix = format!(".{}", d.name);
            let wan: Vec<ServerCoord> = view
                .members
                .iter()
                .filter(|m| m.tags.get("dc") == Some(&d.name))
                .filter_map(|m| {
                    let coord = serde_json::from_value(m.coord.clone()?).ok()?;
                    let node = m.name.strip_suffix(&suffix).unwrap_or(&m.name);
                    Some(ServerCoord {
                        node: node.to_string(),
                        coord,
                    })
                })
                .collect();
            // WAN coordinates only compare with WAN ones: the local servers' LAN ones are
            // the answer only where this datacenter has no gateway coordinate yet.
            let coordinates = if d.name == local_dc && wan.is_empty() {
                local.take().unwrap_or_default()
            } else {
                wan
            };
            DatacenterMap {
                datacenter: d.name.clone(),
                area_id: "wan",
                coordinates,
            }
        })
        .collect();
    Ok(json_body(&maps))
}

/// One row, Consul's shape.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    node: String,
    segment: String,
    coord: Coordinate,
}

impl Readable for Row {
    fn readable(&self, authz: &Authz) -> bool {
        acl_filter::node_readable(authz, &self.node)
    }
}

fn rows(s: &Catalog, only: Option<&str>) -> (u64, Vec<Row>) {
    let rows = s
        .coordinates()
        .filter(|(n, _, _)| only.is_none_or(|o| o == *n))
        .map(|(n, seg, c)| Row {
            node: n.to_string(),
            segment: seg.to_string(),
            coord: c.clone(),
        })
        .collect();
    (s.table_indexes().coordinates, rows)
}

async fn nodes(State(st): State<ApiState>, authz: Authz, p: Params) -> Result<Response, ApiError> {
    let no_index = None::<fn(&Catalog) -> u64>;
    read::list_readable(&st, &p, &authz, no_index, |s| rows(s, None)).await
}

/// 404 when the node has no coordinate, as Consul, or the token may not read the node.
async fn node(
    State(st): State<ApiState>,
    authz: Authz,
    Path(node): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let opts = p.read_opts()?;
    let server = st.router.server(opts.dc.as_deref())?;
    let (meta, (rows, pruned)) = read::blocking(server, &opts, |s| {
        let (index, rows) = rows(s, Some(&node));
        (index, acl_filter::prune(&authz, rows))
    })
    .await?;
    let resp = if rows.is_empty() {
        meta.not_found()
    } else {
        meta.json(&rows)
    };
    Ok(mark_filtered(&authz, pruned, resp))
}

/// `{"Node", "Segment", "Coord": {"Vec", "Error", "Adjustment", "Height"}}`, keys folded.
#[derive(Deserialize)]
struct UpdateBody {
    #[serde(default)]
    node: String,
    #[serde(default)]
    segment: String,
    coord: Option<CoordBody>,
}

#[derive(Deserialize)]
struct CoordBody {
    vec: Vec<f64>,
    #[serde(default)]
    error: f64,
    #[serde(default)]
    adjustment: f64,
    #[serde(default)]
    height: f64,
}

/// A `/v1/coordinate/update` body as the update to propose; the coordinate must be valid
/// for the default Vivaldi settings.
pub(super) fn decode_update(body: &[u8]) -> Result<CoordinateUpdate, ApiError> {
    let b: UpdateBody = super::body::decode(body, false)?;
    if b.node.is_empty() {
        return Err(ApiError::bad_request("field \"Node\" is required"));
    }
    let c = b
        .coord
        .ok_or_else(|| ApiError::bad_request("field \"Coord\" is required"))?;
    let coord = Coordinate {
        vec: c.vec,
        error: c.error,
        adjustment: c.adjustment,
        height: c.height,
    };
    let cfg = VivaldiConfig::default();
    if !coord.is_valid(&cfg) {
        return Err(ApiError::bad_request(format!(
            "field \"Coord\": invalid coordinate (needs {} finite dimensions in Vec and finite Error, Adjustment, Height)",
            cfg.dimensionality
        )));
    }
    Ok(CoordinateUpdate {
        node: b.node,
        segment: b.segment,
        coord,
    })
}

async fn update(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let update = decode_update(&body)?;
    authz.check(
        meridian_acl::Resource::Node,
        &update.node,
        meridian_acl::Need::Write,
    )?;
    let server = st.router.server(p.dc())?;
    server
        .apply(Command::CoordinateUpdate(vec![update]))
        .await?;
    Ok(json_body(&true))
}
