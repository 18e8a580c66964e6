//! ACL vetting of `/v1/catalog/register` and `/v1/catalog/deregister` (reference/acl.md
//! §5.3 row Catalog; Consul's `vetRegisterWithACL` / `vetDeregisterWithACL`), against the
//! catalog as the leader has it, before the write is proposed. A refusal is Consul's 403
//! `Permission denied: ... lacks permission '<res>:write' on "<name>"`.
//!
//! - register: node:write when the node is new or its row would change (`SkipNodeUpdate`
//!   on an existing node changes nothing); service:write on the service, and on the
//!   service it replaces when its ID already names another; a check node:write when it is
//!   the node's, else service:write on the service it belongs to.
//! - deregister: node:write allows everything on the node; otherwise a check of a service
//!   needs service:write on that service, a service service:write on its name, and the
//!   rest (the node, a node check, something missing) is the node:write refusal. The
//!   precedence (check, then service, then node) is the one the catalog applies.
//!
//! With ACLs off nothing is read: the write goes on at once.

use meridian_acl::{Denied, Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::error::ApiError;
use crate::catalog::{DeregisterOp, RegisterOp, State};
use crate::rpc::Consistency;
use crate::server::ServerHandle;

/// `Ok` if `authz` may apply `op` on `server`'s catalog.
pub(super) async fn vet_register(
    st: &ApiState,
    authz: &Authz,
    server: &ServerHandle,
    op: &RegisterOp,
) -> Result<(), ApiError> {
    if !st.acl.settings().enabled {
        return Ok(());
    }
    let view = server.read(Consistency::Default).await?;
    register_allowed(authz, &view.state, op).map_err(deny)
}

/// `Ok` if `authz` may apply `op` on `server`'s catalog.
pub(super) async fn vet_deregister(
    st: &ApiState,
    authz: &Authz,
    server: &ServerHandle,
    op: &DeregisterOp,
) -> Result<(), ApiError> {
    if !st.acl.settings().enabled {
        return Ok(());
    }
    let view = server.read(Consistency::Default).await?;
    deregister_allowed(authz, &view.state, op).map_err(deny)
}

fn deny(d: Denied) -> ApiError {
    crate::acl::AclError::Denied(d).into()
}

fn write(authz: &Authz, resource: Resource, name: &str) -> Result<(), Denied> {
    authz.authorizer.check(resource, name, Need::Write)
}

fn register_allowed(authz: &Authz, s: &State, op: &RegisterOp) -> Result<(), Denied> {
    let name = op.node.node.as_str();
    let changes_node = match s.node(name) {
        None => true,
        Some(_) if op.skip_node_update => false,
        Some(have) => {
            let mut want = op.node.clone();
            want.create_index = have.create_index;
            want.modify_index = have.modify_index;
            want != *have
        }
    };
    if changes_node {
        write(authz, Resource::Node, name)?;
    }
    if let Some(svc) = &op.service {
        write(authz, Resource::Service, &svc.service)?;
        // Replacing an instance by ID is a delete of the old one.
        if let Some(old) = s.node_services(name).find(|o| o.id == svc.id) {
            write(authz, Resource::Service, &old.service)?;
        }
    }
    for check in &op.checks {
        if check.service_id.is_empty() {
            write(authz, Resource::Node, name)?;
            continue;
        }
        if op
            .service
            .as_ref()
            .is_some_and(|s| s.id == check.service_id)
        {
            continue; // vetted above
        }
        // A check of an unknown service is refused by the catalog itself.
        if let Some(other) = s.node_services(name).find(|o| o.id == check.service_id) {
            write(authz, Resource::Service, &other.service)?;
        }
    }
    Ok(())
}

fn deregister_allowed(authz: &Authz, s: &State, op: &DeregisterOp) -> Result<(), Denied> {
    let node = op.node.as_str();
    let node_write = write(authz, Resource::Node, node);
    if node_write.is_ok() {
        return Ok(());
    }
    let owner = if let Some(check_id) = &op.check_id {
        s.node_checks(node)
            .find(|c| &c.check_id == check_id && !c.service_id.is_empty())
            .map(|c| c.service_name.as_str())
    } else if let Some(service_id) = &op.service_id {
        s.node_services(node)
            .find(|x| &x.id == service_id)
            .map(|x| x.service.as_str())
    } else {
        None
    };
    match owner {
        Some(service) => write(authz, Resource::Service, service),
        None => node_write,
    }
}
