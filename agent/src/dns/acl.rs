//! ACLs for DNS (reference/acl.md §5.6): a DNS question carries no token, so answers use
//! the agent's `acl.tokens.dns`, else `acl.tokens.default`, else the anonymous token,
//! resolved through the agent's one resolver (a server's own state, or its servers for a
//! client agent). Instances are kept only when the token may read both the service and the
//! node; a fully filtered service looks missing (NXDOMAIN). A prepared-query lookup filters
//! with the query's captured token when it has one, else with the DNS token.

use std::sync::Arc;

use meridian_acl::{Authorizer, Need, Resource};

use crate::acl::{AclError, Resolver};
use crate::rpc::{Router, RpcError};

/// The DNS side of the agent's ACLs: `None` answers everything (ACLs off or not wired).
#[derive(Clone, Default)]
pub(super) struct DnsAcl(pub(super) Option<Arc<Resolver>>);

impl DnsAcl {
    /// The resolver, while ACLs are on.
    fn enabled(&self) -> Option<&Resolver> {
        self.0.as_deref().filter(|r| r.settings().enabled)
    }

    /// The token DNS answers with (`""`: anonymous); `None` while ACLs are off. Sent along
    /// when a server or another datacenter is asked, so that it filters as this agent would.
    pub(super) fn secret(&self) -> Option<String> {
        Some(self.enabled()?.tokens().dns_token())
    }

    /// Moves whenever the DNS token may have changed (0 while ACLs are off).
    pub(super) fn version(&self) -> u64 {
        self.enabled().map_or(0, |r| r.tokens().version())
    }

    /// What DNS answers may show now (resolved once per question).
    pub(super) async fn authorizer(&self, router: &Router) -> Result<Arc<Authorizer>, RpcError> {
        let secret = self.secret().unwrap_or_default();
        self.authorizer_of(router, &secret).await
    }

    /// What `secret` may see (a prepared query's captured token, §5.6); everything while
    /// ACLs are off.
    pub(super) async fn authorizer_of(
        &self,
        router: &Router,
        secret: &str,
    ) -> Result<Arc<Authorizer>, RpcError> {
        let Some(resolver) = self.enabled() else {
            return Ok(Arc::new(Authorizer::manage()));
        };
        resolver.resolve(router, secret).await.map_err(|e| match e {
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
