//! ACLs for DNS (reference/acl.md §5.6): a DNS question carries no token, so answers use
//! the agent's `acl.tokens.dns`, else `acl.tokens.default`, else the anonymous token,
//! resolved through the agent's one resolver (a server's own state, or its servers for a
//! client agent). Instances are kept only when the token may read both the service and the
//! node; a fully filtered service looks missing (NXDOMAIN).

use std::sync::Arc;

use meridian_acl::{Authorizer, Need, Resource};

use crate::acl::{AclError, Resolver};
use crate::rpc::{Router, RpcError};

/// The DNS side of the agent's ACLs: `None` answers everything (ACLs off or not wired).
#[derive(Clone, Default)]
pub(super) struct DnsAcl(pub(super) Option<Arc<Resolver>>);

impl DnsAcl {
    /// What DNS answers may show now (resolved once per question).
    pub(super) async fn authorizer(&self, router: &Router) -> Result<Arc<Authorizer>, RpcError> {
        let Some(resolver) = self.0.as_ref().filter(|r| r.settings().enabled) else {
            return Ok(Arc::new(Authorizer::manage()));
        };
        let secret = resolver.tokens().dns_token();
        resolver
            .resolve(router, &secret)
            .await
            .map_err(|e| match e {
                AclError::Rpc(rpc) => rpc,
                other => RpcError::Rejected(other.to_string()),
            })
    }
}

/// Whether an instance of `service` on `node` may be answered: service:read and node:read.
pub(super) fn instance_visible(authz: &Authorizer, service: &str, node: &str) -> bool {
    authz.allowed(Resource::Service, service, Need::Read)
        && authz.allowed(Resource::Node, node, Need::Read)
}
