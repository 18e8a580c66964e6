//! Asking several datacenters at once under one deadline (#16): the nearest one that has
//! what is wanted (`?dc=any`, `web.service.any.consul`), or every one (`?dc=*`).
//!
//! Datacenters come nearest first (WAN round-trip order, `Router::datacenters`). All are
//! asked in parallel; [`nearest`] returns as soon as the nearest datacenter with a wanted
//! answer is known — every nearer one has answered without it or failed — so a far or dead
//! datacenter never delays a near answer, and nothing waits past the deadline. Those that
//! did not answer in time, or failed, are named in `missing`: never silently dropped.
//!
//! ```text
//!  dcs (nearest first) ─ ask(dc) ∥ ask(dc) ∥ ask(dc) ─▶ slots[i] = Hit | Miss | Failed
//!     nearest: first Hit with every slot before it settled (or, at the deadline, first Hit)
//!     all:     every answer by the deadline; the rest named missing
//! ```

use std::future::Future;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;

/// The nearest wanted answer and the datacenters that gave none.
#[derive(Debug)]
pub struct Nearest<T> {
    /// The nearest datacenter whose answer was wanted, and the answer.
    pub found: Option<(String, T)>,
    /// Datacenters nearer than the choice (or any, with no choice) that failed or had not
    /// answered by the deadline, nearest first.
    pub missing: Vec<String>,
}

/// Every answer by the deadline.
#[derive(Debug)]
pub struct All<T> {
    /// Each datacenter that answered, nearest first.
    pub answers: Vec<(String, T)>,
    /// Those that failed or did not answer in time, nearest first.
    pub missing: Vec<String>,
}

enum Slot<T> {
    Pending,
    Hit(T),
    Miss,
    Failed,
}

/// Asks every datacenter of `dcs` (nearest first) with `ask`, at once; the nearest answer
/// `wanted` accepts, chosen as soon as no nearer datacenter can still give one.
pub async fn nearest<T, E, F, Fut>(
    dcs: &[String],
    deadline: Instant,
    ask: F,
    wanted: impl Fn(&T) -> bool,
) -> Nearest<T>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut slots: Vec<Slot<T>> = dcs.iter().map(|_| Slot::Pending).collect();
    let mut pending = ask_each(dcs, ask);
    loop {
        if let Some(i) = decided(&slots) {
            return finish(dcs, slots, Some(i));
        }
        match tokio::time::timeout_at(deadline, pending.next()).await {
            Ok(Some((i, Ok(v)))) => slots[i] = if wanted(&v) { Slot::Hit(v) } else { Slot::Miss },
            Ok(Some((i, Err(_)))) => slots[i] = Slot::Failed,
            // All settled without a hit, or out of time: the nearest hit so far, if any.
            Ok(None) | Err(_) => {
                let first = slots.iter().position(|s| matches!(s, Slot::Hit(_)));
                return finish(dcs, slots, first);
            }
        }
    }
}

/// `ask` for every datacenter at once; each answer comes back with its index in `dcs`.
fn ask_each<T, E, F, Fut>(
    dcs: &[String],
    ask: F,
) -> FuturesUnordered<impl Future<Output = (usize, Result<T, E>)>>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    dcs.iter()
        .enumerate()
        .map(|(i, dc)| {
            let fut = ask(dc.clone());
            async move { (i, fut.await) }
        })
        .collect()
}

/// The index of the nearest hit once every slot before it has settled.
fn decided<T>(slots: &[Slot<T>]) -> Option<usize> {
    for (i, s) in slots.iter().enumerate() {
        match s {
            Slot::Hit(_) => return Some(i),
            Slot::Pending => return None,
            Slot::Miss | Slot::Failed => {}
        }
    }
    None
}

fn finish<T>(dcs: &[String], slots: Vec<Slot<T>>, chosen: Option<usize>) -> Nearest<T> {
    let mut found = None;
    let mut missing = Vec::new();
    for (i, (dc, s)) in dcs.iter().zip(slots).enumerate() {
        match s {
            Slot::Hit(v) if Some(i) == chosen => found = Some((dc.clone(), v)),
            // Nearer than the choice (skipped for failing or not answering in time), or any
            // when nothing was chosen; farther ones were not needed.
            Slot::Pending | Slot::Failed if chosen.is_none_or(|c| i < c) => {
                missing.push(dc.clone())
            }
            Slot::Pending | Slot::Failed => {}
            Slot::Hit(_) | Slot::Miss => {}
        }
    }
    Nearest { found, missing }
}

/// Asks every datacenter of `dcs` at once; every answer in by `deadline`.
pub async fn all<T, E, F, Fut>(dcs: &[String], deadline: Instant, ask: F) -> All<T>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut slots: Vec<Option<T>> = dcs.iter().map(|_| None).collect();
    let mut pending = ask_each(dcs, ask);
    while let Ok(Some((i, got))) = tokio::time::timeout_at(deadline, pending.next()).await {
        slots[i] = got.ok();
    }
    let mut answers = Vec::new();
    let mut missing = Vec::new();
    for (dc, s) in dcs.iter().zip(slots) {
        match s {
            Some(v) => answers.push((dc.clone(), v)),
            None => missing.push(dc.clone()),
        }
    }
    All { answers, missing }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn dcs(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    /// dc → (delay ms, Some(count) answered / None failed).
    async fn fake(dc: String) -> Result<u32, ()> {
        let (ms, v) = match dc.as_str() {
            "near-empty" => (10, Some(0)),
            "near-full" => (20, Some(3)),
            "far-full" => (60, Some(5)),
            "dead" => (10_000, None),
            "broken" => (5, None),
            _ => (0, Some(0)),
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        v.ok_or(())
    }

    #[tokio::test(start_paused = true)]
    async fn the_nearest_hit_wins_without_waiting_for_farther_ones() {
        let t0 = Instant::now();
        let got = nearest(
            &dcs(&["near-empty", "near-full", "far-full", "dead"]),
            t0 + Duration::from_secs(3),
            fake,
            |n| *n > 0,
        )
        .await;
        assert_eq!(got.found, Some(("near-full".into(), 3)));
        assert_eq!(Instant::now() - t0, Duration::from_millis(20));
        assert!(got.missing.is_empty(), "{:?}", got.missing);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_nearer_datacenter_costs_the_deadline_then_the_farther_hit_answers() {
        let t0 = Instant::now();
        let got = nearest(
            &dcs(&["dead", "broken", "far-full"]),
            t0 + Duration::from_secs(3),
            fake,
            |n| *n > 0,
        )
        .await;
        assert_eq!(got.found, Some(("far-full".into(), 5)));
        assert_eq!(Instant::now() - t0, Duration::from_secs(3));
        assert_eq!(got.missing, ["dead", "broken"]);
        let got = nearest(&dcs(&["near-empty", "broken"]), t0, fake, |n| *n > 0).await;
        assert!(got.found.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn all_collects_every_answer_by_the_deadline_and_names_the_rest() {
        let t0 = Instant::now();
        let got = all(
            &dcs(&["near-full", "dead", "far-full", "broken"]),
            t0 + Duration::from_secs(2),
            fake,
        )
        .await;
        assert_eq!(
            got.answers,
            [("near-full".to_string(), 3), ("far-full".to_string(), 5)]
        );
        assert_eq!(got.missing, ["dead", "broken"]);
        assert_eq!(Instant::now() - t0, Duration::from_secs(2));
    }
}
