//! The WAN link emulator: delay, jitter, loss and blackholes between datacenters, on real
//! packets, in userspace (this kernel has no `sch_netem`, so `tc qdisc ... netem` fails
//! with "Specified qdisc kind is unknown").
//!
//! ```text
//!  dc1-g1 (10.202.1.1) ──wan1──▶ w1 ┐      namespace <prefix>-wan        ┌ w2 ──wan2──▶ dc2-g1
//!                                   │ ip rule: iif w<d> → table 100     │  (10.202.2.1)
//!                                   ▼ table 100: default dev emu        │
//!                                 TUN emu ──▶ `testbed _wan-emulator` ──▶ TUN emu (written back)
//!                                             hold `delay ± jitter`,      iif emu → main table
//!                                             drop with `loss`,           → out of w2
//!                                             or all (blackhole)
//! ```
//!
//! Gateways route the WAN supernet (10.202.0.0/16) to the router's address on their own
//! access segment. In the router namespace every packet arriving from a DC segment is routed
//! into the TUN device `emu`; the emulator process reads it, picks the link from the
//! addresses (10.202.*a*.x → 10.202.*b*.y is link a–b), drops it or holds it, and writes it
//! back into `emu`, from where the kernel routes it by the main table out of the target
//! DC's segment. UDP, TCP and ICMP all take this path, as IP packets.
//!
//! The parts: `router` makes the namespace and starts the emulator, `emulator` is the
//! process (blocking threads, no runtime), `control` is its Unix-socket protocol and the
//! `testbed wan ...` commands, `echo` the helpers that measure a link from two gateways.

pub mod control;
pub mod echo;
pub mod emulator;
pub mod probe;
pub mod router;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::topology::Topology;

/// The TUN device in the router namespace.
pub const TUN: &str = "emu";
/// The routing table that sends arriving WAN traffic into the TUN device.
pub const ROUTE_TABLE: u32 = 100;
/// The directory (under `hosts/`) of the router's files: links, control socket, log.
pub const ROUTER_DIR: &str = "wan-router";

/// What a link does to each packet, in each direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkParams {
    /// One-way delay in microseconds.
    pub delay_us: u64,
    /// Uniform jitter ± this many microseconds (packets of one direction stay in order).
    pub jitter_us: u64,
    /// Probability of dropping a packet, in percent.
    pub loss_percent: f64,
    /// Drop everything.
    pub blackhole: bool,
}

impl LinkParams {
    /// The parameters a topology gives a link.
    pub fn from_spec(spec: &crate::topology::LinkSpec) -> LinkParams {
        LinkParams {
            delay_us: micros(spec.delay().unwrap_or_default()),
            jitter_us: micros(spec.jitter().unwrap_or_default()),
            loss_percent: spec.loss_percent.unwrap_or(0.0),
            blackhole: false,
        }
    }

    /// `delay 40ms ±5ms, loss 0.5%` or `blackhole`.
    pub fn describe(&self) -> String {
        if self.blackhole {
            return "blackhole (every packet dropped)".into();
        }
        let ms = |us: u64| Duration::from_micros(us).as_secs_f64() * 1000.0;
        let mut s = format!("delay {:.1}ms", ms(self.delay_us));
        if self.jitter_us > 0 {
            s.push_str(&format!(" ±{:.1}ms", ms(self.jitter_us)));
        }
        s.push_str(&format!(", loss {}%", self.loss_percent));
        s
    }
}

/// A duration in whole microseconds (saturating).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One DC pair's link, `a` being the DC with the lower index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WanLink {
    /// One datacenter.
    pub a: String,
    /// The other.
    pub b: String,
    /// `a`'s index (the third octet of its WAN segment).
    pub a_index: u8,
    /// `b`'s index.
    pub b_index: u8,
    /// What the link does now.
    pub params: LinkParams,
}

/// The links file the emulator reads at start and on `reload`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinksFile {
    /// Every pair of DCs with gateways.
    pub links: Vec<WanLink>,
}

/// Every pair of DCs with gateways, with the topology's `wan_link` settings where given
/// (a pair the topology does not name is a plain link: no delay, no loss).
pub fn links_from_topology(topo: &Topology, plan: &Plan) -> Vec<WanLink> {
    let wan_dcs: Vec<_> = plan.dcs.iter().filter(|d| d.wan_bridge.is_some()).collect();
    let mut links = Vec::new();
    for (i, a) in wan_dcs.iter().enumerate() {
        for b in &wan_dcs[i + 1..] {
            links.push(WanLink {
                a: a.name.clone(),
                b: b.name.clone(),
                a_index: a.index,
                b_index: b.index,
                params: topology_params(topo, &a.name, &b.name),
            });
        }
    }
    links
}

/// The topology's parameters for the pair `a`, `b` (given in either order).
pub fn topology_params(topo: &Topology, a: &str, b: &str) -> LinkParams {
    let spec = topo
        .wan_link
        .get(a)
        .and_then(|m| m.get(b))
        .or_else(|| topo.wan_link.get(b).and_then(|m| m.get(a)));
    spec.map(LinkParams::from_spec).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{LinkParams, links_from_topology};
    use crate::plan::Plan;
    use crate::topology::Topology;

    #[test]
    fn every_gateway_dc_pair_gets_a_link_with_the_topology_settings() {
        let text = "[datacenter.dc1]\ngateways = 1\n[datacenter.dc2]\ngateways = 1\n\
                    [datacenter.dc3]\ngateways = 1\n[datacenter.dc4]\n\
                    [wan_link.dc3.dc1]\ndelay = \"40ms\"\njitter = \"5ms\"\nloss_percent = 2.5\n";
        let topo = Topology::from_toml(Path::new("t.toml"), text).expect("topology");
        let plan = Plan::new(&topo, "mtbab12");
        let links = links_from_topology(&topo, &plan);
        let pairs: Vec<(&str, &str)> = links.iter().map(|l| (l.a.as_str(), l.b.as_str())).collect();
        assert_eq!(pairs, [("dc1", "dc2"), ("dc1", "dc3"), ("dc2", "dc3")]);
        assert_eq!(links[0].params, LinkParams::default());
        assert_eq!(
            links[1].params,
            LinkParams {
                delay_us: 40_000,
                jitter_us: 5_000,
                loss_percent: 2.5,
                blackhole: false
            }
        );
        assert_eq!((links[1].a_index, links[1].b_index), (1, 3));
        assert_eq!(links[1].params.describe(), "delay 40.0ms ±5.0ms, loss 2.5%");
    }
}
