//! What a DNS question asks, parsed from its name the way Consul's DNS server does
//! (reference/consul.md §1.9). Pure: no catalog, no I/O.
//!
//! ```text
//!   [tag.]redis.service[.dc1[.dc]].consul        service (A/AAAA, SRV when asked)
//!   _redis._primary.service[.dc1].consul         RFC 2782 (`_tcp` means no tag)
//!   web-1.node[.dc1[.dc]].consul                 node
//!   7f000001.addr.dc1.consul                     an address encoded in hex
//!   my-query.query[.dc1].consul                  prepared query
//!   consul.                                      the domain itself (SOA, NS)
//!   1.0.0.127.in-addr.arpa.                      reverse lookup
//! ```
//!
//! Anything else under the domain (too many labels, an empty service, a bad address) is
//! [`Lookup::Invalid`], which answers NXDOMAIN; a name outside the domain is
//! [`Parsed::Outside`], which goes to the recursors.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A question about the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Instances of a service, optionally with a tag.
    Service {
        /// Service name.
        service: String,
        /// Only instances with this tag.
        tag: Option<String>,
        /// Datacenter (`None`: the agent's own).
        dc: Option<String>,
    },
    /// A node's addresses and metadata.
    Node {
        /// Node name.
        node: String,
        /// Datacenter.
        dc: Option<String>,
    },
    /// An address encoded in the name (`<hex>.addr.<dc>.<domain>`).
    Addr {
        /// The address.
        ip: IpAddr,
    },
    /// A prepared query by name or ID.
    Query {
        /// The query's name or ID.
        name: String,
        /// Datacenter.
        dc: Option<String>,
    },
    /// The domain itself (SOA, NS).
    Apex,
    /// A name under the domain that means nothing: NXDOMAIN.
    Invalid,
}

/// The parse of a whole question name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Parsed {
    /// A name under one of the agent's domains; answers use that `domain` (with its dot).
    Catalog {
        /// What is asked.
        lookup: Lookup,
        /// The domain the question used (`consul.` or the `alt_domain`).
        domain: String,
    },
    /// A reverse lookup (`in-addr.arpa.` / `ip6.arpa.`) of this address.
    Reverse(IpAddr),
    /// A name outside the agent's domains (recursors answer it).
    Outside,
}

/// Parses `name` (any case, with or without the final dot) against `domains` (lowercase,
/// each ending in a dot). `srv` says whether the question type is SRV: only then may the
/// `service` label be left out of an RFC 2782 name, as in Consul.
pub(super) fn parse(name: &str, domains: &[String], srv: bool) -> Parsed {
    let lower = name.to_ascii_lowercase();
    let fqdn = if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    };
    if let Some(ip) = reverse(&fqdn) {
        return Parsed::Reverse(ip);
    }
    for domain in domains {
        let lookup = if fqdn == *domain {
            Lookup::Apex
        } else if let Some(rest) = fqdn.strip_suffix(&format!(".{domain}")) {
            lookup(rest, srv)
        } else {
            continue;
        };
        return Parsed::Catalog {
            lookup,
            domain: domain.clone(),
        };
    }
    Parsed::Outside
}

/// The part of the name before the domain, e.g. `primary.redis.service.dc1`.
fn lookup(rest: &str, srv: bool) -> Lookup {
    let labels: Vec<&str> = rest.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return Lookup::Invalid;
    }
    // The kind is the rightmost kind label; an RFC 2782 name may omit `service` for SRV.
    let mut found = None;
    for (i, label) in labels.iter().enumerate().rev() {
        if matches!(*label, "service" | "node" | "query" | "addr") {
            found = Some((i, *label, i + 1));
            break;
        }
        if srv && label.starts_with('_') {
            found = Some((i + 1, "service", i + 1));
            break;
        }
    }
    let Some((end, kind, suffix_at)) = found else {
        return Lookup::Invalid;
    };
    let parts = &labels[..end];
    let Ok(dc) = datacenter(&labels[suffix_at..]) else {
        return Lookup::Invalid;
    };
    match kind {
        "service" => service(parts, dc),
        "node" if !parts.is_empty() => Lookup::Node {
            node: parts.join("."),
            dc,
        },
        // RFC 2782: _<query>._tcp.query...
        "query" => match parts {
            [q, proto] if q.len() > 1 && q.starts_with('_') && proto.starts_with('_') => {
                Lookup::Query {
                    name: q[1..].to_string(),
                    dc,
                }
            }
            [] => Lookup::Invalid,
            _ => Lookup::Query {
                name: parts.join("."),
                dc,
            },
        },
        "addr" => match parts {
            [hex] => hex_ip(hex).map_or(Lookup::Invalid, |ip| Lookup::Addr { ip }),
            _ => Lookup::Invalid,
        },
        _ => Lookup::Invalid,
    }
}

