//! Consul's agent configuration keys that Meridian accepts but does not act on, and the walk
//! that takes them out of a layer before the typed check.
//!
//! A Consul config file must load unchanged, so every key of Consul's agent `Config`
//! (`agent/config/config.go`, its deprecated spellings and Enterprise keys) is known here or
//! in the typed [`Config`](crate::Config). Keys for features Meridian lacks are removed from
//! each layer and reported as a [`ConfigWarning`]; whatever is left goes on to the typed
//! `Config`, whose `deny_unknown_fields` still turns a key Consul does not know into an error
//! naming its file and key. Pure: no I/O, no logging.
//!
//! ```text
//!  layer dict ──▶ strip_inert ──▶ typed check (deny_unknown_fields) ──▶ figment merge
//!                     │
//!                     └──▶ ConfigWarning { key, origin }   (logged once by the agent)
//! ```

use std::fmt;

use serde_json::{Map, Value};

/// A configuration key that was accepted but does nothing in Meridian, or a `MERIDIAN_*`
/// environment variable that names no configuration key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The dotted key path (`telemetry`, `ports.grpc_tls`), or the variable's name.
    pub key: String,
    /// Where it was set: a file path, `environment variable MERIDIAN_X`, `command-line flag -x`.
    pub origin: String,
    /// What kind of warning it is.
    pub kind: WarningKind,
}

/// Why a [`ConfigWarning`] was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// A Consul key for a feature Meridian does not have: accepted, ignored.
    NoEffect,
    /// A `MERIDIAN_*` environment variable that is no configuration key (a wrapper's
    /// `MERIDIAN_BIN`, say): ignored.
    NotAKey,
    /// A deprecated spelling that still takes effect; the field names the current key.
    Deprecated {
        /// The key to use instead, e.g. `tls.defaults.ca_file`.
        use_instead: &'static str,
    },
}

impl ConfigWarning {
    /// The message the agent logs with the warning's fields.
    pub fn message(&self) -> &'static str {
        match self.kind {
            WarningKind::NoEffect => "config key has no effect in Meridian",
            WarningKind::NotAKey => "environment variable is no configuration key; ignored",
            WarningKind::Deprecated { .. } => "config key is deprecated",
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.key, self.message())?;
        if let WarningKind::Deprecated { use_instead } = self.kind {
            write!(f, "; use {use_instead} instead")?;
        }
        Ok(())
    }
}

/// What Meridian does with one Consul key.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// A feature Meridian lacks: the key (and its whole subtree) is accepted and warned about.
    NoEffect,
    /// A listener Meridian does not open: `-1` (off) is what Meridian does anyway and passes
    /// silently; any other port is warned about.
    Listener,
    /// Meridian already behaves as the key asks (it never phones home; Consul itself ignores
    /// `snapshot_agent`): accepted silently.
    AlreadySo,
    /// Consul's deprecated `acl_datacenter`: warned about, moved to `primary_datacenter`
    /// (unless the layer sets that) and sets `acl.enabled = true` in its layer, as Consul does.
    EnablesAcl,
    /// A deprecated spelling moved within its layer: the value goes to `to` (a dotted path
    /// relative to the enclosing block) unless the layer already sets that, and the key is
    /// warned about naming `use_instead`. `also` is set to `true` as well (Consul's
    /// `acl_replication_token` turns token replication on).
    MovedTo {
        /// Where the value goes, relative to the enclosing block.
        to: &'static str,
        /// The full current key, for the warning.
        use_instead: &'static str,
        /// A boolean key (relative to the enclosing block) the old spelling also sets.
        also: Option<&'static str>,
    },
    /// A block some of whose keys Meridian implements: the listed children follow their
    /// rules, the rest go on to the typed config (and are errors there if unknown).
    Block(&'static [(&'static str, Rule)]),
    /// A deprecated spelling the typed config still reads: warned about (naming the key to
    /// use instead) and left in place.
    Deprecated(&'static str),
}

use Rule::{AlreadySo, Block, Deprecated, EnablesAcl, Listener, MovedTo, NoEffect};

/// A deprecated key moved to `to` (also its name in the warning).
const fn moved(to: &'static str) -> Rule {
    MovedTo {
        to,
        use_instead: to,
        also: None,
    }
}

