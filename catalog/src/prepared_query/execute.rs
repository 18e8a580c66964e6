//! Executing a resolved prepared query against a state snapshot (Consul's
//! `PreparedQuery.Execute`): health filter, metadata and tag filters, a seeded shuffle, the
//! RTT sort for `Near`, then the limit. No I/O here; the shuffle seed comes from the caller
//! so a test (or a replay) gets the same order.

use std::collections::HashSet;
use std::time::Duration;

use super::PreparedQuery;
use crate::{HealthEntry, HealthStatus, State};

/// How many leading results Consul searches for the `Near` node to move it first.
const NEAR_SELF_SEARCH_DEPTH: usize = 10;

/// The context of one execution.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecuteRequest<'a> {
    /// The datacenter answering (reported as `Datacenter`).
    pub datacenter: &'a str,
    /// The node of the agent that received the request: what `_agent` means.
    pub agent_node: &'a str,
    /// A caller-chosen sort origin (`?near=`); overrides the query's `Service.Near`.
    /// `_agent` is [`Self::agent_node`]; `_ip` (and any node without a coordinate) leaves
    /// the shuffled order.
    pub near: Option<&'a str>,
    /// At most this many nodes (0 = all).
    pub limit: usize,
    /// Seed of the shuffle that spreads load between instances.
    pub shuffle_seed: u64,
}

/// What an execution returns (Consul's `PreparedQueryExecuteResponse`).
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    /// The service name that was looked up (after interpolation).
    pub service: String,
    /// Healthy, filtered instances in answer order.
    pub nodes: Vec<HealthEntry>,
    /// The query's `DNS.TTL` as given ("" if unset), echoed in the HTTP response.
    pub dns_ttl_raw: String,
    /// The parsed `DNS.TTL` (`None` = use the agent's DNS default).
    pub dns_ttl: Option<Duration>,
    /// The datacenter that answered.
    pub datacenter: String,
    /// How many other datacenters were tried (0 until federation exists).
    pub failovers: u32,
}

/// Runs resolved query `q` (see [`State::resolve_query`]) on `state`.
///
/// Consul's semantics: an instance with any critical (or maintenance) check is dropped, and
/// with `OnlyPassing` any non-passing one, except checks listed in `IgnoreCheckIDs`;
/// `NodeMeta`/`ServiceMeta` must match exactly; `Tags` are required case-insensitively and
/// `!tag` excludes. The survivors are shuffled with `shuffle_seed`, then sorted by
/// estimated RTT from the near node (nodes without a coordinate last; the near node itself
/// first), then cut to `limit`. `Connect` queries answer nothing (no Connect proxies yet).
pub fn execute_query(state: &State, q: &PreparedQuery, req: &ExecuteRequest<'_>) -> QueryResult {
    let svc = &q.service;
    let mut nodes: Vec<HealthEntry> = if svc.connect {
        Vec::new()
    } else {
        state.health_entries(&svc.service)
    };
    let ignored: HashSet<&str> = svc.ignore_check_ids.iter().map(String::as_str).collect();
    nodes.retain(|e| healthy(e, svc.only_passing, &ignored));
    nodes.retain(|e| meta_matches(&e.node.meta, &svc.node_meta));
    nodes.retain(|e| meta_matches(&e.service.meta, &svc.service_meta));
    let tags = TagFilter::new(&svc.tags);
    nodes.retain(|e| tags.matches(&e.service.tags));
    shuffle(&mut nodes, req.shuffle_seed);
    if let Some(near) = source_node(q, req) {
        sort_near(state, &mut nodes, near);
    }
    if req.limit > 0 {
        nodes.truncate(req.limit);
    }
    QueryResult {
        service: svc.service.clone(),
        nodes,
        dns_ttl_raw: q.dns.ttl.clone(),
        dns_ttl: meridian_config::duration::parse_go_duration(&q.dns.ttl).ok(),
        datacenter: req.datacenter.to_string(),
        failovers: 0,
    }
}

/// The node to sort by: the caller's choice, else the query's; `_agent` is the receiving
/// agent, `_ip` is not supported (no client address here) and means no sort.
fn source_node<'a>(q: &'a PreparedQuery, req: &ExecuteRequest<'a>) -> Option<&'a str> {
    let near = req
        .near
        .filter(|n| !n.is_empty())
        .or_else(|| Some(q.service.near.as_str()).filter(|n| !n.is_empty()))?;
    match near {
        "_agent" => Some(req.agent_node).filter(|n| !n.is_empty()),
        "_ip" => None,
        node => Some(node),
    }
}

/// Consul's `FilterIgnore`: critical always fails, warning fails with `only_passing`.
fn healthy(e: &HealthEntry, only_passing: bool, ignored: &HashSet<&str>) -> bool {
    e.checks
        .iter()
        .filter(|c| !ignored.contains(c.check_id.as_str()))
        .all(|c| match c.status {
            HealthStatus::Passing => true,
            HealthStatus::Warning => !only_passing,
            HealthStatus::Critical | HealthStatus::Maintenance => false,
        })
}

fn meta_matches(
    have: &std::collections::BTreeMap<String, String>,
    want: &std::collections::BTreeMap<String, String>,
) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// Required and excluded tags, lowercased (Consul's `tagFilter`).
struct TagFilter {
    must: Vec<String>,
    not: Vec<String>,
}

impl TagFilter {
    fn new(tags: &[String]) -> Self {
        let (mut must, mut not) = (Vec::new(), Vec::new());
        for t in tags {
            let t = t.to_lowercase();
            match t.strip_prefix('!') {
                Some(x) => not.push(x.to_string()),
                None => must.push(t),
            }
        }
        Self { must, not }
    }

    fn matches(&self, tags: &[String]) -> bool {
        let have: HashSet<String> = tags.iter().map(|t| t.to_lowercase()).collect();
        self.must.iter().all(|t| have.contains(t)) && !self.not.iter().any(|t| have.contains(t))
    }
}

/// Fisher–Yates with splitmix64: the same seed gives the same order on every build, which
/// a version-dependent library RNG would not promise.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Stable sort by RTT from `near` (Consul's `sortNodesByDistanceFrom`, then the swap of the
/// near node itself to the front within the first ten). Without a coordinate for `near`
/// the order is left alone, apart from that swap.
fn sort_near(state: &State, nodes: &mut [HealthEntry], near: &str) {
    if let Some(from) = state.coordinate(near) {
        nodes.sort_by_cached_key(|e| {
            state
                .coordinate(&e.node.node)
                .map_or(Duration::MAX, |c| from.distance_to(c))
        });
    }
    let hit = nodes
        .iter()
        .take(NEAR_SELF_SEARCH_DEPTH)
        .position(|e| e.node.node.eq_ignore_ascii_case(near));
    if let Some(i) = hit {
        nodes.swap(0, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_filter_is_case_insensitive_and_honours_bang() {
        let f = TagFilter::new(&["Primary".into(), "!experimental".into()]);
        assert!(f.matches(&["primary".into(), "v1".into()]));
        assert!(!f.matches(&["PRIMARY".into(), "Experimental".into()]));
        assert!(!f.matches(&["v1".into()]));
        assert!(TagFilter::new(&[]).matches(&[]));
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut a: Vec<u32> = (0..20).collect();
        let mut b = a.clone();
        shuffle(&mut a, 7);
        shuffle(&mut b, 7);
        assert_eq!(a, b);
        let mut c: Vec<u32> = (0..20).collect();
        shuffle(&mut c, 8);
        assert_ne!(a, c);
        a.sort_unstable();
        assert_eq!(a, (0..20).collect::<Vec<_>>());
    }
}
