//! Partitions with nftables: drop rules on the *input* hook inside each host's namespace.
//!
//! Why input-only drops: a packet from A to B leaves A and is dropped silently on arrival
//! at B, as on a real broken network (a drop on output would fail the sender's `send` with
//! EPERM at once, which no real partition does). Dropping on both sides' input cuts both
//! directions.
//!
//! The rules of a host are always rewritten whole from the run state (`desired`) in one
//! nft transaction: the table `inet meridian_testbed` is added, deleted and re-made, so
//! applying twice is the same as once, and `heal` is "apply the empty set everywhere".

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::netns::{NetError, run};
use crate::plan::Plan;
use crate::state::State;

/// The nft table the testbed owns inside each host namespace.
pub const TABLE: &str = "meridian_testbed";

/// An `nft` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FirewallError {
    /// Running `nft` inside a namespace failed.
    #[error("nft rules for {host}: {source}")]
    Apply {
        /// The host.
        host: String,
        /// Why.
        source: NetError,
    },
}

/// For every host, the addresses whose packets it must drop, from the partitions and
/// isolations in `state`.
pub fn desired(state: &State) -> BTreeMap<String, BTreeSet<Ipv4Addr>> {
    let plan = &state.plan;
    let mut drops: BTreeMap<String, BTreeSet<Ipv4Addr>> = plan
        .hosts
        .iter()
        .map(|h| (h.name.clone(), BTreeSet::new()))
        .collect();
    let mut cut = |a: &[String], b: &[String]| {
        for x in a {
            for y in b {
                if x == y {
                    continue;
                }
                if let Some(set) = drops.get_mut(x) {
                    set.extend(addresses(plan, y));
                }
                if let Some(set) = drops.get_mut(y) {
                    set.extend(addresses(plan, x));
                }
            }
        }
    };
    for p in &state.partitions {
        cut(&p.a, &p.b);
    }
    let everyone: Vec<String> = plan.hosts.iter().map(|h| h.name.clone()).collect();
    for host in &state.isolated {
        cut(std::slice::from_ref(host), &everyone);
    }
    drops
}

fn addresses(plan: &Plan, host: &str) -> Vec<Ipv4Addr> {
    plan.host(host)
        .map(|h| std::iter::once(h.lan_ip).chain(h.wan_ip).collect())
        .unwrap_or_default()
}

/// The nft script that makes `host`'s table drop exactly `drops` (or removes it).
pub fn script(drops: &BTreeSet<Ipv4Addr>) -> String {
    // "add" first so that "delete" cannot fail on a host that has no table yet.
    let mut s = format!("add table inet {TABLE}\ndelete table inet {TABLE}\n");
    if !drops.is_empty() {
        let set: Vec<String> = drops.iter().map(Ipv4Addr::to_string).collect();
        s.push_str(&format!(
            "table inet {TABLE} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    ip saddr {{ {} }} drop\n  }}\n}}\n",
            set.join(", ")
        ));
    }
    s
}

/// Rewrites the rules of every host from `state`, in parallel.
pub async fn apply(state: &State) -> Result<(), FirewallError> {
    let mut tasks = tokio::task::JoinSet::new();
    for (host, drops) in desired(state) {
        let Some(ns) = state.plan.host(&host).map(|h| h.netns.clone()) else {
            continue;
        };
        let text = script(&drops);
        tasks.spawn(async move {
            run("ip", &["netns", "exec", &ns, "nft", "-f", "-"], Some(&text))
                .await
                .map_err(|source| FirewallError::Apply { host, source })
        });
    }
    let mut first_err = None;
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::script;

    #[test]
    fn empty_set_only_removes_the_table() {
        let s = script(&BTreeSet::new());
        assert!(s.contains("delete table inet meridian_testbed"));
        assert!(!s.contains("drop"));
    }

    #[test]
    fn drops_listed_sources_on_input() {
        let set: BTreeSet<_> = ["10.201.1.12".parse().expect("ip")].into();
        let s = script(&set);
        assert!(s.contains("hook input"), "{s}");
        assert!(s.contains("ip saddr { 10.201.1.12 } drop"), "{s}");
    }
}
