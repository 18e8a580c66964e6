//! ACL pruning of KV results (reference/acl.md §4.8, §5.4): entries the token may not read
//! are dropped, and a pruned answer says `X-Consul-Results-Filtered-By-ACLs: true` when a
//! token string was given. Shared by `/v1/kv` and `/v1/txn`.

use axum::http::HeaderValue;
use axum::response::Response;
use meridian_acl::{Need, Resource};

use super::acl_authz::Authz;
use super::error::ApiError;

/// Header set on a pruned answer (§5.4).
pub(super) const FILTERED_HEADER: &str = "X-Consul-Results-Filtered-By-ACLs";

/// With `acl.enable_key_list_policy`, a recurse or keys read first needs `key:list` on the
/// prefix (§4.8); off, nothing is needed on the prefix.
pub(super) fn check_key_list(
    authz: &Authz,
    list_policy: bool,
    prefix: &str,
) -> Result<(), ApiError> {
    if list_policy {
        authz.check(Resource::Key, prefix, Need::List)?;
    }
    Ok(())
}

/// Keeps the items whose key the token may read; the flag says whether any was dropped.
pub(super) fn keep_readable<T>(
    authz: &Authz,
    items: Vec<T>,
    key: impl Fn(&T) -> &str,
) -> (Vec<T>, bool) {
    let before = items.len();
    let kept: Vec<T> = items
        .into_iter()
        .filter(|i| authz.allowed(Resource::Key, key(i), Need::Read))
        .collect();
    let pruned = kept.len() != before;
    (kept, pruned)
}

/// Marks `resp` as filtered when something was pruned and a token string was given.
pub(super) fn mark_filtered(authz: &Authz, pruned: bool, mut resp: Response) -> Response {
    if pruned && authz.token_given() {
        resp.headers_mut()
            .insert(FILTERED_HEADER, HeaderValue::from_static("true"));
    }
    resp
}