/// The labels after the kind: nothing, `<dc>`, or `<dc>.dc`.
fn datacenter(suffix: &[&str]) -> Result<Option<String>, ()> {
    match suffix {
        [] => Ok(None),
        [dc] | [dc, "dc"] => Ok(Some((*dc).to_string())),
        _ => Err(()),
    }
}

fn service(parts: &[&str], dc: Option<String>) -> Lookup {
    let (service, tag) = match parts {
        // RFC 2782: _service._protocol-or-tag
        [svc, tag] if svc.starts_with('_') && tag.starts_with('_') => {
            let tag = &tag[1..];
            (&svc[1..], (tag != "tcp" && tag != "udp").then_some(tag))
        }
        [svc] => (*svc, None),
        [tag, svc] => (*svc, Some(*tag)),
        _ => return Lookup::Invalid,
    };
    if service.is_empty() || tag.is_some_and(str::is_empty) {
        return Lookup::Invalid;
    }
    Lookup::Service {
        service: service.to_string(),
        tag: tag.map(str::to_string),
        dc,
    }
}

/// `c000020a` → 192.0.2.10; 32 hex digits → an IPv6 address.
fn hex_ip(hex: &str) -> Option<IpAddr> {
    match hex.len() {
        8 => u32::from_str_radix(hex, 16)
            .ok()
            .map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        32 => u128::from_str_radix(hex, 16)
            .ok()
            .map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        _ => None,
    }
}

/// The `<hex>` label of an `addr` name for `ip`.
pub(super) fn ip_hex(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{:08x}", u32::from(v4)),
        IpAddr::V6(v6) => format!("{:032x}", u128::from(v6)),
    }
}

