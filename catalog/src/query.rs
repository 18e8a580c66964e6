//! Read queries over a state snapshot: what the HTTP API and DNS read. No I/O here.

use std::collections::{BTreeMap, BTreeSet};

use super::{Check, HealthStatus, Node, Service, State};

/// One instance of a service with its node (`GET /v1/catalog/service/:name` row).
#[derive(Debug, Clone)]
pub struct ServiceRow {
    /// The node.
    pub node: Node,
    /// The instance.
    pub service: Service,
}

/// One instance with its node and every check that applies to it (`/v1/health/service`).
#[derive(Debug, Clone)]
pub struct HealthEntry {
    /// The node.
    pub node: Node,
    /// The instance.
    pub service: Service,
    /// Node checks and the instance's own checks.
    pub checks: Vec<Check>,
}

impl HealthEntry {
    /// The worst status among the checks (passing when there are none).
    pub fn aggregate(&self) -> HealthStatus {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(HealthStatus::Passing)
    }
}

fn node_range(node: &str) -> std::ops::RangeFrom<(String, String)> {
    (node.to_string(), String::new())..
}

impl State {
    /// All nodes in name order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// One node.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// The services of one node.
    pub fn node_services<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Service> + 'a {
        self.services
            .range(node_range(node))
            .take_while(move |((n, _), _)| n == node)
            .map(|(_, s)| s)
    }

    /// The checks of one node (node and service checks).
    pub fn node_checks<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Check> + 'a {
        self.checks
            .range(node_range(node))
            .take_while(move |((n, _), _)| n == node)
            .map(|(_, c)| c)
    }

    /// Every service instance, ordered by node then instance ID.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    /// All checks.
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.values()
    }

    /// Service name → union of the tags of its instances.
    pub fn service_names(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for s in self.services.values() {
            out.entry(s.service.clone())
                .or_default()
                .extend(s.tags.iter().cloned());
        }
        out
    }

    /// Every instance of `name` with its node, ordered by node then instance ID.
    pub fn service_rows(&self, name: &str) -> Vec<ServiceRow> {
        let Some(keys) = self.services_by_name.get(name) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|key| {
                let service = self.services.get(key)?;
                self.nodes.get(&key.0).map(|node| ServiceRow {
                    node: node.clone(),
                    service: service.clone(),
                })
            })
            .collect()
    }

    /// Adds `key` to the instances of service `name` (the by-name index).
    pub(crate) fn index_service(&mut self, name: &str, key: &(String, String)) {
        self.services_by_name
            .entry(name.to_string())
            .or_default()
            .insert(key.clone());
    }

    /// Removes `key` from the instances of service `name`; drops the name with its last one.
    pub(crate) fn unindex_service(&mut self, name: &str, key: &(String, String)) {
        if let Some(keys) = self.services_by_name.get_mut(name) {
            keys.remove(key);
            if keys.is_empty() {
                self.services_by_name.remove(name);
            }
        }
    }

    /// Every instance of `name` with its node and the worst status of the checks that apply
    /// to it (node checks and its own; passing when none), ordered by node then instance ID.
    /// Borrowed, for per-query readers (DNS) that need a few fields, not owned rows: the same
    /// instances and status as [`State::health_entries`] and [`HealthEntry::aggregate`].
    pub fn service_health<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a Node, &'a Service, HealthStatus)> + 'a {
        self.services_by_name
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(move |key| {
                let s = self.services.get(key)?;
                let n = &key.0;
                let node = self.nodes.get(n)?;
                let status = self
                    .node_checks(n)
                    .filter(|c| c.service_id.is_empty() || c.service_id == s.id)
                    .map(|c| c.status)
                    .max()
                    .unwrap_or(HealthStatus::Passing);
                Some((node, s, status))
            })
    }

    /// Every instance of `name` with its checks.
    pub fn health_entries(&self, name: &str) -> Vec<HealthEntry> {
        self.service_rows(name)
            .into_iter()
            .map(|r| {
                let checks = self
                    .node_checks(&r.node.node)
                    .filter(|c| c.service_id.is_empty() || c.service_id == r.service.id)
                    .cloned()
                    .collect();
                HealthEntry {
                    node: r.node,
                    service: r.service,
                    checks,
                }
            })
            .collect()
    }

    /// The checks of every instance of `name`.
    pub fn service_checks(&self, name: &str) -> Vec<Check> {
        self.checks
            .values()
            .filter(|c| c.service_name == name && !c.service_id.is_empty())
            .cloned()
            .collect()
    }

    /// The blocking-query index of reads about service `name` (instances, their checks and
    /// nodes); 1 when the service has never existed.
    pub fn service_index(&self, name: &str) -> u64 {
        self.service_index.get(name).copied().unwrap_or(1).max(1)
    }
}
