//! The plan: every host a topology makes, with its namespace, role and addresses. Pure: no
//! I/O, so `up`, `status` and the faults all agree on names and addresses.
//!
//! ```text
//!   namespace <prefix>-sw           one per run: the "switches"
//!     bridge lan1 (dc1's LAN)  bridge lan2 (dc2's LAN)  ...  bridge wan1  bridge wan2  ...
//!       │ veth                      │ veth                      │ veth (dc1's gateways + router)
//!   namespace <prefix>-dc1-s1  (eth0 10.201.1.11/24)
//!   namespace <prefix>-dc1-g1  (eth0 10.201.1.201/24, eth1 10.202.1.1/24,
//!                               route 10.202.0.0/16 via 10.202.1.254)
//!   namespace <prefix>-wan     the WAN router: w1 10.202.1.254/24, w2 10.202.2.254/24, ...
//!                               and the TUN device `emu` read by the link emulator
//! ```
//!
//! DC `d` (1-based, in name order) has LAN 10.201.d.0/24: servers at .11–.19, clients at
//! .101–.199, gateways at .201–.209. A DC with gateways also has a WAN access segment
//! 10.202.d.0/24 (bridge `wan<d>`): its gateways at 10.202.d.i, the WAN router at
//! 10.202.d.254. Traffic between two DCs' gateways crosses the router, where the link
//! emulator (`wan`) delays and drops it. Hosts get no default route and only the router
//! forwards, so a DC can reach another only through its gateways. Every interface lives
//! inside this run's namespaces; the root namespace is never touched, so deleting the
//! namespaces removes every link too. These ranges never leave the namespaces.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::topology::Topology;

/// The namespace that holds this run's bridges.
pub const SWITCH_SUFFIX: &str = "sw";
/// The namespace of the WAN router (and the link emulator).
pub const WAN_ROUTER_SUFFIX: &str = "wan";
/// Prefix length of each DC LAN.
pub const LAN_PREFIX_LEN: u8 = 24;
/// Prefix length of each DC's WAN access segment.
pub const WAN_PREFIX_LEN: u8 = 24;
/// Every WAN address (all DCs' access segments): gateways route it via the WAN router.
pub const WAN_SUPERNET: &str = "10.202.0.0/16";
/// Last octet of the WAN router's address on each access segment.
pub const WAN_ROUTER_OCTET: u8 = 254;

/// What a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A `meridian agent -server`.
    Server,
    /// A `meridian agent` client.
    Client,
    /// A WAN gateway (`meridian-gateway`, when one is configured).
    Gateway,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Server => "server",
            Role::Client => "client",
            Role::Gateway => "gateway",
        })
    }
}

/// One datacenter's LAN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DcPlan {
    /// The datacenter's name.
    pub name: String,
    /// 1-based index: the third octet of its LAN.
    pub index: u8,
    /// The LAN bridge's name in the switch namespace.
    pub bridge: String,
    /// The WAN access bridge (`wan<index>`), for a DC with gateways.
    #[serde(default)]
    pub wan_bridge: Option<String>,
}

/// The WAN router's leg on one DC's WAN access segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WanPort {
    /// The datacenter.
    pub dc: String,
    /// Its index (third octet).
    pub index: u8,
    /// The access bridge in the switch namespace.
    pub bridge: String,
    /// The switch-side name of the veth pair.
    pub switch_port: String,
    /// The interface name inside the router namespace (`w<index>`).
    pub ifname: String,
    /// The router's address on the segment (10.202.index.254): the gateways' next hop.
    pub ip: Ipv4Addr,
}

/// The WAN router: one namespace with a leg on every DC's access segment; the link
/// emulator runs in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WanRouterPlan {
    /// Its namespace.
    pub netns: String,
    /// One leg per DC with gateways, in DC order.
    pub ports: Vec<WanPort>,
}

/// One host: a network namespace with one agent (or gateway) in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostPlan {
    /// Host and node name, `<dc>-s1`, `<dc>-c1`, `<dc>-g1`.
    pub name: String,
    /// Its datacenter.
    pub dc: String,
    /// What it runs.
    pub role: Role,
    /// Its network namespace.
    pub netns: String,
    /// Its LAN address (on `eth0`).
    pub lan_ip: Ipv4Addr,
    /// Its WAN address (on `eth1`), gateways only.
    pub wan_ip: Option<Ipv4Addr>,
    /// The switch-side names of its veth pairs (LAN, then WAN).
    pub switch_ports: Vec<String>,
}

/// Every namespace, bridge and host of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// `mtb<runid>`: every namespace of this run starts with it and a `-`.
    pub prefix: String,
    /// The namespace holding the bridges.
    pub switch_netns: String,
    /// Datacenters in index order.
    pub dcs: Vec<DcPlan>,
    /// Hosts, DC by DC: servers, clients, gateways.
    pub hosts: Vec<HostPlan>,
    /// The WAN router, when at least one DC has gateways.
    #[serde(default)]
    pub wan_router: Option<WanRouterPlan>,
}

