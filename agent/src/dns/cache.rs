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
//! stored only if they are all A (or all AAAA) records of the question's name, each owner
//! written as a pointer to the question, as a pointer to an earlier answer's name, or in
//! full. Each hit permutes what follows the owner names (TTL, length and address: a block
//! of the same length in every answer) with Fisher-Yates and a per-thread xorshift
//! generator. Names stay where they are, so a pointer anywhere in the reply stays valid
//! (hickory writes the first answer's owner in full and points the others at it, since the
//! question is re-encoded apart; see `question_section`).

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
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;

/// Which map: UDP and TCP replies differ (trimming, sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    /// Datagrams.
    Udp,
    /// Streams.
    Tcp,
}

/// The answer tails of a reply that are permuted on every hit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shuffle {
    /// Offset of each answer's tail: TTL, RDLENGTH and RDATA, after type and class.
    tails: Box<[usize]>,
    /// Length of each tail (the same in every answer).
    len: usize,
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
        if let Some(s) = &e.shuffle {
            shuffle_tails(reply, s, rng);
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

/// Longest tail swapped: TTL (4), RDLENGTH (2) and an AAAA address (16).
const MAX_TAIL: usize = 22;

/// Permutes the answers' tails uniformly (Fisher-Yates), in place.
fn shuffle_tails(reply: &mut [u8], s: &Shuffle, rng: &mut Rng) {
    let mut tmp = [0u8; MAX_TAIL];
    let len = s.len;
    for i in (1..s.tails.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        if i != j {
            let (a, b) = (s.tails[i], s.tails[j]);
            tmp[..len].copy_from_slice(&reply[a..a + len]);
            reply.copy_within(b..b + len, a);
            reply[b..b + len].copy_from_slice(&tmp[..len]);
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
/// when its answers are A (or AAAA) records of the question's name whose tails may be
/// permuted, `None` otherwise.
fn layout(reply: &[u8]) -> Option<Option<Shuffle>> {
    let questions = u16_at(reply, 4)?;
    let answers = usize::from(u16_at(reply, 6)?);
    if questions != 1 {
        return None;
    }
    let qname_end = skip_name(reply, HEADER)?;
    if answers <= 1 {
        return Some(None);
    }
    let qname = &reply[HEADER..qname_end];
    if qname.iter().any(|&b| b & 0xC0 == 0xC0) {
        return None; // a compressed question: re-encoded replies never have one
    }
    // Offsets at which a name equal to the question's is written in full.
    let mut owners: Vec<usize> = vec![HEADER];
    let mut at = qname_end + 4;
    let mut first: Option<(u16, usize)> = None;
    let mut tails = Vec::with_capacity(answers);
    for _ in 0..answers {
        let name_end = skip_name(reply, at)?;
        let name = &reply[at..name_end];
        let same_owner = if name.len() == 2 && name[0] & 0xC0 == 0xC0 {
            let to = usize::from(u16::from_be_bytes([name[0] & 0x3F, name[1]]));
            owners.contains(&to)
        } else if name.eq_ignore_ascii_case(qname) {
            owners.push(at);
            true
        } else {
            false
        };
        let (rtype, end) = record(reply, at)?;
        let tail = (name_end + 4, end - name_end - 4);
        if !same_owner
            || !matches!(rtype, TYPE_A | TYPE_AAAA)
            || tail.1 > MAX_TAIL
            || first.is_some_and(|f| f != (rtype, tail.1))
        {
            return None;
        }
        first = Some((rtype, tail.1));
        tails.push(tail.0);
        at = end;
    }
    let (_, len) = first?;
    Some(Some(Shuffle {
        tails: tails.into(),
        len,
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

    /// A compression pointer to the question's name, the first name of every message.
    const QNAME_POINTER: [u8; 2] = [0xC0, 0x0C];

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
        // An answer owned by another name than the question.
        let mut r = a_reply(2);
        r[12 + 20 + 4 + 1] = 0x0D;
        c.insert(Wire::Udp, &query(3), G, &r);
        // Answers of another type (TXT) than A/AAAA.
        let mut r = a_reply(2);
        r[12 + 20 + 4 + 3] = 16;
        r[12 + 20 + 4 + 16 + 3] = 16;
        c.insert(Wire::Udp, &query(4), G, &r);
        assert_eq!(c.len(), 0);
        // One answer needs no shuffle, whatever it is.
        let mut one = a_reply(1);
        one[12 + 20 + 4 + 3] = 16;
        c.insert(Wire::Udp, &query(1), G, &one);
        assert_eq!(c.len(), 1);
    }

    /// hickory's encoding: the first answer's owner in full, the next ones pointing at it;
    /// and a TXT record in the additional section. Kept, and each hit holds the same
    /// records, reshuffled, with every name where it was.
    #[test]
    fn answers_pointing_at_the_first_answers_name_are_reshuffled() {
        let mut r = vec![0xAB, 0xCD, 0x84, 0x00, 0, 1, 0, 3, 0, 0, 0, 1];
        let qname: Vec<u8> = b"\x03web\x07service\x06consul\x00".to_vec();
        r.extend_from_slice(&qname);
        r.extend_from_slice(&[0, 1, 0, 1]);
        let first = r.len();
        r.extend_from_slice(&qname);
        r.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 10, 0, 0, 1]);
        for i in 2..=3u8 {
            r.extend_from_slice(&[0xC0, first as u8]);
            r.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 10, 0, 0, i]);
        }
        r.extend_from_slice(&[0xC0, first as u8, 0, 16, 0, 1, 0, 0, 0, 0, 0, 2, 1, b'x']);
        let c = AnswerCache::default();
        let mut q = r[..first].to_vec();
        q[2] = 0x01;
        q[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
        c.insert(Wire::Udp, &q, G, &r);
        assert_eq!(c.len(), 1, "kept");
        let mut rng = Rng::new();
        let mut orders = HashSet::new();
        for id in 0..30 {
            let got = hit(
                &c,
                &{
                    let mut q = q.clone();
                    q[..2].copy_from_slice(&u16::to_be_bytes(id));
                    q
                },
                G,
                &mut rng,
            )
            .expect("cached");
            assert_eq!(got.len(), r.len());
            assert_eq!(
                got[2..first + qname.len()],
                r[2..first + qname.len()],
                "names stay"
            );
            let a = |k: usize| got[first + qname.len() + 13 + k * 16];
            let mut order = vec![a(0), a(1), a(2)];
            orders.insert(order.clone());
            order.sort_unstable();
            assert_eq!(order, vec![1, 2, 3]);
            assert_eq!(got[got.len() - 14..], r[r.len() - 14..], "TXT kept");
        }
        assert!(orders.len() >= 4, "orders vary: {orders:?}");
    }
}
