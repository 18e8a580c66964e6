//! ACL writes through raft: the proposal of a `Command::Acl`, and how apply's refusals
//! (Consul's texts) map to HTTP per reference/acl.md §5.5: `Permission denied` → 403, the
//! "Cannot find ... to delete" texts → 404, everything else → 500.

use super::ApiState;
use super::error::ApiError;
use crate::catalog::acl::AclWrite;
use crate::catalog::{Command, Response as Applied};
use crate::rpc::RpcError;
use crate::server::ServerHandle;

/// The local server (ACL endpoints are answered by servers only).
pub(super) fn server(st: &ApiState) -> Result<&ServerHandle, ApiError> {
    Ok(st.router.server(None)?)
}

/// Proposes an ACL write; apply's refusal texts become 403/404/500 (§5.5).
pub(super) async fn propose(st: &ApiState, w: AclWrite) -> Result<u64, ApiError> {
    match server(st)?.apply(Command::Acl(w)).await {
        Ok((index, Applied::Ok | Applied::Bool(_))) => Ok(index),
        Ok((_, other)) => Err(ApiError::internal(format!(
            "unexpected ACL write result {other:?}"
        ))),
        Err(RpcError::Rejected(text)) => Err(refusal(text)),
        Err(e) => Err(e.into()),
    }
}

/// An apply refusal as Consul's HTTP layer answers it.
pub(super) fn refusal(text: String) -> ApiError {
    if text.contains("Permission denied") || text.contains("ACL not found") {
        ApiError::forbidden(text)
    } else if text.starts_with("Cannot find") && text.ends_with("to delete") {
        ApiError::not_found(text)
    } else {
        ApiError::internal(text)
    }
}

/// A new SecretID: from the OS random source, never derived from the request id (which
/// travels with a forwarded request and shows in debug logs). A retried write still
/// answers the first secret: handlers read the token back by its AccessorID.
pub(super) fn new_secret() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A fresh UUID for a new object (the proposing server chooses; apply stays deterministic).
pub(super) fn new_id() -> String {
    crate::server::fresh_uuid().to_string()
}
