//! DNS answers built from catalog rows, Consul's way (reference/consul.md §1.9, §4.3):
//! healthy instances only, shuffled, one A/AAAA per distinct address, one SRV per distinct
//! (node, address, port) with its target's address in the additional section, node meta as
//! RFC 1464 TXT, negative answers with the SOA in the authority section. Size limits are
//! [`super::trim`]'s. Pure: records in, records out; the caller shuffles.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};

use super::name::ip_hex;
use super::source::{Instance, NodeRecord, Owner};
use crate::catalog::HealthStatus;

/// What a reply holds before it is encoded.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    /// NOERROR, NXDOMAIN, ...
    pub(super) rcode: ResponseCode,
    /// Answer section.
    pub(super) answers: Vec<Record>,
    /// Additional section (SRV targets' addresses, node meta).
    pub(super) additionals: Vec<Record>,
    /// Put the domain's SOA in the authority section (negative and empty answers).
    pub(super) soa: bool,
    /// Answers were dropped to fit the transport ([`super::trim`]); TC is set only with
    /// `dns_config.enable_truncate`, as Consul.
    pub(super) truncated: bool,
}

impl Reply {
    /// A reply with `answers` (NOERROR; the SOA goes along when there are none).
    pub(super) fn records(answers: Vec<Record>, additionals: Vec<Record>) -> Self {
        let soa = answers.is_empty();
        Self {
            rcode: ResponseCode::NoError,
            answers,
            additionals,
            soa,
            truncated: false,
        }
    }

    /// NXDOMAIN with the SOA.
    pub(super) fn nxdomain() -> Self {
        Self {
            rcode: ResponseCode::NXDomain,
            answers: Vec::new(),
            additionals: Vec::new(),
            soa: true,
            truncated: false,
        }
    }

    /// An error code with nothing else (REFUSED, SERVFAIL).
    pub(super) fn error(rcode: ResponseCode) -> Self {
        Self {
            rcode,
            answers: Vec::new(),
            additionals: Vec::new(),
            soa: false,
            truncated: false,
        }
    }
}

/// The question being answered.
#[derive(Debug, Clone)]
pub(super) struct Question {
    /// The name as asked (answers carry it).
    pub(super) name: Name,
    /// The type asked.
    pub(super) qtype: RecordType,
    /// The domain the name used, e.g. `consul.`.
    pub(super) domain: String,
    /// The datacenter answering (for SRV target names).
    pub(super) dc: String,
}

impl Question {
    /// `<first>.<kind>.<dc>.<domain>`, e.g. `web-1.node.dc1.consul.`.
    fn target(&self, first: &str, kind: &str) -> Option<Name> {
        Name::from_ascii(format!("{first}.{kind}.{}.{}", self.dc, self.domain)).ok()
    }
}

/// The instances DNS may hand out: not critical (nor in maintenance), not warning when
/// `only_passing`, carrying `tag` (case-insensitive) when one is asked.
pub(super) fn healthy(
    instances: Vec<Instance>,
    tag: Option<&str>,
    only_passing: bool,
) -> Vec<Instance> {
    instances
        .into_iter()
        .filter(|i| match i.status {
            HealthStatus::Passing => true,
            HealthStatus::Warning => !only_passing,
            HealthStatus::Critical | HealthStatus::Maintenance => false,
        })
        .filter(|i| tag.is_none_or(|t| i.tags.iter().any(|x| x.eq_ignore_ascii_case(t))))
        .collect()
}

/// A service lookup over already-filtered and ordered `instances` (the caller shuffles, or
/// a prepared query orders them); NXDOMAIN when there are none.
pub(super) fn service(q: &Question, instances: Vec<Instance>, ttl: u32) -> Reply {
    if instances.is_empty() {
        return Reply::nxdomain();
    }
    if q.qtype == RecordType::SRV {
        return srv(q, &instances, ttl);
    }
    let mut seen = HashSet::new();
    let answers = instances
        .iter()
        .filter(|i| seen.insert(address_of(i).to_string()))
        .flat_map(|i| address_records(&q.name, address_of(i), q.qtype, ttl))
        .collect();
    Reply::records(answers, Vec::new())
}

/// The address an instance is reached at: its own, else its node's.
fn address_of(i: &Instance) -> &str {
    if i.service_address.is_empty() {
        &i.node_address
    } else {
        &i.service_address
    }
}

/// SRV answers as Consul's `serviceSRVRecords`: one per distinct (node, service address,
/// port), so two instances on one node with different ports are two answers. Each answer
/// brings its own target's records into the additional section, even when another answer
/// already brought the same ones: Consul does, and load balancers that resolve backends
/// through SRV count on one address per SRV record. Trimming ([`super::trim`]) reduces them
/// to one per target, again as Consul.
fn srv(q: &Question, instances: &[Instance], ttl: u32) -> Reply {
    let mut answers = Vec::new();
    let mut additionals = Vec::new();
    let mut handled = HashSet::new();
    for i in instances {
        if !handled.insert((i.node.as_str(), i.service_address.as_str(), i.port)) {
            continue;
        }
        let addr = address_of(i);
        let own_ip = !i.service_address.is_empty() && i.service_address != i.node_address;
        let target = match addr.parse::<IpAddr>() {
            Ok(ip) if own_ip => q.target(&ip_hex(ip), "addr"),
            Ok(_) => q.target(&i.node, "node"),
            // A hostname is its own target; a resolver follows it.
            Err(_) => Name::from_ascii(fqdn(addr)).ok(),
        };
        let Some(target) = target else { continue };
        answers.push(Record::from_rdata(
            q.name.clone(),
            ttl,
            RData::SRV(SRV::new(1, 1, i.port, target.clone())),
        ));
        if addr.parse::<IpAddr>().is_ok() {
            additionals.extend(address_records(&target, addr, RecordType::ANY, ttl));
            if !own_ip {
                additionals.extend(txt_records(&target, &i.node_meta, ttl));
            }
        }
    }
    Reply::records(answers, additionals)
}

