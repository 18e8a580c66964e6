//! The request handler hickory calls for every well-formed DNS message: parse the name,
//! read the catalog through [`Source`], shape the answer ([`answer`]) and send it with the
//! client's EDNS echoed. Names outside the domains go to the recursors. Messages hickory
//! cannot parse never get here: shorter than a header they are dropped, otherwise they are
//! answered FORMERR by hickory itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::ProtoError;
use hickory_server::proto::op::{Edns, LowerQuery, Message, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{Name, Record, RecordType};
use hickory_server::proto::serialize::binary::{
    BinDecoder, BinEncodable, BinEncoder, NameEncoding,
};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use meridian_config::DnsConfig;
use rand::seq::SliceRandom;

use super::answer::{self, Question, Reply, SoaTimers};
use super::cache::AnswerCache;
use super::name::{self, Lookup, Parsed};
use super::recursor::Recursors;
use super::source::{CROSS_DC_DNS_TIMEOUT, Generation, Instance, Source};
use super::trim::{self, Frame, Limits, Transport};
use crate::cluster::fanout;
use crate::rpc::RpcError;

/// Counters of what the DNS server did (read by tests and, later, metrics).
#[derive(Debug, Default)]
pub struct DnsStats {
    /// Questions handled.
    pub queries: AtomicU64,
    /// Answered NXDOMAIN.
    pub nxdomain: AtomicU64,
    /// Sent to a recursor.
    pub recursed: AtomicU64,
    /// Answered SERVFAIL (catalog unreachable, every recursor failed).
    pub servfail: AtomicU64,
    /// Replies trimmed to fit the transport (TC set only with `enable_truncate`).
    pub truncated: AtomicU64,
}

/// What the handler needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `domain` and `alt_domain`, lowercase with the final dot.
    pub domains: Vec<String>,
    /// `dns_config`.
    pub dns: DnsConfig,
}

/// Consul's DNS interface over the agent's catalog view.
#[derive(Clone)]
pub struct ConsulDns {
    source: Source,
    settings: Arc<Settings>,
    recursors: Recursors,
    stats: Arc<DnsStats>,
    cache: Arc<AnswerCache>,
}

impl ConsulDns {
    /// A handler answering from `source`, forwarding other names to `recursors`.
    pub fn new(source: Source, settings: Settings, recursors: Recursors) -> Self {
        Self {
            source,
            settings: Arc::new(settings),
            recursors,
            stats: Arc::new(DnsStats::default()),
            cache: Arc::new(AnswerCache::default()),
        }
    }

    /// The answer cache the socket loops consult before this handler.
    pub(super) fn cache(&self) -> &Arc<AnswerCache> {
        &self.cache
    }

    /// What answers read now would be built from; `None` when they are not cached.
    pub(super) fn generation(&self) -> Option<Generation> {
        self.source.cache_generation()
    }

    /// Counts `n` questions answered from the cache since `started`: in the agent's counters,
    /// as `consul.dns.domain_query` samples (only catalog names are cached) and in
    /// `meridian.dns.cache_hits`, one registry update each for the batch.
    pub(super) fn count_cached(&self, n: u64, started: std::time::Instant) {
        self.stats.queries.fetch_add(n, Ordering::Relaxed);
        let node = [("node", self.source.node_name())];
        crate::telemetry::sample_many("consul.dns.domain_query", &node, started.elapsed(), n);
        crate::telemetry::count_many("meridian.dns.cache_hits", &node, n);
    }

    /// The counters.
    pub fn stats(&self) -> Arc<DnsStats> {
        Arc::clone(&self.stats)
    }

    fn limits(&self) -> Limits {
        let d = &self.settings.dns;
        Limits {
            udp_answer_limit: usize::try_from(d.udp_answer_limit).unwrap_or(usize::MAX),
            a_record_limit: usize::try_from(d.a_record_limit).unwrap_or(usize::MAX),
        }
    }

    fn soa(&self) -> SoaTimers {
        let s = &self.settings.dns.soa;
        SoaTimers {
            refresh: s.refresh,
            retry: s.retry,
            expire: s.expire,
            min_ttl: s.min_ttl,
        }
    }