/// Consul's top-level keys that the typed `Config` does not have, with their rule. Blocks that
/// Meridian implements in part list only the children it lacks.
const TOP: &[(&str, Rule)] = &[
    // Blocks Meridian implements in part.
    ("ports", Block(PORTS)),
    ("addresses", Block(ADDRESSES)),
    ("dns_config", Block(DNS_CONFIG)),
    ("limits", Block(LIMITS)),
    ("ui_config", Block(UI_CONFIG)),
    ("acl", Block(ACL)),
    ("tls", Block(TLS)),
    ("telemetry", Block(TELEMETRY)),
    // Features Meridian does not have.
    ("audit", NoEffect),
    ("auto_config", NoEffect),
    ("auto_encrypt", NoEffect),
    ("auto_reload_config", NoEffect),
    ("autopilot", NoEffect),
    ("cache", NoEffect),
    ("check", NoEffect),
    ("checks", NoEffect),
    ("cloud", NoEffect),
    ("config_entries", NoEffect),
    ("connect", NoEffect),
    ("experiments", NoEffect),
    ("gossip_lan", NoEffect),
    ("gossip_wan", NoEffect),
    ("http_config", NoEffect),
    ("locality", NoEffect),
    ("peering", NoEffect),
    ("raft_boltdb", NoEffect),
    ("raft_logstore", NoEffect),
    ("reporting", NoEffect),
    ("rpc", NoEffect),
    ("unix_sockets", NoEffect),
    ("watches", NoEffect),
    ("xds", NoEffect),
    // Addresses, joins and timeouts of features Meridian lacks (WAN, IPv4/IPv6 pairs).
    ("advertise_addr_ipv4", NoEffect),
    ("advertise_addr_ipv6", NoEffect),
    ("advertise_addr_wan", NoEffect),
    ("advertise_addr_wan_ipv4", NoEffect),
    ("advertise_addr_wan_ipv6", NoEffect),
    ("advertise_reconnect_timeout", NoEffect),
    ("primary_gateways", NoEffect),
    ("primary_gateways_interval", NoEffect),
    ("reconnect_timeout_wan", NoEffect),
    ("retry_interval_wan", NoEffect),
    ("retry_join_wan", NoEffect),
    ("retry_max_wan", NoEffect),
    ("serf_lan", NoEffect),
    ("serf_lan_allowed_cidrs", NoEffect),
    ("serf_wan", NoEffect),
    ("serf_wan_allowed_cidrs", NoEffect),
    ("start_join_wan", NoEffect),
    ("tagged_addresses", NoEffect),
    ("translate_wan_addrs", NoEffect),
    // Agent knobs Meridian does not have.
    ("check_output_max_size", NoEffect),
    ("check_update_interval", NoEffect),
    ("default_query_time", NoEffect),
    ("disable_coordinates", NoEffect),
    ("disable_host_node_id", NoEffect),
    ("disable_http_unprintable_char_filter", NoEffect),
    ("disable_keyring_file", NoEffect),
    ("disable_remote_exec", NoEffect),
    ("discard_check_output", NoEffect),
    ("discovery_max_stale", NoEffect),
    ("enable_agent_tls_for_checks", NoEffect),
    ("enable_central_service_config", NoEffect),
    ("enable_debug", NoEffect),
    ("enable_syslog", NoEffect),
    ("log_file", NoEffect),
    ("log_rotate_bytes", NoEffect),
    ("log_rotate_duration", NoEffect),
    ("log_rotate_max_files", NoEffect),
    ("log_sublevels", NoEffect),
    ("max_query_time", NoEffect),
    ("protocol", NoEffect),
    ("raft_protocol", NoEffect),
    ("server_name", NoEffect),
    ("syslog_facility", NoEffect),
    ("ui_content_path", NoEffect),
    ("ui_dir", NoEffect),
    ("use_streaming_backend", NoEffect),
    // Deprecated ACL spellings take effect (Consul's `deprecated.go`), the new key winning.
    ("acl_agent_master_token", moved("acl.tokens.agent_recovery")),
    ("acl_agent_token", moved("acl.tokens.agent")),
    ("acl_datacenter", EnablesAcl),
    ("acl_default_policy", moved("acl.default_policy")),
    ("acl_disabled_ttl", NoEffect),
    ("acl_down_policy", moved("acl.down_policy")),
    (
        "acl_enable_key_list_policy",
        moved("acl.enable_key_list_policy"),
    ),
    ("acl_master_token", moved("acl.tokens.initial_management")),
    (
        "acl_replication_token",
        MovedTo {
            to: "acl.tokens.replication",
            use_instead: "acl.tokens.replication",
            also: Some("acl.enable_token_replication"),
        },
    ),
    ("acl_token", moved("acl.tokens.default")),
    ("acl_ttl", moved("acl.token_ttl")),
    (
        "enable_acl_replication",
        moved("acl.enable_token_replication"),
    ),
    // Deprecated top-level TLS spellings still take effect (Consul's `deprecated.go`
    // mapping); only the Go-specific server-preference knob has none.
    ("ca_file", Deprecated("tls.defaults.ca_file")),
    ("ca_path", Deprecated("tls.defaults.ca_path")),
    ("cert_file", Deprecated("tls.defaults.cert_file")),
    ("key_file", Deprecated("tls.defaults.key_file")),
    (
        "tls_cipher_suites",
        Deprecated("tls.defaults.tls_cipher_suites"),
    ),
    (
        "tls_min_version",
        Deprecated("tls.defaults.tls_min_version"),
    ),
    ("tls_prefer_server_cipher_suites", NoEffect),
    (
        "verify_incoming",
        Deprecated("tls.defaults.verify_incoming"),
    ),
    (
        "verify_incoming_https",
        Deprecated("tls.https.verify_incoming"),
    ),
    (
        "verify_incoming_rpc",
        Deprecated("tls.internal_rpc.verify_incoming"),
    ),
    (
        "verify_outgoing",
        Deprecated("tls.defaults.verify_outgoing"),
    ),
    (
        "verify_server_hostname",
        Deprecated("tls.internal_rpc.verify_server_hostname"),
    ),
    // Enterprise-only keys of the open-source struct.
    ("license_path", NoEffect),
    ("non_voting_server", NoEffect),
    ("partition", NoEffect),
    ("read_replica", NoEffect),
    ("segment", NoEffect),
    ("segments", NoEffect),
    // Consul's internal, non-user keys (its tests and build set them).
    ("ae_interval", NoEffect),
    ("build_date", NoEffect),
    ("check_deregister_interval_min", NoEffect),
    ("check_reap_interval", NoEffect),
    ("consul", NoEffect),
    ("license_poll_base_time", NoEffect),
    ("license_poll_max_time", NoEffect),
    ("license_update_base_time", NoEffect),
    ("license_update_max_time", NoEffect),
    ("revision", NoEffect),
    ("segment_limit", NoEffect),
    ("segment_name_limit", NoEffect),
    ("version", NoEffect),
    ("version_metadata", NoEffect),
    ("version_prerelease", NoEffect),
    // Already Meridian's behaviour.
    ("disable_anonymous_signature", AlreadySo),
    ("disable_update_check", AlreadySo),
    ("snapshot_agent", AlreadySo),
];

