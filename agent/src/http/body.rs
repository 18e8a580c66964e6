//! Request bodies as Consul accepts them: JSON keys in any case and with or without
//! underscores (`EnableTagOverride`, `enable_tag_override`, `enabletagoverride`), Go duration
//! strings, and errors that name the field.
//!
//! Keys are folded to lowercase without underscores before typed decoding, except inside
//! user-keyed maps (`Meta`, `NodeMeta`, `Header`, `TaggedAddresses`, ...), whose keys are data,
//! and opaque values (a proxy's `Config`), which are kept whole.
//! DTO structs therefore spell their fields folded (`enabletagoverride`).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::error::ApiError;

/// Keys (folded) whose object value is a user-keyed map: its keys are kept as sent.
pub(super) const USER_MAPS: &[&str] = &[
    "meta",
    "nodemeta",
    "servicemeta",
    "header",
    "taggedaddresses",
];

/// Keys (folded) whose value is opaque user data, kept exactly as sent at every depth:
/// Connect's proxy `Config` and Envoy extension `Arguments`.
pub(super) const OPAQUE: &[&str] = &["config", "arguments"];

/// Folds a key: lowercase, no underscores or dashes.
pub(super) fn fold_key(k: &str) -> String {
    k.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Folds every key of `v` (recursively), leaving user-keyed maps' keys alone.
pub(super) fn fold(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let fk = fold_key(&k);
                    let v = if OPAQUE.contains(&fk.as_str()) {
                        v
                    } else if USER_MAPS.contains(&fk.as_str()) {
                        fold_user_map(v)
                    } else {
                        fold(v)
                    };
                    (fk, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(fold).collect()),
        other => other,
    }
}

/// In a user-keyed map the keys stay; nested objects (e.g. tagged service addresses) fold.
fn fold_user_map(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, fold(v))).collect()),
        other => other,
    }
}

/// Decodes a JSON body into `T` after folding keys. Empty bodies decode as `{}` when
/// `allow_empty`. Errors are 400s naming the field path.
pub(super) fn decode<T: DeserializeOwned>(body: &[u8], allow_empty: bool) -> Result<T, ApiError> {
    let raw: Value = if body.iter().all(u8::is_ascii_whitespace) {
        if !allow_empty {
            return Err(ApiError::bad_request(
                "Request body is empty; expected a JSON object",
            ));
        }
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?
    };
    let folded = fold(raw);
    serde_path_to_error::deserialize(folded).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(format!(
            "Request decode failed: field {path:?}: {}",
            e.into_inner()
        ))
    })
}

/// A duration given as a Go duration string (`"15s"`, `"1.5m"`) or integer nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct GoDuration(pub Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s.is_empty() => Ok(GoDuration(Duration::ZERO)),
            Value::String(s) => meridian_config::duration::parse_go_duration(&s)
                .map(GoDuration)
                .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}"))),
            Value::Number(n) => n
                .as_u64()
                .map(|ns| GoDuration(Duration::from_nanos(ns)))
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "invalid duration {n}: must be non-negative nanoseconds"
                    ))
                }),
            Value::Null => Ok(GoDuration(Duration::ZERO)),
            other => Err(serde::de::Error::custom(format!(
                "invalid duration {other}: expected a string like \"10s\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Svc {
        name: String,
        #[serde(default)]
        enabletagoverride: bool,
        #[serde(default)]
        meta: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        check: Option<Chk>,
    }

    #[derive(Deserialize, Debug)]
    struct Chk {
        interval: GoDuration,
    }

    #[test]
    fn keys_fold_in_any_case_but_user_maps_keep_theirs() {
        for body in [
            r#"{"Name":"web","EnableTagOverride":true,"Meta":{"Redis_Version":"4"},"Check":{"Interval":"10s"}}"#,
            r#"{"name":"web","enable_tag_override":true,"meta":{"Redis_Version":"4"},"check":{"interval":"10s"}}"#,
            r#"{"name":"web","enabletagoverride":true,"META":{"Redis_Version":"4"},"check":{"interval":10000000000}}"#,
        ] {
            let s: Svc = decode(body.as_bytes(), false).unwrap();
            assert_eq!(s.name, "web");
            assert!(s.enabletagoverride);
            assert_eq!(s.meta.get("Redis_Version").map(String::as_str), Some("4"));
            assert_eq!(s.check.unwrap().interval.0, Duration::from_secs(10));
        }
    }

    #[test]
    fn errors_name_the_field() {
        let e = decode::<Svc>(br#"{"Name":"web","Check":{"Interval":"10parsecs"}}"#, false)
            .unwrap_err();
        assert!(e.to_string().contains("check.interval"), "{e}");
        let e = decode::<Svc>(br#"{"Name":5}"#, false).unwrap_err();
        assert!(e.to_string().contains("name"), "{e}");
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
    }
}