    /// `<svc>.service.any.<domain>` (or a plain name with `service_failover = "nearest"`):
    /// this datacenter's healthy instances, or when it has none the nearest datacenter's
    /// (by WAN round trip) that has some, every other one asked at once under
    /// [`CROSS_DC_DNS_TIMEOUT`]. Returns the answering datacenter with the instances.
    async fn nearest(
        &self,
        service: &str,
        tag: Option<&str>,
    ) -> Result<(String, Vec<Instance>), RpcError> {
        let only_passing = self.settings.dns.only_passing;
        let local_dc = self.source.local_dc().to_string();
        let here = answer::healthy(
            self.source.instances(None, service).await?,
            tag,
            only_passing,
        );
        if !here.is_empty() {
            return Ok((local_dc, here));
        }
        let others: Vec<String> = self
            .source
            .datacenters()
            .await
            .into_iter()
            .filter(|d| *d != local_dc)
            .collect();
        let deadline = tokio::time::Instant::now() + CROSS_DC_DNS_TIMEOUT;
        let ask = |dc: String| async move {
            let all = self.source.live_instances(&dc, service).await?;
            Ok::<_, RpcError>(answer::healthy(all, tag, only_passing))
        };
        let got = fanout::nearest(&others, deadline, ask, |v| !v.is_empty()).await;
        Ok(got.found.unwrap_or((local_dc, here)))
    }

    /// Answers a question about the catalog.
    async fn catalog(&self, q: &mut Question, lookup: Lookup) -> Result<Reply, RpcError> {
        let dns = &self.settings.dns;
        let node_ttl = secs(dns.node_ttl);
        match lookup {
            Lookup::Service { service, tag, dc } => {
                let nearest = match dc.as_deref() {
                    Some("any") => true,
                    None => dns.nearest_failover(),
                    Some(_) => false,
                };
                let (answered_by, mut healthy) = if nearest {
                    self.nearest(&service, tag.as_deref()).await?
                } else {
                    let all = self.source.instances(dc.as_deref(), &service).await?;
                    let healthy = answer::healthy(all, tag.as_deref(), dns.only_passing);
                    let dc = dc.unwrap_or_else(|| self.source.local_dc().to_string());
                    (dc, healthy)
                };
                q.dc = answered_by;
                healthy.shuffle(&mut rand::rng());
                let ttl = secs(dns.service_ttl_for(&service));
                Ok(answer::service(q, healthy, ttl))
            }
            Lookup::Node { node, dc } => {
                q.dc = dc
                    .clone()
                    .unwrap_or_else(|| self.source.local_dc().to_string());
                let found = self.source.node(dc.as_deref(), &node).await?;
                Ok(answer::node(q, found, node_ttl))
            }
            Lookup::Addr { ip } => Ok(answer::addr(q, ip, node_ttl)),
            Lookup::Query { name, dc } => {
                q.dc = dc
                    .clone()
                    .unwrap_or_else(|| self.source.local_dc().to_string());
                let Some(found) = self.source.query(dc.as_deref(), &name).await? else {
                    return Ok(Reply::nxdomain());
                };
                // A failover answer names the datacenter it came from.
                if !found.datacenter.is_empty() {
                    q.dc.clone_from(&found.datacenter);
                }
                let ttl = found
                    .ttl
                    .map_or_else(|| secs(dns.service_ttl_for(&found.service)), secs);
                // The query chose, filtered and ordered its instances; DNS keeps its order.
                Ok(answer::service(q, found.instances, ttl))
            }
            Lookup::Apex => {
                let servers = self.source.instances(None, "consul").await?;
                let servers = answer::healthy(servers, None, false);
                Ok(answer::apex(q, &servers, &self.soa(), node_ttl))
            }
            Lookup::Invalid => Ok(Reply::nxdomain()),
        }
    }

    /// Sends `query` on to the recursors and relays what they say.
    async fn recurse(&self, req: &Request) -> Result<Message, ResponseCode> {
        self.stats.recursed.fetch_add(1, Ordering::Relaxed);
        let tcp = req.protocol() != Protocol::Udp;
        self.recursors.ask(req.as_slice(), tcp).await.map_err(|e| {
            tracing::debug!(cause = %e, "recursion failed");
            ResponseCode::ServFail
        })
    }
}

