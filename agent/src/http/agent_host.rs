//! `GET /v1/agent/host`: facts about the machine the agent runs on, in the keys of Consul's
//! `debug.HostInfo` (gopsutil's JSON names). Needs operator:read (reference/acl.md §5.3).
//! Meridian fills what Linux's `/proc` tells cheaply (host name, kernel, uptime, memory);
//! `CPU` and `Disk` stay empty, and a fact that cannot be read is named in `Errors`, as
//! Consul does for a failing collector.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use meridian_acl::{Need, Resource};
use serde_json::{Map, Value, json};

use super::ApiState;
use super::acl_authz::Authz;
use super::error::ApiError;
use super::read::json_body;

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/agent/host", get(host))
}

async fn proc_text(path: &str, errors: &mut Vec<String>) -> Option<String> {
    match tokio::fs::read_to_string(path).await {
        Ok(t) => Some(t.trim().to_string()),
        Err(e) => {
            errors.push(format!("{path}: {e}"));
            None
        }
    }
}

/// `/proc/meminfo` as gopsutil's `VirtualMemoryStat` subset (bytes).
fn memory(meminfo: &str) -> Value {
    let kib = |key: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let (total, available, free) = (kib("MemTotal"), kib("MemAvailable"), kib("MemFree"));
    let used = total.saturating_sub(available);
    let percent = if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    };
    json!({"total": total, "available": available, "used": used, "usedPercent": percent, "free": free})
}

async fn host(authz: Authz) -> Result<Response, ApiError> {
    authz.check(Resource::Operator, "", Need::Read)?;
    let mut errors = Vec::new();
    let hostname = proc_text("/proc/sys/kernel/hostname", &mut errors).await;
    let kernel = proc_text("/proc/sys/kernel/osrelease", &mut errors).await;
    let uptime = proc_text("/proc/uptime", &mut errors)
        .await
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |s| s as u64);
    let meminfo = proc_text("/proc/meminfo", &mut errors).await;
    let collected = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Ok(json_body(&json!({
        "Memory": meminfo.as_deref().map_or(Value::Object(Map::new()), memory),
        "CPU": [],
        "Host": {
            "hostname": hostname.unwrap_or_default(),
            "uptime": uptime,
            "os": std::env::consts::OS,
            "kernelVersion": kernel.unwrap_or_default(),
            "kernelArch": std::env::consts::ARCH,
        },
        "Disk": {},
        "CollectionTime": collected,
        "Errors": if errors.is_empty() { Value::Null } else { json!(errors) },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_becomes_bytes() {
        let m =
            memory("MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n");
        assert_eq!(m["total"], 1_024_000);
        assert_eq!(m["available"], 256_000);
        assert_eq!(m["used"], 768_000);
    }
}
