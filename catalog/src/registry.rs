//! Catalog apply logic: node/service/check registration and deregistration, and check
//! status updates. Mirrors Consul's `ensureRegistration` rules. No I/O here.

use super::rows::Table;
use super::{Check, CheckStatusUpdate, DeregisterOp, HealthStatus, RegisterOp, Response, State};

impl State {
    pub(crate) fn register(&mut self, index: u64, now: u64, op: &RegisterOp) -> Response {
        let name = op.node.node.clone();
        if name.is_empty() {
            return Response::Rejected("Must provide node".into());
        }
        if op.service.as_ref().is_some_and(|s| s.service.is_empty()) {
            return Response::Rejected("Must provide service name".into());
        }
        for c in &op.checks {
            if !c.service_id.is_empty()
                && op.service.as_ref().is_none_or(|s| s.id != c.service_id)
                && !self
                    .services
                    .contains_key(&(name.clone(), c.service_id.clone()))
            {
                return Response::Rejected(format!(
                    "Missing service registration for check \"{}\": no service \"{}\" on node \"{name}\"",
                    c.check_id, c.service_id
                ));
            }
        }
        let node_exists = self.nodes.contains_key(&name);
        if !(op.skip_node_update && node_exists) {
            if !node_exists && op.node.address.is_empty() {
                return Response::Rejected("Must provide address".into());
            }
            self.upsert_node(index, op);
        }
        if let Some(svc) = &op.service {
            let key = (name.clone(), svc.id.clone());
            let prev = self.services.get(&key).cloned();
            let mut new = svc.clone();
            new.create_index = prev.as_ref().map_or(index, |p| p.create_index);
            new.modify_index = prev.as_ref().map_or(index, |p| p.modify_index);
            if prev.as_ref() != Some(&new) {
                new.modify_index = index;
                if let Some(p) = &prev
                    && p.service != new.service
                {
                    self.bump_service(index, &p.service.clone());
                    self.unindex_service(&p.service.clone(), &key);
                }
                self.bump_service(index, &new.service);
                self.index_service(&new.service, &key);
                self.services.insert(key, new);
                self.tables.services = index;
                self.touch(Table::Services, Self::service_key(&name, &svc.id));
            }
        }
        for c in &op.checks {
            self.upsert_check(index, now, &name, c);
        }
        Response::Ok
    }

    fn upsert_node(&mut self, index: u64, op: &RegisterOp) {
        let name = op.node.node.clone();
        let prev = self.nodes.get(&name).cloned();
        let mut new = op.node.clone();
        new.create_index = prev.as_ref().map_or(index, |p| p.create_index);
        new.modify_index = prev.as_ref().map_or(index, |p| p.modify_index);
        if prev.as_ref() == Some(&new) {
            return;
        }
        new.modify_index = index;
        self.nodes.insert(name.clone(), new);
        self.tables.nodes = index;
        self.touch(Table::Nodes, name.clone());
        self.bump_node_services(index, &name);
    }

    fn upsert_check(&mut self, index: u64, now: u64, node: &str, c: &Check) {
        let key = (node.to_string(), c.check_id.clone());
        let prev = self.checks.get(&key).cloned();
        let mut new = c.clone();
        new.node = node.to_string();
        if let Some(svc) = self.services.get(&(node.to_string(), c.service_id.clone())) {
            new.service_name = svc.service.clone();
            new.service_tags = svc.tags.clone();
        } else {
            new.service_id.clear();
            new.service_name.clear();
            new.service_tags.clear();
        }
        new.create_index = prev.as_ref().map_or(index, |p| p.create_index);
        new.modify_index = prev.as_ref().map_or(index, |p| p.modify_index);
        if prev.as_ref() == Some(&new) {
            return;
        }
        new.modify_index = index;
        let critical = new.status == HealthStatus::Critical;
        self.bump_check_owner(index, node, &new);
        self.checks.insert(key, new);
        self.tables.checks = index;
        self.touch(Table::Checks, Self::service_key(node, &c.check_id));
        if critical {
            self.invalidate_sessions_for_check(index, now, node, &c.check_id);
        }
    }

    pub(crate) fn deregister(&mut self, index: u64, now: u64, op: &DeregisterOp) -> Response {
        let node = op.node.as_str();
        if node.is_empty() {
            return Response::Rejected("Must provide node".into());
        }
        if let Some(check_id) = &op.check_id {
            self.remove_check(index, now, node, check_id);
        } else if let Some(service_id) = &op.service_id {
            self.remove_service(index, now, node, service_id);
        } else {
            let services: Vec<String> = self.node_services(node).map(|s| s.id.clone()).collect();
            for id in services {
                self.remove_service(index, now, node, &id);
            }
            let checks: Vec<String> = self.node_checks(node).map(|c| c.check_id.clone()).collect();
            for id in checks {
                self.remove_check(index, now, node, &id);
            }
            if self.nodes.remove(node).is_some() {
                self.tables.nodes = index;
                self.touch(Table::Nodes, node.to_string());
                self.invalidate_sessions_for_node(index, now, node);
                self.remove_coordinates(index, node);
            }
        }
        Response::Ok
    }

    fn remove_service(&mut self, index: u64, now: u64, node: &str, id: &str) {
        let key = (node.to_string(), id.to_string());
        let Some(svc) = self.services.remove(&key) else {
            return;
        };
        self.unindex_service(&svc.service, &key);
        self.tables.services = index;
        self.touch(Table::Services, Self::service_key(node, id));
        self.bump_service(index, &svc.service);
        let checks: Vec<String> = self
            .node_checks(node)
            .filter(|c| c.service_id == id)
            .map(|c| c.check_id.clone())
            .collect();
        for c in checks {
            self.remove_check(index, now, node, &c);
        }
    }

    fn remove_check(&mut self, index: u64, now: u64, node: &str, id: &str) {
        let Some(c) = self.checks.remove(&(node.to_string(), id.to_string())) else {
            return;
        };
        self.tables.checks = index;
        self.touch(Table::Checks, Self::service_key(node, id));
        self.bump_check_owner(index, node, &c);
        self.invalidate_sessions_for_check(index, now, node, id);
    }

    pub(crate) fn check_update(
        &mut self,
        index: u64,
        now: u64,
        updates: &[CheckStatusUpdate],
    ) -> Response {
        for u in updates {
            let key = (u.node.clone(), u.check_id.clone());
            let Some(c) = self.checks.get(&key) else {
                continue;
            };
            if c.status == u.status && c.output == u.output {
                continue;
            }
            let mut c = c.clone();
            c.status = u.status;
            c.output = u.output.clone();
            self.upsert_check(index, now, &u.node, &c);
        }
        Response::Ok
    }

    /// A check changed: bump its service, or every service of the node for a node check.
    fn bump_check_owner(&mut self, index: u64, node: &str, c: &Check) {
        if c.service_id.is_empty() {
            self.bump_node_services(index, node);
        } else if !c.service_name.is_empty() {
            self.bump_service(index, &c.service_name.clone());
        }
    }

    fn bump_node_services(&mut self, index: u64, node: &str) {
        let names: Vec<String> = self
            .node_services(node)
            .map(|s| s.service.clone())
            .collect();
        for n in names {
            self.bump_service(index, &n);
        }
    }

    fn bump_service(&mut self, index: u64, name: &str) {
        self.service_index.insert(name.to_string(), index);
        self.touch(Table::ServiceIndex, name.to_string());
    }
}