/// Consul's debug line for every question answered (`agent.dns: request served from
/// client`), from the handler and, for cached answers, from the socket loops.
pub(super) fn served(
    name: &str,
    qtype: RecordType,
    client: std::net::SocketAddr,
    network: Protocol,
    latency: std::time::Duration,
) {
    tracing::debug!(
        name,
        r#type = %qtype,
        latency = ?latency,
        client = %client,
        client_network = match network {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            _ => "other",
        },
        "request served from client"
    );
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[async_trait::async_trait]
impl RequestHandler for ConsulDns {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        req: &Request,
        handle: R,
    ) -> ResponseInfo {
        self.respond(req, handle).await.0
    }
}

/// Whether the answer to `lookup` is read only from this server's own state (and so may be
/// cached): service and node lookups in the local datacenter without nearest failover,
/// and `.addr.` names. Prepared queries are not (their failover asks other datacenters).
fn local_only(lookup: &Lookup, dns: &DnsConfig, local_dc: &str) -> bool {
    let here = |dc: &Option<String>| dc.as_deref().is_none_or(|d| d == local_dc);
    match lookup {
        Lookup::Service { dc, .. } => match dc.as_deref() {
            None => !dns.nearest_failover(),
            Some(d) => d == local_dc,
        },
        Lookup::Node { dc, .. } => here(dc),
        Lookup::Addr { .. } => true,
        Lookup::Query { .. } | Lookup::Apex | Lookup::Invalid => false,
    }
}

