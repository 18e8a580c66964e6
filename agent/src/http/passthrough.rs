//! Service fields Meridian keeps but does not act on (`Proxy`, `Connect`, `Locality`).
//!
//! Request bodies arrive with their keys folded (`body.rs`: `DestinationServiceName`,
//! `destination_service_name` and `destinationservicename` are all `destinationservicename`),
//! so before such a value is stored its keys get Consul's spelling back from the field names
//! of Consul's structs (`ConnectProxyConfig`, `Upstream`, `ServiceConnect`, `Locality`,
//! `ServiceDefinition`, `CheckType`). That way a client reads back what a Consul agent would
//! return, whatever case it wrote. Keys not in the table stay as folded; user-keyed maps
//! (`Meta`, `TaggedAddresses`, ...) keep their keys and opaque values (`Config`) are kept
//! whole, as `body.rs` left them. Pure: no I/O.

use serde_json::{Map, Value};

use super::body::{OPAQUE, USER_MAPS, fold_key};

/// Consul's field names that may appear inside `Proxy`, `Connect` and `Locality`.
const NAMES: &[&str] = &[
    // ConnectProxyConfig, TransparentProxyConfig, MeshGatewayConfig, ExposeConfig,
    // ExposePath, AccessLogsConfig, EnvoyExtension
    "DestinationServiceName",
    "DestinationServiceID",
    "LocalServiceAddress",
    "LocalServicePort",
    "LocalServiceSocketPath",
    "Mode",
    "TransparentProxy",
    "OutboundListenerPort",
    "DialedDirectly",
    "Config",
    "Upstreams",
    "MeshGateway",
    "Expose",
    "Checks",
    "Paths",
    "ListenerPort",
    "Path",
    "LocalPathPort",
    "Protocol",
    "ParsedFromCheck",
    "AccessLogs",
    "Enabled",
    "DisableListenerLogs",
    "Type",
    "JSONFormat",
    "TextFormat",
    "EnvoyExtensions",
    "Name",
    "Required",
    "Arguments",
    "ConsulVersion",
    "EnvoyVersion",
    "MutualTLSMode",
    // Upstream
    "DestinationType",
    "DestinationNamespace",
    "DestinationPartition",
    "DestinationPeer",
    "DestinationName",
    "Datacenter",
    "LocalBindAddress",
    "LocalBindPort",
    "LocalBindSocketPath",
    "LocalBindSocketMode",
    "CentrallyConfigured",
    // ServiceConnect, Locality
    "Native",
    "SidecarService",
    "Region",
    "Zone",
    // ServiceDefinition (a sidecar) and its checks
    "Kind",
    "ID",
    "Tags",
    "Address",
    "TaggedAddresses",
    "Meta",
    "Port",
    "SocketPath",
    "Check",
    "Weights",
    "Passing",
    "Warning",
    "Token",
    "EnableTagOverride",
    "Proxy",
    "Connect",
    "Locality",
    "CheckID",
    "Notes",
    "Status",
    "ServiceID",
    "Interval",
    "Timeout",
    "TTL",
    "HTTP",
    "Header",
    "Method",
    "Body",
    "TCP",
    "UDP",
    "GRPC",
    "GRPCUseTLS",
    "H2PING",
    "H2PingUseTLS",
    "TLSServerName",
    "TLSSkipVerify",
    "Args",
    "DockerContainerID",
    "Shell",
    "AliasNode",
    "AliasService",
    "OutputMaxSize",
    "SuccessBeforePassing",
    "FailuresBeforeWarning",
    "FailuresBeforeCritical",
    "DeregisterCriticalServiceAfter",
];

/// Consul's spelling of a folded key, if it is one of [`NAMES`].
fn consul_name(folded: &str) -> Option<&'static str> {
    NAMES.iter().copied().find(|n| fold_key(n) == folded)
}

/// What a body sent for a kept field: `None` when absent or `null` (so a stored row reads
/// back equal to what was written), else the value with Consul's key spelling.
pub(super) fn kept(v: &Option<Value>) -> Option<Value> {
    match v {
        None | Some(Value::Null) => None,
        Some(v) => Some(canonical(v.clone())),
    }
}

/// Restores Consul's key spelling at every depth, except inside user maps and opaque values.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let folded = fold_key(&k);
                    let v = if OPAQUE.contains(&folded.as_str()) {
                        v
                    } else if USER_MAPS.contains(&folded.as_str()) {
                        user_map(v)
                    } else {
                        canonical(v)
                    };
                    (consul_name(&folded).map_or(k, str::to_string), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// A user-keyed map keeps its keys; nested objects (tagged addresses) are Consul structs.
fn user_map(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, canonical(v)))
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::http::body::fold;

    #[test]
    fn folded_keys_get_consul_spelling_back_and_user_data_stays() {
        let sent = json!({
            "destination_service_name": "web",
            "LocalServicePort": 8080,
            "mode": "transparent",
            "Config": {"envoy_prometheus_bind_addr": "0.0.0.0:9102", "Nested": {"a_b": 1}},
            "upstreams": [{"destination_name": "db", "local_bind_port": 9191,
                           "mesh_gateway": {"mode": "local"}}],
            "x_custom": true
        });
        let got = kept(&Some(fold(sent)));
        assert_eq!(
            got,
            Some(json!({
                "DestinationServiceName": "web",
                "LocalServicePort": 8080,
                "Mode": "transparent",
                "Config": {"envoy_prometheus_bind_addr": "0.0.0.0:9102", "Nested": {"a_b": 1}},
                "Upstreams": [{"DestinationName": "db", "LocalBindPort": 9191,
                               "MeshGateway": {"Mode": "local"}}],
                "xcustom": true
            }))
        );
    }

    #[test]
    fn null_and_absent_are_not_kept() {
        assert_eq!(kept(&None), None);
        assert_eq!(kept(&Some(Value::Null)), None);
        assert_eq!(
            kept(&Some(fold(json!({"region": "us-west-1", "ZONE": "a"})))),
            Some(json!({"Region": "us-west-1", "Zone": "a"}))
        );
    }

    #[test]
    fn sidecar_service_meta_and_tagged_addresses_keep_their_keys() {
        let sent = json!({"sidecar_service": {"port": 21000,
            "meta": {"Team_Name": "x"},
            "tagged_addresses": {"lan": {"address": "10.0.0.1", "port": 1}}}});
        assert_eq!(
            kept(&Some(fold(sent))),
            Some(json!({"SidecarService": {"Port": 21000,
                "Meta": {"Team_Name": "x"},
                "TaggedAddresses": {"lan": {"Address": "10.0.0.1", "Port": 1}}}}))
        );
    }
}
