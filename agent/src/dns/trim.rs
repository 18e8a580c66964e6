//! Consul's size limits on DNS replies, as its `trimDNSResponse` (hashicorp/consul
//! `agent/dns/router_response.go`, and `agent/dns.go` before it):
//!
//! - UDP to a client whose buffer is 512 bytes (no EDNS, or EDNS advertising 512 or less):
//!   at most `min(8, udp_answer_limit)` answers, then as many as fit 512 bytes measured
//!   without name compression.
//! - UDP with a larger EDNS buffer: as many answers as fit that buffer (at most 65467).
//! - TCP: at most 4096 answers (1024 SRV), then as many as fit 64 KiB.
//!
//! The byte limits always keep one answer. A trim leaves in the additional section one record
//! per remaining SRV target (Consul's `syncExtra`). Whether a trimmed reply carries TC is the
//! caller's business (`enable_truncate`). `a_record_limit` is not a trim: it caps address
//! answers on every transport and never sets TC ([`limit_addresses`]).
//!
//! Pure: sizes come from hickory's encoder writing into a scratch buffer; no I/O.

use std::collections::{HashMap, HashSet};

use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::answer::Reply;

/// Consul's ceiling on `udp_answer_limit` (`maxUDPAnswerLimit`).
const MAX_UDP_ANSWER_LIMIT: usize = 8;
/// RFC 1035's UDP message size: the buffer of a client without EDNS.
const PLAIN_UDP_SIZE: usize = 512;
/// The largest EDNS buffer honoured (Consul's `maxUDPDatagramSize`).
const MAX_UDP_SIZE: usize = u16::MAX as usize - 68;
/// Consul measures UDP replies against the buffer less the UDP header.
const UDP_HEADER: usize = 8;
/// The largest TCP reply (Consul's 64 KiB less 12 bytes of overhead).
const MAX_TCP_SIZE: usize = 65_523;
/// Answers over TCP before measuring: more never fit 64 KiB.
const MAX_TCP_ANSWERS: usize = 4096;
/// SRV answers over TCP before measuring.
const MAX_TCP_SRV_ANSWERS: usize = 1024;
/// The OPT record of an echoed EDNS without options: root name, type, class, TTL, length.
pub(super) const OPT_LEN: usize = 11;

/// How a reply travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// UDP to a client whose buffer holds `buffer` bytes.
    Udp {
        /// 512 without EDNS, else the advertised size within [512, 65467].
        buffer: usize,
    },
    /// TCP.
    Tcp,
}

impl Transport {
    /// UDP to a client that advertised `edns` bytes (`None`: no EDNS).
    pub(super) fn udp(edns: Option<u16>) -> Self {
        let buffer = edns
            .map_or(PLAIN_UDP_SIZE, usize::from)
            .clamp(PLAIN_UDP_SIZE, MAX_UDP_SIZE);
        Self::Udp { buffer }
    }
}

/// The limits from `dns_config`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Answers per UDP reply to a 512-byte buffer (`udp_answer_limit`).
    pub(super) udp_answer_limit: usize,
    /// A/AAAA answers per reply, any transport; 0 is unlimited (`a_record_limit`).
    pub(super) a_record_limit: usize,
}

/// What goes out with the records, for measuring.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame<'a> {
    /// The question's name as it is echoed.
    pub(super) qname: &'a Name,
    /// Bytes of the OPT record; 0 without EDNS.
    pub(super) opt_len: usize,
}

/// Keeps the first `a_record_limit` A/AAAA answers (0: all). Consul stops adding address
/// records at the limit when it builds the answer, so this is no trim and sets no TC.
pub(super) fn limit_addresses(reply: &mut Reply, a_record_limit: usize) {
    if a_record_limit == 0 {
        return;
    }
    let mut kept = 0;
    reply.answers.retain(|r| {
        let address = matches!(r.record_type(), RecordType::A | RecordType::AAAA);
        kept += usize::from(address);
        !address || kept <= a_record_limit
    });
}

