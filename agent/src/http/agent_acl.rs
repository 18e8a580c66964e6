//! What the agent's own write endpoints need (reference/acl.md §5.3 row "Agent", Consul's
//! `vetServiceRegister`/`vetServiceUpdate`/`vetCheckRegister`/`vetCheckUpdate`): service
//! writes on every name a registration writes (a proxy's destination, a `sidecar_service`),
//! and on the service a registration replaces; checks on their service when bound to one,
//! else on this node; updates and deregistrations on what exists, an unknown ID answered
//! 404 first. Also the token a registration is kept with for anti-entropy (§5.8).

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::error::ApiError;
use crate::acl::TokenSource;
use crate::catalog::Service;
use crate::local::Registration;
use crate::local::sync_acl::service_names;

/// Registering `service` (with its checks): service:write on each name it writes and on
/// the name of the service it replaces by ID.
pub(super) fn vet_service_register(
    st: &ApiState,
    authz: &Authz,
    service: &Service,
) -> Result<(), ApiError> {
    for name in service_names(service) {
        authz.check(Resource::Service, &name, Need::Write)?;
    }
    if let Some(old) = st.local.state.service(&service.id)
        && old.service != service.service
    {
        authz.check(Resource::Service, &old.service, Need::Write)?;
    }
    Ok(())
}

/// Changing the existing service `id`: 404 if unknown, else service:write on its name.
pub(super) fn vet_service_update(st: &ApiState, authz: &Authz, id: &str) -> Result<(), ApiError> {
    let Some(s) = st.local.state.service(id) else {
        return Err(ApiError::not_found(format!(
            "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
        )));
    };
    authz.check(Resource::Service, &s.service, Need::Write)
}

/// A check bound to `service_id` (or to the node when empty): service:write on that
/// service's name, else node:write on this node.
pub(super) fn vet_check_target(
    st: &ApiState,
    authz: &Authz,
    service_id: &str,
) -> Result<(), ApiError> {
    match st
        .local
        .state
        .service(service_id)
        .filter(|_| !service_id.is_empty())
    {
        Some(s) => authz.check(Resource::Service, &s.service, Need::Write),
        None => authz.check(Resource::Node, &st.node_name, Need::Write),
    }
}

/// Changing the existing check `id`: 404 if unknown, else as [`vet_check_target`].
pub(super) fn vet_check_update(st: &ApiState, authz: &Authz, id: &str) -> Result<(), ApiError> {
    let Some(c) = st.local.state.check(id) else {
        return Err(ApiError::not_found(format!(
            "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
        )));
    };
    vet_check_target(st, authz, &c.check.service_id)
}

/// The registration an API write is kept with: the request's own token, if it named one
/// (otherwise the entry follows the agent's `default` token, whatever it is then).
pub(super) fn registration(authz: &Authz) -> Registration {
    Registration {
        token: match authz.source {
            TokenSource::Request => authz.secret.clone(),
            TokenSource::AgentDefault | TokenSource::Anonymous => String::new(),
        },
        from_config: false,
    }
}
