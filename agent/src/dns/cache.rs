//! The answer cache: encoded replies kept by the exact bytes of the query that got them,
//! so a repeated question is answered by a copy, a new ID and a reshuffle, with no parse,
//! no catalog read and no allocation.
//!
//! ```text
//!   query bytes[2..] (flags, question, EDNS OPT: payload size, DO, options such as client
//!   subnet)  ──▶ entry { generation, born, reply bytes, shuffle }   one map per transport
//!
//!   hit  = same generation (applied index of the local state + version of the agent's ACL
//!          tokens) and younger than MAX_AGE: reply copied, ID set, A/AAAA answers reshuffled
//!   miss = the full handler; its reply is stored when the handler says it may be
//! ```
//!
//! Everything an answer depends on is in the key or the generation: the question and every
//! flag and option the client sent (the bytes), UDP or TCP (the map), the catalog and ACL
//! rules (the applied index moves on every write), the DNS token (the tokens' version). The
//! handler stores only answers read from this server's own state, never trimmed to fit (the
//! records kept would be frozen), never negative (the SOA serial is the time) and never
//! from a prepared query, another datacenter or a recursor ([`super::handler`]).
//! `MAX_AGE` bounds what nothing announces, such as a token's expiry.
//!
//! Consul shuffles service answers on every query. A cached reply with several answers is
//! stored only if they can be permuted as byte blocks: every answer an A (or every one an
//! AAAA) record owned by a pointer to the question, nothing else in the authority section
//! and only the OPT record in the additional one, so no name points into the answers. Each
//! hit permutes those blocks (Fisher-Yates with a per-thread xorshift generator).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use super::source::Generation;

/// Longest an entry answers, whatever the generation says.
const MAX_AGE: Duration = Duration::from_secs(1);
/// Entries per transport; a full map is emptied (questions are few, names are not).
const MAX_ENTRIES: usize = 4096;
/// DNS header length.
const HEADER: usize = 12;
/// A compression pointer to the question's name, the first name of every message.
const QNAME_POINTER: [u8; 2] = [0xC0, 0x0C];
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;

/// Which map: UDP and TCP replies differ (trimming, sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    /// Datagrams.
    Udp,
    /// Streams.
    Tcp,
}

/// The answer blocks of a reply that are permuted on every hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shuffle {
    /// Offset of the first answer record.
    start: usize,
    /// Length of each answer record.
    len: usize,
    /// How many.
    count: usize,
}

#[derive(Debug)]
struct Entry {
    generation: Generation,
    born: Instant,
    reply: Box<[u8]>,
    shuffle: Option<Shuffle>,
}

/// Replies by query bytes, one map per transport (see the module doc).
#[derive(Debug, Default)]
pub(super) struct AnswerCache {
    udp: RwLock<HashMap<Box<[u8]>, Entry>>,
    tcp: RwLock<HashMap<Box<[u8]>, Entry>>,
}

impl AnswerCache {
    fn map(&self, wire: Wire) -> &RwLock<HashMap<Box<[u8]>, Entry>> {
        match wire {
            Wire::Udp => &self.udp,
            Wire::Tcp => &self.tcp,
        }
    }

    /// Appends to `out` the cached reply to `query` if there is a current one (built at
    /// `generation`, younger than [`MAX_AGE`] at `now`), with the query's ID and its
    /// answers reshuffled. False (and `out` unchanged) otherwise.
    pub(super) fn answer_into(
        &self,
        wire: Wire,
        query: &[u8],
        generation: Generation,
        now: Instant,
        rng: &mut Rng,
        out: &mut Vec<u8>,
    ) -> bool {
        if query.len() < HEADER {
            return false;
        }
        let map = self.map(wire).read();
        let Some(e) = map.get(&query[2..]) else {
            return false;
        };
        if e.generation != generation || now.saturating_duration_since(e.born) >= MAX_AGE {
            return false;
        }
        let at = out.len();
        out.extend_from_slice(&e.reply);
        let reply = &mut out[at..];
        reply[..2].copy_from_slice(&query[..2]);
        if let Some(s) = e.shuffle {
            shuffle_blocks(&mut reply[s.start..s.start + s.len * s.count], s.len, rng);
        }
        true
    }

