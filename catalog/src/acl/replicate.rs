//! Applying [`AclWrite::Replicate`](super::AclWrite::Replicate): a secondary datacenter's
//! copy of the primary's policies, roles and global tokens (`reference/acl.md` §6.2).
//!
//! Rows are stored as the primary has them except for the raft indexes, which are this
//! datacenter's (blocking queries here compare against local indexes). Nothing is
//! validated: the primary validated each row when it was written, and a row may link an
//! object a later batch brings (Consul's `AllowMissingLinks`). Deletes run first, so a name
//! freed by one row and taken by another in the same batch ends up with the new holder.

use super::types::{AclReplicated, AclRole};
use crate::State;
use crate::rows::Table;

impl State {
    pub(super) fn acl_replicate(&mut self, index: u64, b: &AclReplicated) {
        for id in &b.policy_deletes {
            if let Some(p) = self.acl_policies.remove(id) {
                if self.acl_policy_names.get(&p.name) == Some(id) {
                    self.acl_policy_names.remove(&p.name);
                }
                self.tables.acl_policies = index;
                self.touch(Table::AclPolicies, id.clone());
            }
        }
        for id in &b.role_deletes {
            if let Some(r) = self.acl_roles.remove(id) {
                if self.acl_role_names.get(&r.name) == Some(id) {
                    self.acl_role_names.remove(&r.name);
                }
                self.tables.acl_roles = index;
                self.touch(Table::AclRoles, id.clone());
            }
        }
        for id in &b.token_deletes {
            if let Some(t) = self.acl_tokens.remove(id) {
                if self.acl_secrets.get(&t.secret_id) == Some(id) {
                    self.acl_secrets.remove(&t.secret_id);
                }
                self.tables.acl_tokens = index;
                self.touch(Table::AclTokens, id.clone());
            }
        }
        for p in &b.policies {
            let create_index = self
                .acl_policies
                .get(&p.id)
                .map_or(index, |o| o.create_index);
            self.store_policy(
                index,
                super::AclPolicy {
                    create_index,
                    ..p.clone()
                },
            );
        }
        for r in &b.roles {
            let old = self.acl_roles.get(&r.id).cloned();
            if let Some(old) = &old
                && self.acl_role_names.get(&old.name) == Some(&old.id)
            {
                self.acl_role_names.remove(&old.name);
            }
            self.acl_role_names.insert(r.name.clone(), r.id.clone());
            self.tables.acl_roles = index;
            self.touch(Table::AclRoles, r.id.clone());
            self.acl_roles.insert(
                r.id.clone(),
                AclRole {
                    create_index: old.map_or(index, |o| o.create_index),
                    modify_index: index,
                    ..r.clone()
                },
            );
        }
        for t in b.tokens.iter().filter(|t| !t.local) {
            let create_index = self
                .acl_tokens
                .get(&t.accessor_id)
                .map_or(index, |o| o.create_index);
            self.store_token(
                index,
                super::AclToken {
                    create_index,
                    ..t.clone()
                },
            );
        }
    }
}
