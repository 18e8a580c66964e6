//! The `telemetry` block keys Meridian acts on: `prometheus_retention_time` (a positive Go
//! duration turns on `GET /v1/agent/metrics?format=prometheus` and drops series idle for
//! longer) and `disable_hostname` (no host name in the runtime gauges' names). Consul's
//! other telemetry keys (statsd, dogstatsd, circonus, prefix filters) are warned about as
//! having no effect (`consul_keys.rs`). Pure: the settings only; the agent's
//! `telemetry` module and `http/metrics.rs` use them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::serde_go;

/// The `telemetry` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// How long a metric not updated stays in the Prometheus output; zero (the default)
    /// turns Prometheus output off, as in Consul. A Go duration (`"60s"`); negative is an
    /// error.
    #[serde(with = "serde_go")]
    pub prometheus_retention_time: Duration,
    /// Leave the host name out of the runtime gauges' names (Consul's default puts it in:
    /// `consul.<host>.runtime.*`).
    pub disable_hostname: bool,
}

impl TelemetryConfig {
    /// The retention when Prometheus output is on (a positive retention time).
    pub fn prometheus_retention(&self) -> Option<Duration> {
        Some(self.prometheus_retention_time).filter(|d| !d.is_zero())
    }
}
