//! Built-in objects and synthetic policies (`reference/acl.md` §2.3–2.4): the
//! `global-management` and `builtin/global-read-only` policies, the anonymous token's id, and
//! the rules a service or node identity on a token stands for.

use crate::rules::Rules;

/// ID of the built-in `global-management` policy.
pub const GLOBAL_MANAGEMENT_ID: &str = "00000000-0000-0000-0000-000000000001";
/// ID of the built-in `builtin/global-read-only` policy.
pub const GLOBAL_READ_ONLY_ID: &str = "00000000-0000-0000-0000-000000000002";
/// AccessorID of the anonymous token (its SecretID is `anonymous`).
pub const ANONYMOUS_TOKEN_ID: &str = "00000000-0000-0000-0000-000000000002";
/// IDs starting so are reserved for built-in objects: refused for user objects.
pub const RESERVED_ID_PREFIX: &str = "00000000-0000-0000-0000-0000000000";

/// The rules of a policy granting `level` on everything, as Consul writes them.
fn everything(level: &str) -> String {
    let mut s = format!("acl = \"{level}\"\n");
    for r in [
        "agent_prefix",
        "event_prefix",
        "key_prefix",
        "node_prefix",
        "query_prefix",
    ] {
        s.push_str(&format!("{r} \"\" {{\n  policy = \"{level}\"\n}}\n"));
    }
    s.push_str(&format!("keyring = \"{level}\"\n"));
    s.push_str(&format!("operator = \"{level}\"\n"));
    s.push_str(&format!("mesh = \"{level}\"\n"));
    s.push_str(&format!("peering = \"{level}\"\n"));
    s.push_str(&format!(
        "service_prefix \"\" {{\n  policy = \"{level}\"\n  intentions = \"{level}\"\n}}\n"
    ));
    s.push_str(&format!(
        "session_prefix \"\" {{\n  policy = \"{level}\"\n}}\n"
    ));
    s
}

/// The `Rules` text of `global-management`.
pub fn global_management_rules() -> String {
    everything("write")
}

/// The `Rules` text of `builtin/global-read-only`.
pub fn global_read_only_rules() -> String {
    everything("read")
}

fn built(text: &str) -> Rules {
    // The texts are built above from fixed words; a failure is a bug here, caught by tests.
    Rules::parse(text).unwrap_or_default()
}

/// A service identity: write on the service and its sidecar proxy, read on every service and
/// node (what discovery needs).
pub fn service_identity(name: &str) -> Rules {
    built(&service_identity_text(name))
}

/// The rules text of [`service_identity`] (shown as a synthetic policy by `?expanded`).
pub fn service_identity_text(name: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    format!(
        "service {} {{\n  policy = \"write\"\n}}\nservice {} {{\n  policy = \"write\"\n}}\n\
         service_prefix \"\" {{\n  policy = \"read\"\n}}\nnode_prefix \"\" {{\n  policy = \"read\"\n}}\n",
        q(name),
        q(&format!("{name}-sidecar-proxy"))
    )
}

/// A node identity: write on the node, read on every service.
pub fn node_identity(name: &str) -> Rules {
    built(&node_identity_text(name))
}

/// The rules text of [`node_identity`].
pub fn node_identity_text(name: &str) -> String {
    let q = serde_json::to_string(name).unwrap_or_default();
    format!(
        "node {q} {{\n  policy = \"write\"\n}}\nservice_prefix \"\" {{\n  policy = \"read\"\n}}\n"
    )
}