    /// Keeps `reply` as the answer to `query` at `generation`, if its answers can be
    /// reshuffled as blocks (or there is at most one).
    pub(super) fn insert(&self, wire: Wire, query: &[u8], generation: Generation, reply: &[u8]) {
        if query.len() < HEADER {
            return;
        }
        let Some(shuffle) = layout(reply) else {
            return;
        };
        let entry = Entry {
            generation,
            born: Instant::now(),
            reply: reply.into(),
            shuffle,
        };
        let mut map = self.map(wire).write();
        if map.len() >= MAX_ENTRIES && !map.contains_key(&query[2..]) {
            map.clear();
        }
        map.insert(query[2..].into(), entry);
    }

    /// Entries held (both transports).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.udp.read().len() + self.tcp.read().len()
    }
}

/// Permutes the `len`-byte blocks of `area` uniformly (Fisher-Yates).
fn shuffle_blocks(area: &mut [u8], len: usize, rng: &mut Rng) {
    let count = area.len() / len;
    for i in (1..count).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        if i != j {
            let (lo, hi) = area.split_at_mut(i * len);
            lo[j * len..(j + 1) * len].swap_with_slice(&mut hi[..len]);
        }
    }
}

/// Reads a big-endian u16 at `at`.
fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The offset just past the name at `at` (labels up to a zero byte or a pointer).
fn skip_name(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let l = *b.get(at)?;
        match l {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2),
            l if l & 0xC0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// One resource record at `at`: (its type, the offset past it).
fn record(b: &[u8], at: usize) -> Option<(u16, usize)> {
    let name_end = skip_name(b, at)?;
    let rtype = u16_at(b, name_end)?;
    let rdlen = usize::from(u16_at(b, name_end + 8)?);
    let end = name_end + 10 + rdlen;
    (end <= b.len()).then_some((rtype, end))
}

/// Whether `reply` may be cached: `Some(None)` with at most one answer, `Some(Some(..))`
/// when its answers are same-type A/AAAA blocks that may be permuted, `None` otherwise.
fn layout(reply: &[u8]) -> Option<Option<Shuffle>> {
    let questions = u16_at(reply, 4)?;
    let answers = usize::from(u16_at(reply, 6)?);
    let authorities = u16_at(reply, 8)?;
    let additionals = u16_at(reply, 10)?;
    if questions != 1 {
        return None;
    }
    let start = skip_name(reply, HEADER)? + 4;
    if answers <= 1 {
        return Some(None);
    }
    if authorities != 0 {
        return None;
    }
    let mut at = start;
    let mut first: Option<(u16, usize)> = None;
    for _ in 0..answers {
        if reply.get(at..at + 2)? != QNAME_POINTER {
            return None;
        }
        let (rtype, end) = record(reply, at)?;
        let this = (rtype, end - at);
        if !matches!(rtype, TYPE_A | TYPE_AAAA) || first.is_some_and(|f| f != this) {
            return None;
        }
        first = Some(this);
        at = end;
    }
    let (_, len) = first?;
    for _ in 0..additionals {
        let (rtype, end) = record(reply, at)?;
        if rtype != TYPE_OPT {
            return None;
        }
        at = end;
    }
    Some(Some(Shuffle {
        start,
        len,
        count: answers,
    }))
}

/// A small, fast generator for reshuffling (not for anything secret).
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    /// Seeded from the thread's random source.
    pub(super) fn new() -> Self {
        Self(rand::random::<u64>() | 1)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const G: Generation = Generation {
        applied: 7,
        tokens: 0,
    };

    /// A reply to `web.service.consul. A` with `n` A records (10.0.0.1..n) and an OPT.
    fn a_reply(n: u8) -> Vec<u8> {
        let mut b = vec![0xAB, 0xCD, 0x84, 0x00, 0, 1, 0, n, 0, 0, 0, 1];
        for l in ["web", "service", "consul"] {
            b.push(l.len() as u8);
            b.extend_from_slice(l.as_bytes());
        }
        b.extend_from_slice(&[0, 0, 1, 0, 1]);
        for i in 1..=n {
            b.extend_from_slice(&QNAME_POINTER);
            b.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 10, 0, 0, i]);
        }
        b.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    fn query(id: u16) -> Vec<u8> {
        let mut q = a_reply(0);
        q[..2].copy_from_slice(&id.to_be_bytes());
        q[2] = 0x01;
        q
    }

    fn hit(c: &AnswerCache, q: &[u8], g: Generation, rng: &mut Rng) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        c.answer_into(Wire::Udp, q, g, Instant::now(), rng, &mut out)
            .then_some(out)
    }

    #[test]
    fn a_hit_carries_the_query_id_and_every_answer_reshuffled() {
        let c = AnswerCache::default();
        let reply = a_reply(10);
        c.insert(Wire::Udp, &query(1), G, &reply);
        let mut rng = Rng::new();
        let mut orders = HashSet::new();
        for id in 0..50 {
            let got = hit(&c, &query(id), G, &mut rng).expect("cached");
            assert_eq!(&got[..2], &id.to_be_bytes());
            assert_eq!(got.len(), reply.len());
            assert_eq!(got[2..40], reply[2..40], "header and question kept");
            let start = 12 + 20 + 4;
            let mut last: Vec<u8> = (0..10).map(|i| got[start + i * 16 + 15]).collect();
            orders.insert(last.clone());
            last.sort_unstable();
            assert_eq!(last, (1..=10).collect::<Vec<u8>>(), "the same ten records");
            assert_eq!(got[got.len() - 11..], reply[reply.len() - 11..], "OPT kept");
        }
        assert!(
            orders.len() > 40,
            "orders vary: {} distinct of 50",
            orders.len()
        );
    }

    #[test]
    fn another_generation_or_other_flags_miss() {
        let c = AnswerCache::default();
        c.insert(Wire::Udp, &query(1), G, &a_reply(3));
        let mut rng = Rng::new();
        assert!(hit(&c, &query(2), G, &mut rng).is_some());
        let moved = Generation { applied: 8, ..G };
        assert!(hit(&c, &query(2), moved, &mut rng).is_none());
        let tokens = Generation { tokens: 1, ..G };
        assert!(hit(&c, &query(2), tokens, &mut rng).is_none());
        let mut no_rd = query(2);
        no_rd[2] = 0;
        assert!(hit(&c, &no_rd, G, &mut rng).is_none());
        let mut out = Vec::new();
        let tcp = c.answer_into(Wire::Tcp, &query(2), G, Instant::now(), &mut rng, &mut out);
        assert!(!tcp && out.is_empty());
    }

    #[test]
    fn replies_whose_answers_cannot_be_permuted_are_not_kept() {
        let c = AnswerCache::default();
        // A name in the additional section (not OPT) could point into the answers.
        let mut r = a_reply(2);
        let opt = r.len() - 11;
        r[opt + 2] = 16; // type TXT
        c.insert(Wire::Udp, &query(1), G, &r);
        // An answer owned by another name than the question.
        let mut r = a_reply(2);
        r[12 + 20 + 4 + 1] = 0x0D;
        c.insert(Wire::Udp, &query(3), G, &r);
        assert_eq!(c.len(), 0);
        // One answer needs no shuffle, whatever follows it.
        let mut one = a_reply(1);
        let opt = one.len() - 11;
        one[opt + 2] = 16;
        c.insert(Wire::Udp, &query(1), G, &one);
        assert_eq!(c.len(), 1);
    }
}
