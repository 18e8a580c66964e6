//! ACL rules of prepared queries (reference/acl.md §5.3): writes of a named query (or of a
//! template, whose empty name is the `query_prefix ""` rule) need query:write on the name,
//! nameless queries are open to whoever holds the ID; reads need query:read on the name
//! (nameless ones acl:write); the captured `Token` shows only with acl:write; execute
//! results, failover answers from other datacenters included, keep the instances whose
//! node and service the executing token may read.

use meridian_acl::{Authorizer, Need, Resource};

use super::acl_authz::Authz;
use super::error::ApiError;
use crate::catalog::{HealthEntry, PreparedQuery};

/// query:write for creating, changing or deleting `q`.
pub(super) fn check_write(authz: &Authz, q: &PreparedQuery) -> Result<(), ApiError> {
    if q.name.is_empty() && q.template.kind.is_empty() {
        return Ok(());
    }
    authz.check(Resource::Query, &q.name, Need::Write)
}

/// Whether `q` may be seen (listed, read, explained).
pub(super) fn readable(authz: &Authorizer, q: &PreparedQuery) -> bool {
    if q.name.is_empty() {
        return shows_token(authz);
    }
    authz.allowed(Resource::Query, &q.name, Need::Read)
}

/// Whether the captured `Token` is shown unredacted (acl:write).
pub(super) fn shows_token(authz: &Authorizer) -> bool {
    authz.allowed(Resource::Acl, "", Need::Write)
}

/// Keeps the instances whose node and service `authz` may read.
pub(super) fn filter_nodes(authz: &Authorizer, nodes: &mut Vec<HealthEntry>) {
    nodes.retain(|e| instance_readable(authz, &e.node.node, &e.service.service));
}

/// Whether an instance of `service` on `node` may be shown: node:read and service:read.
pub(super) fn instance_readable(authz: &Authorizer, node: &str, service: &str) -> bool {
    authz.allowed(Resource::Node, node, Need::Read)
        && authz.allowed(Resource::Service, service, Need::Read)
}