/// `acl`: the typed keys are in `AclConfig`; these are Consul's leftovers.
const ACL: &[(&str, Rule)] = &[
    ("disabled_ttl", NoEffect),
    ("msp_disable_bootstrap", NoEffect),
    ("tokens", Block(ACL_TOKENS)),
];

/// `acl.tokens`: the pre-1.11 names, and the Enterprise-only provider token.
const ACL_TOKENS: &[(&str, Rule)] = &[
    (
        "master",
        MovedTo {
            to: "initial_management",
            use_instead: "acl.tokens.initial_management",
            also: None,
        },
    ),
    (
        "agent_master",
        MovedTo {
            to: "agent_recovery",
            use_instead: "acl.tokens.agent_recovery",
            also: None,
        },
    ),
    ("managed_service_provider", NoEffect),
];

/// `tls`: `defaults`, `internal_rpc` and `https` are typed; Meridian serves no external
/// gRPC, so that block has no effect.
const TLS: &[(&str, Rule)] = &[("grpc", NoEffect)];

/// `telemetry`: `prometheus_retention_time` and `disable_hostname` are typed; Meridian
/// pushes metrics to no sink and filters none.
const TELEMETRY: &[(&str, Rule)] = &[
    ("circonus_api_app", NoEffect),
    ("circonus_api_token", NoEffect),
    ("circonus_api_url", NoEffect),
    ("circonus_broker_id", NoEffect),
    ("circonus_broker_select_tag", NoEffect),
    ("circonus_check_display_name", NoEffect),
    ("circonus_check_force_metric_activation", NoEffect),
    ("circonus_check_id", NoEffect),
    ("circonus_check_instance_id", NoEffect),
    ("circonus_check_search_tag", NoEffect),
    ("circonus_check_tags", NoEffect),
    ("circonus_submission_interval", NoEffect),
    ("circonus_submission_url", NoEffect),
    ("disable_compat_1.9", NoEffect),
    ("disable_per_tenancy_usage_metrics", NoEffect),
    ("dogstatsd_addr", NoEffect),
    ("dogstatsd_tags", NoEffect),
    ("enable_host_metrics", NoEffect),
    ("filter_default", NoEffect),
    ("metrics_prefix", NoEffect),
    ("prefix_filter", NoEffect),
    ("retry_failed_connection", NoEffect),
    ("statsd_address", NoEffect),
    ("statsite_address", NoEffect),
];

