//! Push-pull state sync (memberlist's push/pull, over datagrams): a member sends its whole
//! active membership to one peer, which merges it and answers with its own. A joiner does
//! it with the addresses it joins, so it learns every member (and their tags) in one round
//! trip instead of waiting for gossip rounds; every member also does it with one random
//! peer every [`push_pull_interval`], which repairs whatever dissemination missed.
//!
//! A state does not fit one datagram in a large pool, so it is cut into several
//! [`PushPull`] messages, each complete in itself (a list of foca members, each with its
//! tags when the receiver asked for them): a lost datagram loses only its entries, and the
//! receiver never reassembles anything. Only the first one asks for the reply. Pure: no
//! I/O; the runtime sends what [`pack`] returns.

use std::time::Duration;

use foca::Member;
use serde::{Deserialize, Serialize};

use super::identity::{NodeId, Tags};

/// One member of a push-pull state: foca's view of it, and its tags when sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncEntry {
    /// Identity, foca incarnation and state (alive or suspect).
    pub member: Member<NodeId>,
    /// The member's tags and the identity bump they were published under.
    pub tags: Option<(u64, Tags)>,
}

/// One datagram's worth of a push-pull state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPull {
    /// The receiver should answer with its own state (set on the first datagram only).
    pub reply: bool,
    /// The answer should carry every member's tags (a joiner knows nobody's).
    pub want_tags: bool,
    /// Members.
    pub entries: Vec<SyncEntry>,
}

/// Bytes a [`PushPull`] frame adds around its entries: kind byte, `Direct` variant,
/// two flags and the entry count (a varint of up to three bytes).
const FRAME_OVERHEAD: usize = 8;

/// Cuts `entries` into messages of at most `max_bytes` encoded (kind byte included).
/// An entry too big for one datagram goes without its tags; one too big even so is
/// skipped. Always returns at least one message, so a reply is always asked for.
pub fn pack(
    reply: bool,
    want_tags: bool,
    entries: Vec<SyncEntry>,
    max_bytes: usize,
) -> Vec<PushPull> {
    let budget = max_bytes.saturating_sub(FRAME_OVERHEAD);
    let mut out = vec![PushPull {
        reply,
        want_tags,
        entries: Vec::new(),
    }];
    let mut used = 0;
    for mut entry in entries {
        let mut size = encoded_len(&entry);
        if size > budget && entry.tags.is_some() {
            entry.tags = None;
            size = encoded_len(&entry);
        }
        if size > budget {
            continue;
        }
        if used + size > budget {
            out.push(PushPull {
                reply: false,
                want_tags,
                entries: Vec::new(),
            });
            used = 0;
        }
        used += size;
        if let Some(last) = out.last_mut() {
            last.entries.push(entry);
        }
    }
    out
}

fn encoded_len(entry: &SyncEntry) -> usize {
    postcard::to_allocvec(entry).map_or(usize::MAX, |v| v.len())
}

/// How often each member syncs with a random peer in a pool of `members`: `base` up to 32
/// members, then one more `base` per doubling (memberlist's `pushPullScale`), so the pool's
/// total sync traffic grows with N log N rather than N².
pub fn push_pull_interval(base: Duration, members: usize) -> Duration {
    const SCALE_THRESHOLD: usize = 32;
    if members <= SCALE_THRESHOLD {
        return base;
    }
    let ratio = members as f64 / SCALE_THRESHOLD as f64;
    // ceil(log2(n) - log2(32)) + 1, bounded so a huge count cannot overflow.
    let multiplier = ratio.log2().ceil().clamp(0.0, 30.0) + 1.0;
    base.mul_f64(multiplier)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::direct::{Direct, frame_direct};
    use crate::identity::Role;

    fn entry(i: u16, tags: bool) -> SyncEntry {
        let id = NodeId {
            name: format!("node-with-a-longish-name-{i}"),
            addr: SocketAddr::from(([10, 0, 0, 1], 8000 + i)),
            bump: 1_700_000_000_000_000 + u64::from(i),
        };
        let t = Tags::new(Role::Client, "dc1").with_build("0.1.0");
        SyncEntry {
            member: Member::alive(id),
            tags: tags.then_some((1, t)),
        }
    }

    #[test]
    fn a_large_state_is_cut_into_datagrams_that_fit() {
        let entries: Vec<SyncEntry> = (0..100).map(|i| entry(i, true)).collect();
        let parts = pack(true, true, entries.clone(), 1371);
        assert!(parts.len() > 3, "{} parts", parts.len());
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(part.reply, i == 0, "only the first asks for a reply");
            let framed = frame_direct(&Direct::PushPull(part.clone())).expect("encodes");
            assert!(framed.len() <= 1371, "part {i} is {} bytes", framed.len());
        }
        let all: Vec<SyncEntry> = parts.into_iter().flat_map(|p| p.entries).collect();
        assert_eq!(all, entries, "every entry, in order, once");
    }

    #[test]
    fn oversized_tags_are_dropped_and_empty_states_still_ask() {
        let mut big = entry(1, true);
        if let Some((_, t)) = big.tags.as_mut() {
            t.set("blob", "x".repeat(2000));
        }
        let parts = pack(true, true, vec![big], 1371);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].entries.len(), 1);
        assert!(parts[0].entries[0].tags.is_none());
        let empty = pack(true, false, Vec::new(), 1371);
        assert_eq!(empty.len(), 1);
        assert!(empty[0].reply);
    }

    #[test]
    fn interval_scales_past_32_members() {
        let base = Duration::from_secs(30);
        assert_eq!(push_pull_interval(base, 10), base);
        assert_eq!(push_pull_interval(base, 32), base);
        assert_eq!(push_pull_interval(base, 64), base * 2);
        assert_eq!(push_pull_interval(base, 65), base * 3);
    }
}
