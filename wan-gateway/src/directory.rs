//! Who to call: local servers from the LAN pool, and each remote datacenter's gateways from
//! the WAN pool, nearest first by network coordinate; and the federation view servers ask
//! for (datacenters by WAN round trip, WAN members). Pure functions over member lists.

use std::collections::BTreeMap;
use std::time::Duration;

use meridian_gossip::coordinate::Coordinate;
use meridian_gossip::{Member, MemberStatus, Role};
use meridian_rpc::gateway::{DatacenterView, FederationView, WanMember};
use rand::seq::SliceRandom;

/// The RPC addresses of `dc`'s alive servers in the LAN pool, shuffled so load spreads.
pub fn local_servers(members: &[Member], dc: &str) -> Vec<String> {
    let mut out: Vec<String> = members
        .iter()
        .filter(|m| {
            m.status == MemberStatus::Alive
                && m.tags.role() == Some(Role::Server)
                && m.tags.datacenter() == Some(dc)
        })
        .filter_map(|m| m.tags.rpc_addr().map(|a| a.to_string()))
        .collect();
    out.shuffle(&mut rand::rng());
    out
}

/// What the WAN pool says about a datacenter's gateways.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// No gateway of that name was ever seen.
    Unknown,
    /// Known, but none of its gateways is alive.
    Down,
    /// Its alive gateways' WAN RPC addresses, nearest first.
    Via(Vec<String>),
}

/// The gateways of `dc` in the WAN pool, nearest first (by `rtt`, a function of a member
/// name; members without an estimate after those with one, shuffled among themselves).
/// Those within a quarter (plus a millisecond) of the nearest count as equally near and
/// are shuffled, so several gateways of a datacenter share its load.
pub fn route(members: &[Member], dc: &str, rtt: impl Fn(&str) -> Option<Duration>) -> Route {
    let of_dc: Vec<&Member> = members
        .iter()
        .filter(|m| m.tags.role() == Some(Role::Gateway) && m.tags.datacenter() == Some(dc))
        .collect();
    if of_dc.is_empty() {
        return Route::Unknown;
    }
    let mut alive: Vec<(Option<Duration>, String)> = of_dc
        .iter()
        .filter(|m| m.status == MemberStatus::Alive)
        .filter_map(|m| Some((rtt(&m.name), m.tags.rpc_addr()?.to_string())))
        .collect();
    if alive.is_empty() {
        return Route::Down;
    }
    alive.shuffle(&mut rand::rng());
    alive.sort_by_key(|(d, _)| d.unwrap_or(Duration::MAX));
    // Gateways about as near as the nearest share the load: shuffled among themselves.
    if let Some(Some(best)) = alive.first().map(|(d, _)| *d) {
        let near_enough = best + best / 4 + Duration::from_millis(1);
        let n = alive
            .iter()
            .take_while(|(d, _)| d.is_some_and(|d| d <= near_enough))
            .count();
        alive[..n].shuffle(&mut rand::rng());
    }
    Route::Via(alive.into_iter().map(|(_, a)| a).collect())
}