/// A node lookup; NXDOMAIN when the node does not exist.
pub(super) fn node(q: &Question, node: Option<NodeRecord>, ttl: u32) -> Reply {
    let Some(n) = node else {
        return Reply::nxdomain();
    };
    let mut answers = address_records(&q.name, &n.address, q.qtype, ttl);
    let mut additionals = Vec::new();
    let meta = txt_records(&q.name, &n.meta, ttl);
    match q.qtype {
        RecordType::TXT | RecordType::ANY => answers.extend(meta),
        _ if !answers.is_empty() => additionals = meta,
        _ => {}
    }
    Reply::records(answers, additionals)
}

/// `<hex>.addr.<dc>.<domain>`: the address the name encodes.
pub(super) fn addr(q: &Question, ip: IpAddr, ttl: u32) -> Reply {
    Reply::records(
        address_records(&q.name, &ip.to_string(), q.qtype, ttl),
        Vec::new(),
    )
}

/// A reverse lookup: every node and service that has the address.
pub(super) fn ptr(q: &Question, owners: &[Owner], ttl: u32) -> Reply {
    if owners.is_empty() {
        return Reply::nxdomain();
    }
    if !matches!(q.qtype, RecordType::PTR | RecordType::ANY) {
        return Reply::records(Vec::new(), Vec::new());
    }
    let answers = owners
        .iter()
        .filter_map(|o| match o {
            Owner::Node(n) => q.target(n, "node"),
            Owner::Service(s) => q.target(s, "service"),
        })
        .map(|target| Record::from_rdata(q.name.clone(), ttl, RData::PTR(PTR(target))))
        .collect();
    Reply::records(answers, Vec::new())
}

/// The domain itself: its SOA, and the servers as its name servers (with glue).
pub(super) fn apex(q: &Question, servers: &[Instance], soa: &SoaTimers, ttl: u32) -> Reply {
    let mut answers = Vec::new();
    let mut additionals = Vec::new();
    if matches!(q.qtype, RecordType::SOA | RecordType::ANY) {
        answers.extend(soa_record(&q.domain, soa));
    }
    if matches!(q.qtype, RecordType::NS | RecordType::ANY) {
        for s in servers.iter().take(3) {
            let Some(target) = q.target(&s.node, "node") else {
                continue;
            };
            answers.push(Record::from_rdata(
                q.name.clone(),
                ttl,
                RData::NS(NS(target.clone())),
            ));
            additionals.extend(address_records(
                &target,
                &s.node_address,
                RecordType::ANY,
                ttl,
            ));
        }
    }
    Reply::records(answers, additionals)
}

/// `dns_config.soa`.
#[derive(Debug, Clone, Copy)]
pub(super) struct SoaTimers {
    /// Refresh (s).
    pub(super) refresh: u32,
    /// Retry (s).
    pub(super) retry: u32,
    /// Expire (s).
    pub(super) expire: u32,
    /// Minimum and negative-cache TTL (s).
    pub(super) min_ttl: u32,
}

/// `<domain> SOA ns.<domain> postmaster.<domain>`, serial = the current Unix time.
pub(super) fn soa_record(domain: &str, t: &SoaTimers) -> Option<Record> {
    let zone = Name::from_ascii(domain).ok()?;
    let mname = Name::from_ascii(format!("ns.{domain}")).ok()?;
    let rname = Name::from_ascii(format!("postmaster.{domain}")).ok()?;
    let serial = u32::try_from(crate::server::unix_ms() / 1000).unwrap_or(u32::MAX);
    let as_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let soa = SOA::new(
        mname,
        rname,
        serial,
        as_i32(t.refresh),
        as_i32(t.retry),
        as_i32(t.expire),
        t.min_ttl,
    );
    Some(Record::from_rdata(zone, t.min_ttl, RData::SOA(soa)))
}

/// A/AAAA (or a CNAME for a hostname) for `addr`, as far as `qtype` asks for them.
fn address_records(name: &Name, addr: &str, qtype: RecordType, ttl: u32) -> Vec<Record> {
    let any = qtype == RecordType::ANY;
    let rdata = match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) if any || qtype == RecordType::A => RData::A(A(v4)),
        Ok(IpAddr::V6(v6)) if any || qtype == RecordType::AAAA => RData::AAAA(AAAA(v6)),
        Ok(_) => return Vec::new(),
        Err(_) if addr.is_empty() => return Vec::new(),
        Err(_) => match Name::from_ascii(fqdn(addr)) {
            Ok(target) => RData::CNAME(CNAME(target)),
            Err(_) => return Vec::new(),
        },
    };
    vec![Record::from_rdata(name.clone(), ttl, rdata)]
}

/// Node meta as RFC 1464 `key=value` TXT records; `rfc1035-` keys give the value alone.
fn txt_records(name: &Name, meta: &BTreeMap<String, String>, ttl: u32) -> Vec<Record> {
    meta.iter()
        .map(|(k, v)| {
            let text = match k.strip_prefix("rfc1035-") {
                Some(_) => v.clone(),
                None => format!("{k}={v}"),
            };
            Record::from_rdata(name.clone(), ttl, RData::TXT(TXT::new(vec![text])))
        })
        .collect()
}

fn fqdn(host: &str) -> String {
    if host.ends_with('.') {
        host.to_string()
    } else {
        format!("{host}.")
    }
}
