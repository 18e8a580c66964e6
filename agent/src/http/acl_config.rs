//! ACL rules of config entries (reference/acl.md §5.3, "Mesh"), after Consul's
//! `CanRead`/`CanWrite` per kind:
//!
//! | kinds | read | write |
//! |---|---|---|
//! | service-defaults, service-router, -splitter, -resolver, service-intentions | service:read on the name | service:write on the name |
//! | ingress-, terminating-, api-gateway, bound-api-gateway, http-route, tcp-route | service:read on the name | mesh:write |
//! | proxy-defaults, mesh | anyone | mesh:write |
//! | exported-services, sameness-group, jwt-provider, inline- and file-system-certificate | mesh:read | mesh:write |
//!
//! `mesh` rules fall back to `operator` when unset (the authorizer does that), so a token
//! with `operator = "write"` and no `mesh` rule manages the global kinds, as in Consul.
//! Intentions are checked as service rules on the destination (Meridian's rules have no
//! separate `intentions` level yet). A single read is denied before existence is known;
//! lists keep the entries the token may read.

use meridian_acl::{Authorizer, Need, Resource};

use super::acl_authz::Authz;
use super::error::ApiError;

/// How a kind is guarded.
enum Guard {
    /// service:* on the entry's name.
    Service,
    /// Read service:read on the name, write mesh:write.
    Gateway,
    /// Read open, write mesh:write.
    OpenMesh,
    /// mesh:* (unlabeled).
    Mesh,
}

fn guard(kind: &str) -> Guard {
    match kind {
        "service-defaults" | "service-router" | "service-splitter" | "service-resolver"
        | "service-intentions" => Guard::Service,
        "ingress-gateway"
        | "terminating-gateway"
        | "api-gateway"
        | "bound-api-gateway"
        | "http-route"
        | "tcp-route" => Guard::Gateway,
        "proxy-defaults" | "mesh" => Guard::OpenMesh,
        _ => Guard::Mesh,
    }
}

/// What reading entry `kind`/`name` needs; `None`: nothing.
fn read_need(kind: &str) -> Option<Resource> {
    match guard(kind) {
        Guard::Service | Guard::Gateway => Some(Resource::Service),
        Guard::OpenMesh => None,
        Guard::Mesh => Some(Resource::Mesh),
    }
}

/// What writing it needs.
fn write_need(kind: &str) -> Resource {
    match guard(kind) {
        Guard::Service => Resource::Service,
        Guard::Gateway | Guard::OpenMesh | Guard::Mesh => Resource::Mesh,
    }
}

/// Whether `authz` may read entry `kind`/`name` (lists).
pub(super) fn readable(authz: &Authorizer, kind: &str, name: &str) -> bool {
    read_need(kind).is_none_or(|r| authz.allowed(r, name, Need::Read))
}

/// A single read: Consul's 403 when the token may not.
pub(super) fn check_read(authz: &Authz, kind: &str, name: &str) -> Result<(), ApiError> {
    match read_need(kind) {
        Some(r) => authz.check(r, name, Need::Read),
        None => Ok(()),
    }
}

/// Creating, changing or deleting entry `kind`/`name`.
pub(super) fn check_write(authz: &Authz, kind: &str, name: &str) -> Result<(), ApiError> {
    authz.check(write_need(kind), name, Need::Write)
}

#[cfg(test)]
mod tests {
    use meridian_acl::{Root, Rules};

    use super::*;

    fn authz(rules: &str) -> Authorizer {
        let rules = Rules::parse(rules).expect("rules");
        Authorizer::new(rules, Root::Deny, Some("t".into()))
    }

    #[test]
    fn kinds_follow_consuls_can_read_and_can_write() {
        let web = authz(r#"service "web" { policy = "write" }"#);
        assert!(readable(&web, "service-defaults", "web"));
        assert!(!readable(&web, "service-defaults", "db"));
        assert!(readable(&web, "proxy-defaults", "global"));
        assert!(!readable(&web, "exported-services", "default"));
        assert!(web.allowed(write_need("service-router"), "web", Need::Write));
        assert!(!web.allowed(write_need("proxy-defaults"), "global", Need::Write));
        assert!(!web.allowed(write_need("ingress-gateway"), "web", Need::Write));
        // mesh falls back to operator.
        let op = authz(r#"operator = "write""#);
        assert!(op.allowed(write_need("mesh"), "mesh", Need::Write));
        assert!(readable(&op, "jwt-provider", "okta"));
        assert!(!readable(&op, "service-defaults", "web"));
    }
}