/// `ports`: listeners Meridian does not open (`https` and `grpc` are typed, see
/// [`INERT_TYPED`]).
const PORTS: &[(&str, Rule)] = &[
    ("grpc_tls", Listener),
    ("proxy_min_port", NoEffect),
    ("proxy_max_port", NoEffect),
    ("sidecar_min_port", NoEffect),
    ("sidecar_max_port", NoEffect),
    ("expose_min_port", NoEffect),
    ("expose_max_port", NoEffect),
];

/// `addresses`: `http`, `https` and `dns` are typed; there is no gRPC listener to place.
const ADDRESSES: &[(&str, Rule)] = &[("grpc", NoEffect), ("grpc_tls", NoEffect)];

/// `dns_config`: namespaces are Enterprise.
const DNS_CONFIG: &[(&str, Rule)] = &[("prefer_namespace", NoEffect)];

/// `limits`: handshake and client timeouts, and the request rate limiter.
const LIMITS: &[(&str, Rule)] = &[
    ("https_handshake_timeout", NoEffect),
    ("request_limits", NoEffect),
    ("rpc_client_timeout", NoEffect),
    ("rpc_handshake_timeout", NoEffect),
];

/// `ui_config`: the metrics and dashboard settings of Consul's UI.
const UI_CONFIG: &[(&str, Rule)] = &[
    ("metrics_provider", NoEffect),
    ("metrics_provider_files", NoEffect),
    ("metrics_provider_options_json", NoEffect),
    ("metrics_proxy", NoEffect),
    ("dashboard_url_templates", NoEffect),
];

/// Keys of the typed `Config` that Meridian parses and validates but does not act on yet.
/// They are warned about after merging when a layer (other than `-dev`) set them; a port
/// set to `-1` passes silently, as the listener is off either way.
pub(crate) const INERT_TYPED: &[&str] = &[
    "ports.grpc",
    "ui_config.dir",
    "limits.http_max_conns_per_client",
    "limits.rpc_max_conns_per_client",
    "limits.rpc_rate",
    "limits.rpc_max_burst",
    "performance.leave_drain_time",
    "dns_config.disable_compression",
    "dns_config.use_cache",
    "dns_config.cache_max_age",
    // ACL keys of later phases of #17 (remote policy/role caches).
    "acl.policy_ttl",
    "acl.role_ttl",
];

/// Whether `value` asks for a listener to be off (`-1`, or any negative port).
pub(crate) fn is_off(value: &Value) -> bool {
    value.as_i64().is_some_and(|p| p < 0)
}

/// Removes from `dict` (one layer's top-level object) every Consul key Meridian does not act
/// on, pushing a warning per key that has no effect. `origin` names the source of a key path
/// (a file for every key, or the flag that set it).
pub(crate) fn strip_inert(
    dict: &mut Map<String, Value>,
    origin: &dyn Fn(&str) -> String,
    warnings: &mut Vec<ConfigWarning>,
) {
    strip_level(dict, TOP, "", origin, warnings);
}

fn strip_level(
    dict: &mut Map<String, Value>,
    rules: &[(&str, Rule)],
    prefix: &str,
    origin: &dyn Fn(&str) -> String,
    warnings: &mut Vec<ConfigWarning>,
) {
    for (name, rule) in rules {
        let Some(value) = dict.get_mut(*name) else {
            continue;
        };
        let path = format!("{prefix}{name}");
        let deprecated = |warnings: &mut Vec<ConfigWarning>, path: &str, use_instead| {
            warnings.push(ConfigWarning {
                key: path.to_string(),
                origin: origin(path),
                kind: WarningKind::Deprecated { use_instead },
            })
        };
        let mut warn = |path: &str| {
            warnings.push(ConfigWarning {
                key: path.to_string(),
                origin: origin(path),
                kind: WarningKind::NoEffect,
            })
        };
        match rule {
            NoEffect => {
                warn(&path);
                dict.remove(*name);
            }
            Listener => {
                if !is_off(value) {
                    warn(&path);
                }
                dict.remove(*name);
            }
            AlreadySo => {
                dict.remove(*name);
            }
            EnablesAcl => {
                let value = dict.remove(*name).unwrap_or(Value::Null);
                deprecated(warnings, &path, "primary_datacenter");
                move_to(dict, "primary_datacenter", value);
                move_to(dict, "acl.enabled", Value::Bool(true));
            }
            MovedTo {
                to,
                use_instead,
                also,
            } => {
                let value = dict.remove(*name).unwrap_or(Value::Null);
                deprecated(warnings, &path, *use_instead);
                move_to(dict, to, value);
                if let Some(also) = also {
                    move_to(dict, also, Value::Bool(true));
                }
            }
            Block(children) => {
                // A block of the wrong type (a list, a string) is left for the typed check,
                // which names it.
                if let Value::Object(inner) = value {
                    strip_level(inner, children, &format!("{path}."), origin, warnings);
                }
            }
            Deprecated(use_instead) => warnings.push(ConfigWarning {
                key: path.clone(),
                origin: origin(&path),
                kind: WarningKind::Deprecated { use_instead },
            }),
        }
    }
}