/// `4.3.2.1.in-addr.arpa.` → 1.2.3.4; nibble-reversed `ip6.arpa.` names → IPv6.
fn reverse(fqdn: &str) -> Option<IpAddr> {
    if let Some(rest) = fqdn.strip_suffix(".in-addr.arpa.") {
        let octets: Vec<u8> = rest
            .split('.')
            .map(|o| o.parse::<u8>().ok())
            .collect::<Option<_>>()?;
        let [d, c, b, a] = octets[..] else {
            return None;
        };
        return Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
    }
    let rest = fqdn.strip_suffix(".ip6.arpa.")?;
    let nibbles: Vec<&str> = rest.split('.').collect();
    if nibbles.len() != 32 || nibbles.iter().any(|n| n.len() != 1) {
        return None;
    }
    let hex: String = nibbles.iter().rev().copied().collect();
    u128::from_str_radix(&hex, 16)
        .ok()
        .map(|v| IpAddr::V6(Ipv6Addr::from(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        vec!["consul.".into(), "alt.example.".into()]
    }

    fn lookup_of(name: &str) -> Lookup {
        lookup_srv(name, false)
    }

    fn lookup_srv(name: &str, srv: bool) -> Lookup {
        match parse(name, &domains(), srv) {
            Parsed::Catalog { lookup, .. } => lookup,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn svc(service: &str, tag: Option<&str>, dc: Option<&str>) -> Lookup {
        Lookup::Service {
            service: service.into(),
            tag: tag.map(Into::into),
            dc: dc.map(Into::into),
        }
    }

    #[test]
    fn service_names_in_every_form() {
        assert_eq!(lookup_of("redis.service.consul."), svc("redis", None, None));
        assert_eq!(lookup_of("REDIS.Service.Consul"), svc("redis", None, None));
        assert_eq!(
            lookup_of("primary.redis.service.consul."),
            svc("redis", Some("primary"), None)
        );
        assert_eq!(
            lookup_of("redis.service.dc1.consul."),
            svc("redis", None, Some("dc1"))
        );
        assert_eq!(
            lookup_of("v1.redis.service.dc2.dc.consul."),
            svc("redis", Some("v1"), Some("dc2"))
        );
        assert_eq!(
            lookup_of("_redis._tcp.service.consul."),
            svc("redis", None, None)
        );
        assert_eq!(
            lookup_of("_redis._primary.service.dc1.consul."),
            svc("redis", Some("primary"), Some("dc1"))
        );
    }

    #[test]
    fn rfc2782_without_the_service_label_only_for_srv() {
        assert_eq!(
            lookup_srv("_redis._tcp.consul.", true),
            svc("redis", None, None)
        );
        assert_eq!(
            lookup_srv("_redis._tcp.dc1.consul.", true),
            svc("redis", None, Some("dc1"))
        );
        assert_eq!(lookup_srv("_redis._tcp.consul.", false), Lookup::Invalid);
    }

    #[test]
    fn nodes_addrs_queries_and_the_apex() {
        assert_eq!(
            lookup_of("web-1.node.consul."),
            Lookup::Node {
                node: "web-1".into(),
                dc: None
            }
        );
        assert_eq!(
            lookup_of("web-1.node.dc1.dc.consul."),
            Lookup::Node {
                node: "web-1".into(),
                dc: Some("dc1".into())
            }
        );
        assert_eq!(
            lookup_of("c000020a.addr.dc1.consul."),
            Lookup::Addr {
                ip: "192.0.2.10".parse().expect("ip")
            }
        );
        assert_eq!(
            lookup_of("20010db8000000000000000000000001.addr.dc1.consul."),
            Lookup::Addr {
                ip: "2001:db8::1".parse().expect("ip")
            }
        );
        assert_eq!(
            lookup_of("geo-db.query.dc1.consul."),
            Lookup::Query {
                name: "geo-db".into(),
                dc: Some("dc1".into())
            }
        );
        assert_eq!(
            lookup_srv("_geo-db._tcp.query.consul.", true),
            Lookup::Query {
                name: "geo-db".into(),
                dc: None
            }
        );
        assert_eq!(lookup_of("consul."), Lookup::Apex);
        assert_eq!(ip_hex("192.0.2.10".parse().expect("ip")), "c000020a");
    }

    #[test]
    fn nonsense_under_the_domain_is_invalid() {
        for name in [
            "foo.consul.",
            "service.consul.",
            "a.b.redis.service.consul.",
            "redis.service.dc1.dc.extra.consul.",
            "redis.service.dc1.zz.consul.",
            "node.consul.",
            "zzzz.addr.dc1.consul.",
            "a..service.consul.",
        ] {
            assert_eq!(lookup_of(name), Lookup::Invalid, "{name}");
        }
    }

    #[test]
    fn the_alt_domain_is_remembered_and_other_names_are_outside() {
        assert_eq!(
            parse("redis.service.alt.example", &domains(), false),
            Parsed::Catalog {
                lookup: svc("redis", None, None),
                domain: "alt.example.".into()
            }
        );
        assert_eq!(parse("example.com.", &domains(), false), Parsed::Outside);
        assert_eq!(parse("notconsul.", &domains(), false), Parsed::Outside);
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            parse("10.2.0.192.in-addr.arpa.", &domains(), false),
            Parsed::Reverse("192.0.2.10".parse().expect("ip"))
        );
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
        assert_eq!(
            parse(v6, &domains(), false),
            Parsed::Reverse("2001:db8::1".parse().expect("ip"))
        );
        assert_eq!(
            parse("1.2.3.in-addr.arpa.", &domains(), false),
            Parsed::Outside
        );
    }
}
