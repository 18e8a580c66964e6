//! Request DTOs shared by the catalog and agent endpoints. Field names are folded (see
//! `body.rs`), so `EnableTagOverride`, `enable_tag_override` and `enabletagoverride` all
//! land in `enabletagoverride`. Conversions into catalog types validate and fill Consul's
//! defaults (service ID = name, check ID = name, status = critical).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::body::GoDuration;
use super::error::ApiError;
use super::passthrough::kept;
use crate::catalog::{
    Check, CheckDefinition, HealthStatus, Node, RegisterOp, Service, ServiceAddress, Weights,
};

fn fmt_dur(d: &Option<GoDuration>) -> String {
    match d {
        Some(GoDuration(d)) if !d.is_zero() => meridian_config::duration::format_go_duration(*d),
        _ => String::new(),
    }
}

/// `PUT /v1/catalog/register` body.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RegisterBody {
    pub(super) id: String,
    pub(super) node: String,
    pub(super) address: String,
    pub(super) datacenter: String,
    pub(super) taggedaddresses: BTreeMap<String, String>,
    pub(super) nodemeta: BTreeMap<String, String>,
    pub(super) service: Option<ServiceBody>,
    pub(super) check: Option<CheckBody>,
    pub(super) checks: Vec<CheckBody>,
    pub(super) skipnodeupdate: bool,
}

/// A service, as in the catalog register body (`Service`) or the agent one (`Name`).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ServiceBody {
    pub(super) id: String,
    pub(super) service: String,
    pub(super) name: String,
    pub(super) tags: Vec<String>,
    pub(super) address: String,
    pub(super) taggedaddresses: BTreeMap<String, ServiceAddressBody>,
    pub(super) meta: BTreeMap<String, String>,
    pub(super) port: u16,
    pub(super) kind: String,
    pub(super) socketpath: String,
    pub(super) proxy: Option<Value>,
    pub(super) connect: Option<Value>,
    pub(super) locality: Option<Value>,
    pub(super) weights: Option<WeightsBody>,
    pub(super) enabletagoverride: bool,
    pub(super) check: Option<CheckBody>,
    pub(super) checks: Vec<CheckBody>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ServiceAddressBody {
    address: String,
    port: u16,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WeightsBody {
    passing: i32,
    warning: i32,
}

/// A check: catalog form (`CheckID`, `Definition`) or agent form (`Interval`, `HTTP`, ...).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub(super) struct CheckBody {
    pub(super) node: String,
    pub(super) checkid: String,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) notes: String,
    pub(super) status: String,
    pub(super) serviceid: String,
    pub(super) output: String,
    pub(super) definition: Option<DefinitionBody>,
    pub(super) http: String,
    pub(super) method: String,
    pub(super) header: BTreeMap<String, Vec<String>>,
    pub(super) body: String,
    pub(super) tcp: String,
    pub(super) tlsservername: String,
    pub(super) tlsskipverify: bool,
    pub(super) interval: Option<GoDuration>,
    pub(super) timeout: Option<GoDuration>,
    pub(super) ttl: Option<GoDuration>,
    pub(super) args: Vec<String>,
    pub(super) deregistercriticalserviceafter: Option<GoDuration>,
    pub(super) successbeforepassing: u32,
    pub(super) failuresbeforewarning: u32,
    pub(super) failuresbeforecritical: u32,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub(super) struct DefinitionBody {
    http: String,
    header: BTreeMap<String, Vec<String>>,
    method: String,
    body: String,
    tlsservername: String,
    tlsskipverify: bool,
    tcp: String,
    interval: Option<GoDuration>,
    timeout: Option<GoDuration>,
    deregistercriticalserviceafter: Option<GoDuration>,
}

impl ServiceBody {
    /// The catalog service; `name` (agent form) or `service` (catalog form) is the name.
    pub(super) fn to_service(&self) -> Result<Service, ApiError> {
        let name = if self.service.is_empty() {
            &self.name
        } else {
            &self.service
        };
        if name.is_empty() {
            return Err(ApiError::bad_request("Missing service name"));
        }
        let weights = match &self.weights {
            None => Weights::default(),
            Some(w) if w.passing < 1 => {
                return Err(ApiError::bad_request(
                    "Invalid Weights: Passing must be greater than 0",
                ));
            }
            Some(w) => Weights {
                passing: w.passing,
                warning: w.warning,
            },
        };
        Ok(Service {
            id: if self.id.is_empty() {
                name.clone()
            } else {
                self.id.clone()
            },
            service: name.clone(),
            tags: self.tags.clone(),
            address: self.address.clone(),
            tagged_addresses: self
                .taggedaddresses
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        ServiceAddress {
                            address: v.address.clone(),
                            port: v.port,
                        },
                    )
                })
                .collect(),
            meta: self.meta.clone(),
            port: self.port,
            kind: self.kind.clone(),
            socket_path: self.socketpath.clone(),
            weights,
            enable_tag_override: self.enabletagoverride,
            locality: kept(&self.locality),
            proxy: kept(&self.proxy),
            connect: kept(&self.connect),
            create_index: 0,
            modify_index: 0,
        })
    }
}

