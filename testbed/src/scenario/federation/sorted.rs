//! `/v1/catalog/datacenters` sorted by WAN round trip: a background task polls every DC's
//! server from the scenario's start until each list puts its own DC first and every pair
//! of other DCs in the order of the topology's link delays (pairs whose delays differ by
//! less than `MIN_GAP` are not judged: network coordinates cannot tell them apart). The
//! coordinates need several WAN probe rounds (5 s each) to settle, hence the background.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Fed, matrix};
use crate::scenario::Report;
use crate::state::State;

/// How long, from the scenario's start, the lists have to become sorted.
const DEADLINE: Duration = Duration::from_secs(120);
/// One-way delays closer than this are not ordered by the check.
const MIN_GAP: Duration = Duration::from_millis(10);
/// Pause between polls.
const EVERY: Duration = Duration::from_secs(1);

/// What the poller found: when the lists were first all sorted, and the last lists seen.
type Found = (Option<f64>, BTreeMap<String, Vec<String>>);

/// The polling task.
pub(super) struct Poller {
    task: Option<JoinHandle<Found>>,
    pairs: usize,
}

impl Poller {
    /// Starts polling (nothing to poll when no pair of links differs by `MIN_GAP`).
    pub(super) fn start(state: &State, fed: &Fed) -> Poller {
        let delays = delays(state);
        let names: Vec<String> = fed.dcs.iter().map(|d| d.name.clone()).collect();
        let pairs: usize = names
            .iter()
            .map(|d| judged_pairs(d, &names, &delays).len())
            .sum();
        if pairs == 0 {
            return Poller { task: None, pairs };
        }
        let (state, fed) = (Arc::new(state.clone()), Arc::new(fed.clone()));
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut lists = BTreeMap::new();
            while started.elapsed() < DEADLINE {
                let round = Instant::now();
                for d in &fed.dcs {
                    lists.insert(d.name.clone(), matrix::datacenters(&state, &d.server).await);
                }
                if names
                    .iter()
                    .all(|d| out_of_order(d, &lists[d], &names, &delays).is_none())
                {
                    return (Some(fed.now()), lists);
                }
                tokio::time::sleep_until(round + EVERY).await;
            }
            (None, lists)
        });
        Poller {
            task: Some(task),
            pairs,
        }
    }

    /// Waits for the poller (at most until its deadline) and checks what it found.
    pub(super) async fn finish(self, report: &mut Report) {
        let Some(task) = self.task else {
            report.facts.insert(
                "datacenters_sorted_by_wan_rtt".into(),
                format!("not checked: no two links from one DC differ by {MIN_GAP:?} or more"),
            );
            return;
        };
        let (at, lists) = task.await.unwrap_or_default();
        if let Some(t) = at {
            report
                .timings
                .insert("datacenters_sorted_after_s".into(), t);
        }
        let shown: Vec<String> = lists.iter().map(|(dc, l)| format!("{dc}: {l:?}")).collect();
        report.check(
            "datacenters_sorted_by_wan_rtt",
            at.is_some(),
            match at {
                Some(t) => format!(
                    "every DC's list in link-delay order ({} pairs judged) {t:.1}s after the start: {}",
                    self.pairs,
                    shown.join("; ")
                ),
                None => format!(
                    "not sorted within {DEADLINE:?} of the start: {}",
                    shown.join("; ")
                ),
            },
        );
    }
}

/// One-way delay of each link, by its (sorted) pair of DC names.
fn delays(state: &State) -> BTreeMap<(String, String), Duration> {
    state
        .wan_links
        .iter()
        .map(|l| {
            let key = if l.a < l.b {
                (l.a.clone(), l.b.clone())
            } else {
                (l.b.clone(), l.a.clone())
            };
            (key, Duration::from_micros(l.params.delay_us))
        })
        .collect()
}

fn delay(delays: &BTreeMap<(String, String), Duration>, a: &str, b: &str) -> Option<Duration> {
    let key = if a < b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    };
    delays.get(&key).copied()
}

/// The pairs (nearer, farther) of the other DCs in `names` that `dc`'s list must order.
fn judged_pairs(
    dc: &str,
    names: &[String],
    delays: &BTreeMap<(String, String), Duration>,
) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for y in names.iter().filter(|y| *y != dc) {
        for z in names.iter().filter(|z| *z != dc && *z != y) {
            if let (Some(dy), Some(dz)) = (delay(delays, dc, y), delay(delays, dc, z))
                && dy + MIN_GAP <= dz
            {
                pairs.push((y.clone(), z.clone()));
            }
        }
    }
    pairs
}

/// The first thing wrong with `dc`'s list, if any.
fn out_of_order(
    dc: &str,
    list: &[String],
    names: &[String],
    delays: &BTreeMap<(String, String), Duration>,
) -> Option<String> {
    if list.first().map(String::as_str) != Some(dc) {
        return Some(format!("{dc} is not first"));
    }
    let pos = |n: &str| list.iter().position(|x| x == n);
    judged_pairs(dc, names, delays)
        .into_iter()
        .find_map(|(near, far)| match (pos(&near), pos(&far)) {
            (Some(i), Some(j)) if i < j => None,
            _ => Some(format!("{near} not before {far}")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(pairs: &[(&str, &str, u64)]) -> BTreeMap<(String, String), Duration> {
        pairs
            .iter()
            .map(|(a, b, d)| ((a.to_string(), b.to_string()), Duration::from_millis(*d)))
            .collect()
    }

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lists_are_judged_only_where_delays_differ_enough() {
        let names = list(&["dc1", "dc2", "dc3"]);
        let d = ms(&[("dc1", "dc2", 10), ("dc1", "dc3", 40), ("dc2", "dc3", 15)]);
        assert_eq!(
            judged_pairs("dc1", &names, &d),
            [("dc2".into(), "dc3".into())]
        );
        // dc2: dc1 at 10 ms and dc3 at 15 ms are too close to order.
        assert!(judged_pairs("dc2", &names, &d).is_empty());
        assert_eq!(
            out_of_order("dc1", &list(&["dc1", "dc2", "dc3"]), &names, &d),
            None
        );
        assert!(out_of_order("dc1", &list(&["dc1", "dc3", "dc2"]), &names, &d).is_some());
        assert!(out_of_order("dc1", &list(&["dc2", "dc1", "dc3"]), &names, &d).is_some());
        assert_eq!(
            out_of_order("dc2", &list(&["dc2", "dc3", "dc1"]), &names, &d),
            None
        );
        assert!(out_of_order("dc3", &list(&["dc1", "dc2"]), &names, &d).is_some());
    }
}
