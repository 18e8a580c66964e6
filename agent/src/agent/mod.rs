//! PLACEHOLDER (branch `cli`): the agent entry point the `meridian agent` subcommand calls.
//!
//! The real implementation is written on the main branch; at merge this whole file is replaced
//! by it. Only the signature matters here: it must stay
//! `run(Config, CancellationToken) -> Result<(), AgentError>`.

use meridian_config::Config;
use tokio_util::sync::CancellationToken;

/// Why an agent failed (placeholder).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The configuration is unusable at runtime.
    #[error("configuration: {0}")]
    Config(String),
}

/// Runs an agent until `shutdown` is cancelled (placeholder: waits for the token).
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<(), AgentError> {
    tracing::info!(node = %cfg.node_name, datacenter = %cfg.datacenter, "placeholder agent running");
    shutdown.cancelled().await;
    Ok(())
}