impl Plan {
    /// Lays out `topo` under `prefix`.
    pub fn new(topo: &Topology, prefix: &str) -> Plan {
        let mut dcs = Vec::new();
        let mut hosts = Vec::new();
        let mut port = 0usize;
        // Validation caps the DC count far below 255, so the index fits in an octet.
        for (i, (name, spec)) in topo.datacenter.iter().enumerate() {
            let index = u8::try_from(i + 1).unwrap_or(u8::MAX);
            dcs.push(DcPlan {
                name: name.clone(),
                index,
                bridge: format!("lan{index}"),
                wan_bridge: (spec.gateways > 0).then(|| format!("wan{index}")),
            });
            let roles = [
                (Role::Server, 's', spec.servers, 10u32),
                (Role::Client, 'c', spec.clients, 100),
                (Role::Gateway, 'g', spec.gateways, 200),
            ];
            for (role, letter, count, base) in roles {
                for n in 1..=count {
                    let host = format!("{name}-{letter}{n}");
                    let octet = u8::try_from(base + n).unwrap_or(u8::MAX);
                    let mut switch_ports = vec![format!("p{port}")];
                    port += 1;
                    let wan_ip = (role == Role::Gateway).then(|| {
                        switch_ports.push(format!("p{port}"));
                        port += 1;
                        Ipv4Addr::new(10, 202, index, u8::try_from(n).unwrap_or(u8::MAX))
                    });
                    hosts.push(HostPlan {
                        netns: format!("{prefix}-{host}"),
                        name: host,
                        dc: name.clone(),
                        role,
                        lan_ip: Ipv4Addr::new(10, 201, index, octet),
                        wan_ip,
                        switch_ports,
                    });
                }
            }
        }
        let ports: Vec<WanPort> = dcs
            .iter()
            .filter_map(|d| {
                Some(WanPort {
                    dc: d.name.clone(),
                    index: d.index,
                    bridge: d.wan_bridge.clone()?,
                    switch_port: format!("r{}", d.index),
                    ifname: format!("w{}", d.index),
                    ip: Ipv4Addr::new(10, 202, d.index, WAN_ROUTER_OCTET),
                })
            })
            .collect();
        let wan_router = (!ports.is_empty()).then(|| WanRouterPlan {
            netns: format!("{prefix}-{WAN_ROUTER_SUFFIX}"),
            ports,
        });
        Plan {
            prefix: prefix.to_string(),
            switch_netns: format!("{prefix}-{SWITCH_SUFFIX}"),
            dcs,
            hosts,
            wan_router,
        }
    }

    /// Every namespace of this plan, the switch first, the WAN router last.
    pub fn namespaces(&self) -> Vec<String> {
        std::iter::once(self.switch_netns.clone())
            .chain(self.hosts.iter().map(|h| h.netns.clone()))
            .chain(self.wan_router.iter().map(|r| r.netns.clone()))
            .collect()
    }

    /// The WAN router's address on `dc`'s access segment (the gateways' next hop).
    pub fn wan_next_hop(&self, dc: &str) -> Option<Ipv4Addr> {
        let router = self.wan_router.as_ref()?;
        router.ports.iter().find(|p| p.dc == dc).map(|p| p.ip)
    }

    /// The datacenter whose index is `index`.
    pub fn dc_by_index(&self, index: u8) -> Option<&DcPlan> {
        self.dcs.iter().find(|d| d.index == index)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&HostPlan> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The datacenter named `name`.
    pub fn dc(&self, name: &str) -> Option<&DcPlan> {
        self.dcs.iter().find(|d| d.name == name)
    }

    /// The servers of datacenter `dc`.
    pub fn servers_of<'a>(&'a self, dc: &'a str) -> impl Iterator<Item = &'a HostPlan> + 'a {
        self.hosts
            .iter()
            .filter(move |h| h.dc == dc && h.role == Role::Server)
    }

    /// Adds one more client to datacenter `dc` (the next free number and address, a new
    /// switch port) and returns it; `None` when the DC is unknown or has no free client
    /// address left.
    pub fn add_client(&mut self, dc: &str) -> Option<HostPlan> {
        let index = self.dc(dc)?.index;
        let number = |h: &HostPlan, letter: char| {
            h.name
                .strip_prefix(&format!("{dc}-{letter}"))
                .and_then(|n| n.parse::<u32>().ok())
        };
        let n = self
            .hosts
            .iter()
            .filter(|h| h.dc == dc && h.role == Role::Client)
            .filter_map(|h| number(h, 'c'))
            .max()
            .unwrap_or(0)
            + 1;
        let octet = u8::try_from(100 + n).ok().filter(|o| *o <= 199)?;
        let port = self
            .hosts
            .iter()
            .flat_map(|h| &h.switch_ports)
            .filter_map(|p| p.strip_prefix('p').and_then(|n| n.parse::<usize>().ok()))
            .max()
            .map_or(0, |m| m + 1);
        let name = format!("{dc}-c{n}");
        let host = HostPlan {
            netns: format!("{}-{name}", self.prefix),
            name,
            dc: dc.to_string(),
            role: Role::Client,
            lan_ip: Ipv4Addr::new(10, 201, index, octet),
            wan_ip: None,
            switch_ports: vec![format!("p{port}")],
        };
        // After the DC's last client, so hosts stay grouped by DC and role.
        let at = self
            .hosts
            .iter()
            .rposition(|h| h.dc == dc && h.role != Role::Gateway)
            .map_or(self.hosts.len(), |i| i + 1);
        self.hosts.insert(at, host.clone());
        Some(host)
    }