/// Trims `reply` to what `transport` carries; true when answers were dropped.
pub(super) fn trim(
    reply: &mut Reply,
    frame: &Frame<'_>,
    transport: Transport,
    limits: &Limits,
) -> bool {
    let total = reply.answers.len();
    if total <= 1 {
        return false;
    }
    let srv = reply
        .answers
        .iter()
        .any(|r| r.record_type() == RecordType::SRV);
    let (cap, max_size, compressed) = match transport {
        Transport::Udp { buffer } if buffer == PLAIN_UDP_SIZE => {
            let cap = limits.udp_answer_limit.clamp(1, MAX_UDP_ANSWER_LIMIT);
            // Measured uncompressed, as Consul: it then fits even a resolver that expands it.
            (cap, PLAIN_UDP_SIZE - UDP_HEADER, false)
        }
        Transport::Udp { buffer } => (total, buffer - UDP_HEADER, true),
        Transport::Tcp if srv => (MAX_TCP_SRV_ANSWERS, MAX_TCP_SIZE, true),
        Transport::Tcp => (MAX_TCP_ANSWERS, MAX_TCP_SIZE, true),
    };
    let answers = std::mem::take(&mut reply.answers);
    let extras = std::mem::take(&mut reply.additionals);
    let index = Index::new(&extras);
    let mut keep = total.min(cap);
    let size = |n: usize| {
        let shown = index
            .sync(&answers[..n])
            .unwrap_or_else(|| extras.iter().collect());
        measure(frame, &answers[..n], &shown, compressed)
    };
    if keep > 1 && size(keep) > max_size {
        // The largest count that fits, never below one (sizes grow with the count).
        let (mut lo, mut hi) = (1, keep - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if size(mid) <= max_size {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        keep = lo;
    }
    if keep == total {
        reply.answers = answers;
        reply.additionals = extras;
        return false;
    }
    let synced: Option<Vec<Record>> = index
        .sync(&answers[..keep])
        .map(|kept| kept.into_iter().cloned().collect());
    reply.additionals = synced.unwrap_or(extras);
    reply.answers = answers;
    reply.answers.truncate(keep);
    true
}

/// The additional records by lowercase owner name, first record of each name only (Consul's
/// `indexRRs`).
struct Index<'a> {
    by_name: HashMap<Name, &'a Record>,
}

impl<'a> Index<'a> {
    fn new(extras: &'a [Record]) -> Self {
        let mut by_name = HashMap::with_capacity(extras.len());
        for r in extras {
            by_name.entry(r.name.to_lowercase()).or_insert(r);
        }
        Self { by_name }
    }

    /// Consul's `syncExtra`: the first additional record of each SRV target in `answers`,
    /// once per target, following CNAMEs. `None` when `answers` hold no SRV: then the
    /// additional section is not about targets (node meta, glue) and stays as it is.
    fn sync(&self, answers: &[Record]) -> Option<Vec<&'a Record>> {
        let mut any_srv = false;
        let mut out = Vec::new();
        let mut resolved = HashSet::new();
        for a in answers {
            let RData::SRV(srv) = &a.data else { continue };
            any_srv = true;
            let mut target = srv.target.to_lowercase();
            while resolved.insert(target.clone()) {
                let Some(&extra) = self.by_name.get(&target) else {
                    break;
                };
                out.push(extra);
                match &extra.data {
                    RData::CNAME(c) => target = c.0.to_lowercase(),
                    _ => break,
                }
            }
        }
        any_srv.then_some(out)
    }
}

/// The encoded size of a reply holding `answers` and `extras`.
fn measure(frame: &Frame<'_>, answers: &[Record], extras: &[&Record], compressed: bool) -> usize {
    let mut buf = Vec::with_capacity(PLAIN_UDP_SIZE);
    let mut enc = BinEncoder::new(&mut buf);
    if !compressed {
        enc.set_name_encoding(NameEncoding::Uncompressed);
    }
    let emitted = (|| {
        // Header, then the question: name, type, class.
        enc.emit_vec(&[0; 12])?;
        frame.qname.emit(&mut enc)?;
        enc.emit_u32(0)?;
        for r in answers {
            r.emit(&mut enc)?;
        }
        for r in extras {
            r.emit(&mut enc)?;
        }
        Ok::<_, hickory_server::proto::ProtoError>(())
    })();
    // A reply the encoder refuses (over 64 KiB) fits nothing.
    match emitted {
        Ok(()) => buf.len() + frame.opt_len,
        Err(_) => usize::MAX,
    }
}
