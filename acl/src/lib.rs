//! Consul's ACL rule language and the decisions made with it (issue #17), pure: no I/O, no
//! clock, no token store. The agent resolves a request's token to its policies; this crate
//! parses their rules, merges them and answers "may this token do that".
//!
//! ```text
//!   policy Rules (HCL or JSON) ──parse──▶ Rules ─┐
//!   identities (service/node/templated) ──expand──▶ Rules ─┼─merge──▶ Authorizer ──▶ check(key:write "app/x")
//!                                                 │             │ no rule matched
//!                                  default_policy ─────────────▶ Root (allow | deny)
//! ```
//!
//! Semantics follow `reference/acl.md` §4: an exact rule beats every prefix rule, the longest
//! prefix wins whatever its level, rules of several policies merge per identical rule with
//! deny > write > list > read, and what no rule decides falls to the default policy — whose
//! `allow` never grants `acl` rights.

mod authorizer;
mod builtin;
mod rules;
mod templated;
#[cfg(test)]
mod tests;

pub use authorizer::{Authorizer, Decision, Denied, Need, Resource, Root};
pub use builtin::{
    ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_ID, GLOBAL_READ_ONLY_ID, RESERVED_ID_PREFIX,
    global_management_rules, global_read_only_rules, node_identity, node_identity_text,
    service_identity, service_identity_text,
};
pub use rules::{Level, Rule, Rules, RulesError};
pub use templated::{TEMPLATES, Template, synthetic_policy_id, template, valid_identity_name};