impl ConsulDns {
    /// Answers `req` through `handle`; also says whether the reply may be cached, and at
    /// which generation (read before the catalog, so a later write always invalidates).
    pub(super) async fn respond<R: ResponseHandler>(
        &self,
        req: &Request,
        mut handle: R,
    ) -> (ResponseInfo, Option<Generation>) {
        let generation = self.generation();
        self.stats.queries.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let mut meta = Metadata::response_from_request(&req.metadata);
        meta.recursion_available = !self.recursors.is_empty();
        let edns = req.edns.as_ref().map(|client| {
            let mut e = Edns::new();
            e.set_max_payload(client.max_payload().max(512));
            e
        });
        let info = req.request_info();
        // Exactly one question is echoed, encoded afresh (`question_section`). Any other
        // number is FORMERR with none: echoed, a dozen long ones outgrow a 512-byte UDP
        // reply, which hickory then replaces with a question-less SERVFAIL.
        let section = question_section(match &info {
            Ok(_) => req.queries.queries(),
            Err(_) => &[],
        });
        let mut builder = match &section {
            Ok(queries) => MessageResponseBuilder::new(queries, None),
            // Parsed names re-encode within their limits and no questions are no bytes, so
            // this does not happen; if it did, hickory's verbatim echo is what it was before.
            Err(e) => {
                tracing::warn!(cause = %e, "DNS question not re-encoded");
                MessageResponseBuilder::from_message_request(req)
            }
        };
        if let Some(e) = &edns {
            builder.edns(e);
        }
        let info = match info {
            Ok(info) if req.metadata.op_code == OpCode::Query => info,
            Ok(_) => {
                let info = reply_code(&mut handle, builder, meta, ResponseCode::NotImp).await;
                return (info, None);
            }
            Err(_) => {
                let info = reply_code(&mut handle, builder, meta, ResponseCode::FormErr).await;
                return (info, None);
            }
        };
        let qtype = info.query.query_type();
        let asked = Name::from(info.query.name().clone());
        let asked_text = asked.to_ascii();
        let name = info.query.original().name().clone();
        let parsed = name::parse(
            &asked_text,
            &self.settings.domains,
            qtype == RecordType::SRV,
        );
        // Consul's timings of answered names: its own domain's, and reverse lookups.
        let metric = match &parsed {
            Parsed::Catalog { .. } => Some("consul.dns.domain_query"),
            Parsed::Reverse(_) => Some("consul.dns.ptr_query"),
            Parsed::Outside => None,
        };
        let mut q = Question {
            name,
            qtype,
            domain: self.settings.domains[0].clone(),
            dc: self.source.local_dc().to_string(),
        };
        let mut cacheable = false;
        let result = match parsed {
            Parsed::Catalog { lookup, domain } => {
                q.domain = domain;
                cacheable = local_only(&lookup, &self.settings.dns, self.source.local_dc());
                self.catalog(&mut q, lookup).await
            }
            Parsed::Reverse(ip) => match self.source.owners_of(ip).await {
                Ok(owners) if owners.is_empty() && !self.recursors.is_empty() => {
                    return (self.relay(req, &mut handle, builder, meta).await, None);
                }
                Ok(owners) => Ok(answer::ptr(&q, &owners, secs(self.settings.dns.node_ttl))),
                Err(e) => Err(e),
            },
            Parsed::Outside if self.recursors.is_empty() => {
                let info = reply_code(&mut handle, builder, meta, ResponseCode::Refused).await;
                return (info, None);
            }
            Parsed::Outside => return (self.relay(req, &mut handle, builder, meta).await, None),
        };
        let mut reply = match result {
            Ok(r) => r,
            // Another datacenter nobody can reach is a name that does not exist here.
            Err(RpcError::NoPathToDatacenter(_)) => Reply::nxdomain(),
            Err(e) => {
                tracing::warn!(name = %asked_text, cause = %e, "DNS lookup failed");
                Reply::error(ResponseCode::ServFail)
            }
        };
        if !self.settings.dns.enable_additional_node_meta_txt {
            reply
                .additionals
                .retain(|r| r.record_type() != RecordType::TXT);
        }
        let kept = (reply.answers.len(), reply.additionals.len());
        let limits = self.limits();
        trim::limit_addresses(&mut reply, limits.a_record_limit);
        let transport = match req.protocol() {
            Protocol::Udp => Transport::udp(req.edns.as_ref().map(Edns::max_payload)),
            _ => Transport::Tcp,
        };
        let frame = Frame {
            qname: &q.name,
            opt_len: if edns.is_some() { trim::OPT_LEN } else { 0 },
        };
        reply.truncated = trim::trim(&mut reply, &frame, transport, &limits);
        self.count(&reply);
        // Only whole positive answers: a trimmed one would freeze which records were kept,
        // a negative one carries the SOA, whose serial is the time.
        cacheable = cacheable
            && reply.rcode == ResponseCode::NoError
            && !reply.soa
            && !reply.truncated
            && kept == (reply.answers.len(), reply.additionals.len());
        meta.authoritative = true;
        meta.response_code = reply.rcode;
        // Consul trims silently unless asked to say so (`enable_truncate`, default false).
        meta.truncation = reply.truncated && self.settings.dns.enable_truncate;
        let soa: Vec<Record> = if reply.soa {
            answer::soa_record(&q.domain, &self.soa())
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        let resp = builder.build(
            meta,
            reply.answers.iter(),
            std::iter::empty(),
            soa.iter(),
            reply.additionals.iter(),
        );
        let info = send(&mut handle, resp, meta).await;
        if let Some(metric) = metric {
            crate::telemetry::sample_since(metric, &[("node", self.source.node_name())], started);
        }
        served(
            &asked_text,
            qtype,
            req.src(),
            req.protocol(),
            started.elapsed(),
        );
        (info, generation.filter(|_| cacheable))
    }

    fn count(&self, reply: &Reply) {
        match reply.rcode {
            ResponseCode::NXDomain => self.stats.nxdomain.fetch_add(1, Ordering::Relaxed),
            ResponseCode::ServFail => self.stats.servfail.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        if reply.truncated {
            self.stats.truncated.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Relays a recursor's answer (or SERVFAIL) to the client.
    async fn relay<R: ResponseHandler>(
        &self,
        req: &Request,
        handle: &mut R,
        builder: MessageResponseBuilder<'_>,
        mut meta: Metadata,
    ) -> ResponseInfo {
        let msg = match self.recurse(req).await {
            Ok(m) => m,
            Err(code) => {
                self.stats.servfail.fetch_add(1, Ordering::Relaxed);
                return reply_code(handle, builder, meta, code).await;
            }
        };
        meta.response_code = msg.metadata.response_code;
        meta.truncation = msg.metadata.truncation;
        meta.authoritative = false;
        let resp = builder.build(
            meta,
            msg.answers.iter(),
            msg.authorities.iter(),
            std::iter::empty(),
            msg.additionals.iter(),
        );
        send(handle, resp, meta).await
    }
}

/// The question section of a reply: `asked`, encoded afresh without name compression.
///
/// hickory's `MessageResponseBuilder::from_message_request` echoes the client's question bytes
/// verbatim. A client may compress its question name with a pointer, and the only place a
/// pointer in the first question can reach is the header (offsets below 12): the query parses,
/// but the reply's header differs (QR and AA set, other counts), so the same pointer names
/// other bytes there and the reply is malformed. Fuzzing found `big.service.consu…` ending in
/// a pointer to offset 2, the flags byte, which in the reply read as label code 0x81.
/// Re-encoded from the parsed question, the name is the one the client asked, in its case,
/// as Consul (miekg/dns re-packs the question) answers it.
pub(super) fn question_section(asked: &[LowerQuery]) -> Result<Queries, ProtoError> {
    let mut bytes = Vec::new();
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    for q in asked {
        q.emit(&mut encoder)?;
    }
    Ok(Queries::read(&mut BinDecoder::new(&bytes), asked.len())?)
}

async fn reply_code<R: ResponseHandler>(
    handle: &mut R,
    builder: MessageResponseBuilder<'_>,
    mut meta: Metadata,
    code: ResponseCode,
) -> ResponseInfo {
    meta.response_code = code;
    send(handle, builder.build_no_records(meta), meta).await
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    resp: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    meta: Metadata,
) -> ResponseInfo {
    match handle.send_response(resp).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(cause = %e, "DNS reply not sent");
            let mut header = hickory_server::proto::op::Header {
                metadata: meta,
                counts: Default::default(),
            };
            header.metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(header)
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_server::proto::op::{Message, Metadata, ResponseCode};
    use hickory_server::proto::serialize::binary::BinEncoder;
    use hickory_server::zone_handler::MessageResponseBuilder;

    use super::*;

    /// Found by `fuzz/fuzz_targets/dns_request.rs` (input kept in `fuzz/regressions/`): the
    /// question `big.service.consu…` ends in a compression pointer to offset 2 of the query,
    /// its flags. Echoed verbatim, the reply's flags (0x81) sat where a label length belongs
    /// and the reply did not parse; re-encoded, it carries the name the query parsed to.
    #[test]
    fn a_question_compressed_into_the_header_is_echoed_as_the_name_it_parsed_to() {
        let found = include_bytes!(
            "../../../fuzz/regressions/dns_request/crash-bece9405cdd0e918656d193529f08b004a15cf78"
        );
        let src = "192.0.2.99:53000".parse().expect("literal address");
        let req = Request::from_bytes(found.to_vec(), src, Protocol::Udp).expect("a query");
        let asked: Vec<_> = req
            .queries
            .queries()
            .iter()
            .map(|q| q.original().clone())
            .collect();
        assert_eq!(asked.len(), 1);
        assert!(asked[0].name().to_ascii().starts_with("big.service.consu"));

        let section = question_section(req.queries.queries()).expect("re-encoded");
        let mut meta = Metadata::response_from_request(&req.metadata);
        meta.response_code = ResponseCode::Refused;
        let reply = MessageResponseBuilder::new(&section, None).build_no_records(meta);
        let mut bytes = Vec::new();
        reply
            .destructive_emit(&mut BinEncoder::new(&mut bytes))
            .expect("encoded");
        let parsed = Message::from_vec(&bytes).expect("the reply parses");
        assert_eq!(parsed.queries, asked);
        assert_eq!(parsed.metadata.response_code, ResponseCode::Refused);
    }

    #[test]
    fn no_questions_are_an_empty_section() {
        let section = question_section(&[]).expect("nothing to encode");
        assert!(section.is_empty());
        assert!(section.as_bytes().is_empty());
    }
}