/// The federation as the gateway `me` sees it: every datacenter with its median round
/// trip from `me` (0 for its own), nearest first; and the WAN members.
pub fn federation_view(
    local_dc: &str,
    me: Option<&Coordinate>,
    members: &[Member],
    coordinate_of: impl Fn(&str) -> Option<Coordinate>,
) -> FederationView {
    let mut dcs: BTreeMap<String, (Vec<f64>, usize, usize)> = BTreeMap::new();
    let mut wan = Vec::new();
    for m in members {
        let coord = coordinate_of(&m.name);
        if let Some(dc) = m.tags.datacenter()
            && m.tags.role() == Some(Role::Gateway)
        {
            let e = dcs.entry(dc.to_string()).or_default();
            e.2 += 1;
            if m.status == MemberStatus::Alive {
                e.1 += 1;
                if let (Some(me), Some(c)) = (me, &coord) {
                    e.0.push(me.distance_to(c).as_secs_f64() * 1000.0);
                }
            }
        }
        wan.push(WanMember {
            name: m.name.clone(),
            addr: m.addr.ip().to_string(),
            port: m.addr.port(),
            tags: m.tags.0.clone(),
            status: m.status.as_serf(),
            coord: coord.and_then(|c| serde_json::to_value(c).ok()),
        });
    }
    let mut datacenters: Vec<DatacenterView> = dcs
        .into_iter()
        .map(|(name, (mut rtts, alive, all))| {
            let rtt_ms = if name == local_dc {
                Some(0.0)
            } else {
                median(&mut rtts)
            };
            DatacenterView {
                name,
                rtt_ms,
                gateways_alive: alive,
                gateways: all,
            }
        })
        .collect();
    if !datacenters.iter().any(|d| d.name == local_dc) {
        datacenters.push(DatacenterView {
            name: local_dc.to_string(),
            rtt_ms: Some(0.0),
            gateways_alive: 1,
            gateways: 1,
        });
    }
    datacenters.sort_by(|a, b| {
        let key = |d: &DatacenterView| d.rtt_ms.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
    });
    FederationView {
        local_dc: local_dc.to_string(),
        datacenters,
        members: wan,
        copies: Vec::new(),
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

#[cfg(test)]
mod tests {
    use meridian_gossip::Tags;

    use super::*;

    fn member(name: &str, role: Role, dc: &str, rpc: &str, status: MemberStatus) -> Member {
        Member {
            name: name.into(),
            addr: "10.0.0.1:8302".parse().expect("addr"),
            tags: Tags::new(role, dc).with_rpc_addr(rpc.parse().expect("rpc")),
            status,
            incarnation: 0,
        }
    }

    #[test]
    fn routes_know_unknown_from_down_and_go_nearest_first() {
        let m = vec![
            member(
                "g1.dc2",
                Role::Gateway,
                "dc2",
                "10.2.0.1:8302",
                MemberStatus::Alive,
            ),
            member(
                "g2.dc2",
                Role::Gateway,
                "dc2",
                "10.2.0.2:8302",
                MemberStatus::Alive,
            ),
            member(
                "g3.dc2",
                Role::Gateway,
                "dc2",
                "10.2.0.3:8302",
                MemberStatus::Failed,
            ),
            member(
                "g1.dc3",
                Role::Gateway,
                "dc3",
                "10.3.0.1:8302",
                MemberStatus::Failed,
            ),
        ];
        let rtt = |n: &str| match n {
            "g1.dc2" => Some(Duration::from_millis(40)),
            "g2.dc2" => Some(Duration::from_millis(10)),
            _ => None,
        };
        // Equally near gateways take turns.
        let even = |_: &str| Some(Duration::from_millis(10));
        let firsts: std::collections::BTreeSet<String> = (0..200)
            .filter_map(|_| match route(&m, "dc2", even) {
                Route::Via(v) => v.first().cloned(),
                _ => None,
            })
            .collect();
        assert_eq!(firsts.len(), 2, "{firsts:?}");
        assert_eq!(
            route(&m, "dc2", rtt),
            Route::Via(vec!["10.2.0.2:8302".into(), "10.2.0.1:8302".into()])
        );
        assert_eq!(route(&m, "dc3", rtt), Route::Down);
        assert_eq!(route(&m, "dc9", rtt), Route::Unknown);
    }

    #[test]
    fn local_servers_are_the_alive_servers_of_the_dc() {
        let m = vec![
            member(
                "s1",
                Role::Server,
                "dc1",
                "10.0.0.1:8300",
                MemberStatus::Alive,
            ),
            member(
                "s2",
                Role::Server,
                "dc1",
                "10.0.0.2:8300",
                MemberStatus::Failed,
            ),
            member(
                "c1",
                Role::Client,
                "dc1",
                "10.0.0.3:8300",
                MemberStatus::Alive,
            ),
            member(
                "x",
                Role::Server,
                "dc2",
                "10.0.0.4:8300",
                MemberStatus::Alive,
            ),
        ];
        assert_eq!(local_servers(&m, "dc1"), ["10.0.0.1:8300"]);
    }

    #[test]
    fn the_view_puts_the_local_dc_first_and_unmeasured_ones_last() {
        let m = vec![
            member(
                "g1.dc1",
                Role::Gateway,
                "dc1",
                "10.1.0.1:8302",
                MemberStatus::Alive,
            ),
            member(
                "g1.dc2",
                Role::Gateway,
                "dc2",
                "10.2.0.1:8302",
                MemberStatus::Alive,
            ),
            member(
                "g1.dc3",
                Role::Gateway,
                "dc3",
                "10.3.0.1:8302",
                MemberStatus::Failed,
            ),
        ];
        let view = federation_view("dc1", None, &m, |_| None);
        let names: Vec<&str> = view.datacenters.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["dc1", "dc2", "dc3"]);
        assert_eq!(view.datacenters[2].gateways_alive, 0);
        assert_eq!(view.members.len(), 3);
    }
}