impl CheckBody {
    /// The check type implied by its fields.
    pub(super) fn kind(&self) -> &'static str {
        if !self.http.is_empty() {
            "http"
        } else if !self.tcp.is_empty() {
            "tcp"
        } else if self.ttl.is_some_and(|t| !t.0.is_zero()) {
            "ttl"
        } else if !self.args.is_empty() {
            "script"
        } else {
            ""
        }
    }

    /// The catalog check for `node`; `service_id` overrides an empty `ServiceID`.
    pub(super) fn to_check(&self, node: &str, service_id: &str) -> Result<Check, ApiError> {
        let id = [&self.checkid, &self.id, &self.name]
            .into_iter()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_default();
        let id = if id.is_empty() && !service_id.is_empty() {
            format!("service:{service_id}")
        } else {
            id
        };
        if id.is_empty() {
            return Err(ApiError::bad_request("Missing check ID or name"));
        }
        let status = match self.status.as_str() {
            "" => HealthStatus::Critical,
            s => HealthStatus::parse(s)
                .ok_or_else(|| ApiError::bad_request(format!("Invalid check Status {s:?}")))?,
        };
        let def = match &self.definition {
            Some(d) => CheckDefinition {
                http: d.http.clone(),
                header: d.header.clone(),
                method: d.method.clone(),
                body: d.body.clone(),
                tls_server_name: d.tlsservername.clone(),
                tls_skip_verify: d.tlsskipverify,
                tcp: d.tcp.clone(),
                interval: fmt_dur(&d.interval),
                timeout: fmt_dur(&d.timeout),
                deregister_critical_service_after: fmt_dur(&d.deregistercriticalserviceafter),
            },
            None => CheckDefinition {
                http: self.http.clone(),
                header: self.header.clone(),
                method: self.method.clone(),
                body: self.body.clone(),
                tls_server_name: self.tlsservername.clone(),
                tls_skip_verify: self.tlsskipverify,
                tcp: self.tcp.clone(),
                interval: fmt_dur(&self.interval),
                timeout: fmt_dur(&self.timeout),
                deregister_critical_service_after: fmt_dur(&self.deregistercriticalserviceafter),
            },
        };
        Ok(Check {
            node: node.to_string(),
            check_id: id.clone(),
            name: if self.name.is_empty() {
                id
            } else {
                self.name.clone()
            },
            status,
            notes: self.notes.clone(),
            output: self.output.clone(),
            service_id: if self.serviceid.is_empty() {
                service_id.to_string()
            } else {
                self.serviceid.clone()
            },
            check_type: self.kind().to_string(),
            definition: def,
            ..Check::default()
        })
    }
}

impl RegisterBody {
    /// The catalog registration; the node's datacenter defaults to the local one.
    pub(super) fn into_op(self, local_dc: &str) -> Result<RegisterOp, ApiError> {
        if self.node.is_empty() {
            return Err(ApiError::bad_request("Missing node name"));
        }
        if self.address.is_empty() && !self.skipnodeupdate {
            return Err(ApiError::bad_request("Missing node address"));
        }
        let service = self
            .service
            .as_ref()
            .map(ServiceBody::to_service)
            .transpose()?;
        // A catalog check belongs to a service only if it names it in `ServiceID`.
        let checks = self
            .check
            .iter()
            .chain(self.checks.iter())
            .map(|c| c.to_check(&self.node, ""))
            .collect::<Result<_, _>>()?;
        let node = Node {
            id: self.id,
            node: self.node,
            address: self.address,
            datacenter: if self.datacenter.is_empty() {
                local_dc.to_string()
            } else {
                self.datacenter
            },
            tagged_addresses: self.taggedaddresses,
            meta: self.nodemeta,
            create_index: 0,
            modify_index: 0,
        };
        Ok(RegisterOp {
            node,
            skip_node_update: self.skipnodeupdate,
            service,
            checks,
        })
    }
}