    /// Removes host `name` from the plan.
    pub fn remove_host(&mut self, name: &str) {
        self.hosts.retain(|h| h.name != name);
    }

    /// The host whose LAN address is `ip` (e.g. to name a leader from its RPC address).
    pub fn host_by_ip(&self, ip: Ipv4Addr) -> Option<&HostPlan> {
        self.hosts.iter().find(|h| h.lan_ip == ip)
    }

    /// Hosts named by `spec`: a comma list of host names and DC names (a DC means all of
    /// its hosts). Unknown names are returned as the error.
    pub fn select(&self, spec: &str) -> Result<Vec<&HostPlan>, String> {
        let mut out: Vec<&HostPlan> = Vec::new();
        for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let found: Vec<&HostPlan> = match self.host(name) {
                Some(h) => vec![h],
                None if self.dc(name).is_some() => {
                    self.hosts.iter().filter(|h| h.dc == name).collect()
                }
                None => return Err(name.to_string()),
            };
            for h in found {
                if !out.iter().any(|o| o.name == h.name) {
                    out.push(h);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Plan, Role};
    use crate::topology::Topology;

    fn plan(text: &str) -> Plan {
        let topo = Topology::from_toml(Path::new("t.toml"), text).expect("topology");
        Plan::new(&topo, "mtbab12")
    }

    #[test]
    fn lays_out_hosts_addresses_and_namespaces() {
        let p =
            plan("[datacenter.dc1]\nclients = 1\ngateways = 1\n[datacenter.dc2]\nservers = 1\n");
        let names: Vec<&str> = p.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            ["dc1-s1", "dc1-s2", "dc1-s3", "dc1-c1", "dc1-g1", "dc2-s1"]
        );
        let g = p.host("dc1-g1").expect("gateway");
        assert_eq!(g.role, Role::Gateway);
        assert_eq!(g.lan_ip.to_string(), "10.201.1.201");
        assert_eq!(
            g.wan_ip.map(|i| i.to_string()).as_deref(),
            Some("10.202.1.1")
        );
        assert_eq!(g.switch_ports.len(), 2);
        assert_eq!(
            p.host("dc2-s1").map(|h| h.lan_ip.to_string()).as_deref(),
            Some("10.201.2.11")
        );
        assert_eq!(
            p.host("dc1-c1").map(|h| h.netns.as_str()),
            Some("mtbab12-dc1-c1")
        );
        assert_eq!(p.namespaces()[0], "mtbab12-sw");
        assert_eq!(
            p.namespaces().last().map(String::as_str),
            Some("mtbab12-wan")
        );
        let router = p.wan_router.as_ref().expect("a DC has gateways");
        assert_eq!(router.ports.len(), 1, "only dc1 has gateways");
        assert_eq!(router.ports[0].ip.to_string(), "10.202.1.254");
        assert_eq!(router.ports[0].bridge, "wan1");
        assert_eq!(
            p.wan_next_hop("dc1").map(|i| i.to_string()).as_deref(),
            Some("10.202.1.254")
        );
        assert_eq!(p.wan_next_hop("dc2"), None);
        let ports: std::collections::BTreeSet<_> = p
            .hosts
            .iter()
            .flat_map(|h| h.switch_ports.clone())
            .collect();
        assert_eq!(ports.len(), 7, "switch ports are unique");
        assert!(ports.iter().all(|p| p.len() <= 15));
    }

    #[test]
    fn adds_a_client_after_the_last_with_fresh_address_and_port() {
        let mut p =
            plan("[datacenter.dc1]\nclients = 1\ngateways = 1\n[datacenter.dc2]\nservers = 1\n");
        let c = p.add_client("dc1").expect("room for a client");
        assert_eq!(c.name, "dc1-c2");
        assert_eq!(c.lan_ip.to_string(), "10.201.1.102");
        assert_eq!(c.netns, "mtbab12-dc1-c2");
        assert_eq!(c.switch_ports, ["p7"], "after p0..p6");
        let names: Vec<&str> = p.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dc1-s1", "dc1-s2", "dc1-s3", "dc1-c1", "dc1-c2", "dc1-g1", "dc2-s1"
            ]
        );
        assert_eq!(p.add_client("dc9"), None);
        p.remove_host("dc1-c2");
        assert!(p.host("dc1-c2").is_none());
    }

    #[test]
    fn selects_hosts_and_datacenters() {
        let p = plan("[datacenter.dc1]\nclients = 1\n[datacenter.dc2]\nservers = 1\n");
        assert!(p.wan_router.is_none(), "no gateways, no WAN router");
        let sel = p.select("dc1-s1,dc2").expect("known names");
        let names: Vec<&str> = sel.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["dc1-s1", "dc2-s1"]);
        assert_eq!(p.select("dc1-s9").err().as_deref(), Some("dc1-s9"));
    }
}