/// Sets the dotted `path` of `dict` to `value` unless something is there already (the current
/// spelling wins over a deprecated one in the same layer). A non-object in the way is left for
/// the typed check, which names it.
fn move_to(dict: &mut Map<String, Value>, path: &str, value: Value) {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    match rest {
        None => {
            dict.entry(head).or_insert(value);
        }
        Some(rest) => {
            let inner = dict
                .entry(head)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = inner {
                move_to(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn strip(v: Value) -> (Value, Vec<String>) {
        let Value::Object(mut dict) = v else {
            panic!("not an object")
        };
        let mut w = Vec::new();
        strip_inert(&mut dict, &|_| "test".into(), &mut w);
        (Value::Object(dict), w.into_iter().map(|w| w.key).collect())
    }

    #[test]
    fn whole_blocks_and_leaves_are_removed_and_named() {
        let (left, keys) = strip(json!({
            "datacenter": "dc1",
            "telemetry": { "statsd_address": "x" },
            "ports": { "http": 1, "grpc_tls": 8503, "proxy_min_port": 1 },
            "addresses": { "http": "0.0.0.0", "grpc": "0.0.0.0" },
        }));
        assert_eq!(
            left,
            json!({ "datacenter": "dc1", "ports": { "http": 1 }, "addresses": { "http": "0.0.0.0" },
                    "telemetry": {} })
        );
        assert_eq!(
            keys,
            [
                "ports.grpc_tls",
                "ports.proxy_min_port",
                "addresses.grpc",
                "telemetry.statsd_address"
            ]
        );
    }

    #[test]
    fn a_disabled_listener_and_already_so_keys_pass_silently() {
        let (left, keys) = strip(json!({
            "ports": { "grpc_tls": -1 },
            "disable_update_check": true,
        }));
        assert_eq!(left, json!({ "ports": {} }));
        assert!(keys.is_empty(), "{keys:?}");
    }

    #[test]
    fn acl_keeps_its_typed_keys_and_deprecated_spellings_move_onto_them() {
        let (left, keys) = strip(json!({
            "acl": { "enabled": false, "disabled_ttl": "30s",
                     "tokens": { "master": "m", "agent_master": "r" } },
        }));
        assert_eq!(
            left,
            json!({ "acl": { "enabled": false,
                    "tokens": { "initial_management": "m", "agent_recovery": "r" } } })
        );
        assert_eq!(
            keys,
            [
                "acl.disabled_ttl",
                "acl.tokens.master",
                "acl.tokens.agent_master"
            ]
        );
        let (left, keys) = strip(json!({
            "acl_datacenter": "dc1", "acl_master_token": "x",
            "acl": { "tokens": { "initial_management": "new" } },
            "acl_replication_token": "rep", "acl_ttl": "10s",
        }));
        // The current spelling wins within a layer; acl_datacenter turns ACLs on.
        assert_eq!(
            left,
            json!({ "primary_datacenter": "dc1",
                    "acl": { "enabled": true, "token_ttl": "10s", "enable_token_replication": true,
                             "tokens": { "initial_management": "new", "replication": "rep" } } })
        );
        assert_eq!(
            keys,
            [
                "acl_datacenter",
                "acl_master_token",
                "acl_replication_token",
                "acl_ttl"
            ]
        );
    }

    #[test]
    fn unknown_keys_are_left_for_the_typed_check() {
        let (left, keys) = strip(json!({ "prots": {}, "ports": { "htp": 1 } }));
        assert_eq!(left, json!({ "prots": {}, "ports": { "htp": 1 } }));
        assert!(keys.is_empty());
    }

    #[test]
    fn no_key_is_listed_twice() {
        let mut names: Vec<&str> = TOP.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
