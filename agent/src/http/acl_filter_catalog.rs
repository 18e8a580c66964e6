//! ACL pruning of catalog, health and coordinate reads (reference/acl.md §5.3 rows Catalog,
//! Health, Coordinate; §5.4): rows the token may not read are dropped before `?filter=`
//! sees them, never a 403, and a pruned answer says `X-Consul-Results-Filtered-By-ACLs:
//! true` when a token string was given (`acl_filter_kv::mark_filtered`).
//!
//! What a row needs, as Consul's `aclfilter`: a node row node:read; a service instance
//! node:read on its node and service:read on its name; a check node:read, plus service:read
//! when it belongs to a service; a coordinate node:read. `/v1/catalog/services` needs only
//! service:read on each name.
//!
//! The authorizer is the request's, resolved once before a blocking wait; every wake-up
//! prunes with it (§5.7), so a permission change applies from the next call.

use meridian_acl::{Need, Resource};

use super::acl_authz::Authz;
use crate::catalog::{Check, Node, Service};

/// A row whose visibility depends on the token.
pub(super) trait Readable {
    /// Whether `authz` may see this row.
    fn readable(&self, authz: &Authz) -> bool;
}

/// node:read on `node`.
pub(super) fn node_readable(authz: &Authz, node: &str) -> bool {
    authz.allowed(Resource::Node, node, Need::Read)
}

/// service:read on `service`.
pub(super) fn service_readable(authz: &Authz, service: &str) -> bool {
    authz.allowed(Resource::Service, service, Need::Read)
}

/// node:read on `node` and service:read on `service` (one service instance).
pub(super) fn instance_readable(authz: &Authz, node: &str, service: &str) -> bool {
    node_readable(authz, node) && service_readable(authz, service)
}

impl Readable for Node {
    fn readable(&self, authz: &Authz) -> bool {
        node_readable(authz, &self.node)
    }
}

impl Readable for Check {
    fn readable(&self, authz: &Authz) -> bool {
        node_readable(authz, &self.node)
            && (self.service_name.is_empty() || service_readable(authz, &self.service_name))
    }
}

/// Keeps the rows `authz` may read; the flag says whether any was dropped.
pub(super) fn prune<T: Readable>(authz: &Authz, rows: Vec<T>) -> (Vec<T>, bool) {
    let before = rows.len();
    let kept: Vec<T> = rows.into_iter().filter(|r| r.readable(authz)).collect();
    let pruned = kept.len() != before;
    (kept, pruned)
}

/// The services of one node as `authz` sees them: nothing when the node itself is not
/// readable (the caller answers as for a missing node), else the instances whose service
/// is readable. The flag says whether anything was dropped.
pub(super) fn node_services<'a>(
    authz: &Authz,
    node: &str,
    services: impl Iterator<Item = &'a Service>,
) -> Option<(Vec<&'a Service>, bool)> {
    if !node_readable(authz, node) {
        return None;
    }
    let mut pruned = false;
    let kept = services
        .filter(|s| {
            let ok = service_readable(authz, &s.service);
            pruned |= !ok;
            ok
        })
        .collect();
    Some((kept, pruned))
}
