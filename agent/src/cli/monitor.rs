//! `meridian monitor [-log-level LEVEL] [-log-json]`: follows a running agent's logs
//! (`/v1/agent/monitor`) until interrupted or until the agent goes away, as `consul monitor`
//! does: lines are printed as they come, at the asked level whatever the agent's own
//! `log_level`. Exits 0 on Ctrl-C; when the agent ends the stream, says so and exits 1.

use std::io::Write;

use super::CliError;
use super::client::{ApiClient, HttpFlags};

/// Consul's words when the agent ends the stream.
const REMOTE_ENDED: &str = "Remote side ended the monitor! This usually means that the\nremote side has exited or crashed.";

/// `monitor [-log-level LEVEL] [-log-json]`
#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// Log level of the lines to show (trace, debug, info, warn, err).
    #[arg(long = "log-level", value_name = "LEVEL", default_value = "INFO")]
    pub log_level: String,
    /// Lines as JSON objects.
    #[arg(long = "log-json")]
    pub log_json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// Runs `monitor`.
pub async fn run(a: MonitorArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let client = ApiClient::new(&a.http, None)
        .map_err(CliError::http("Error connecting to Consul agent"))?;
    let mut query = vec![("loglevel", a.log_level.clone())];
    if a.log_json {
        query.push(("logjson", String::new()));
    }
    let mut resp = client
        .stream("/v1/agent/monitor", &query)
        .await
        .map_err(CliError::http("Error starting monitor"))?;
    loop {
        let chunk = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            chunk = resp.chunk() => chunk,
        };
        match chunk {
            Ok(Some(bytes)) => {
                out.write_all(&bytes)?;
                out.flush()?;
            }
            // The agent closed the stream, or the connection broke.
            Ok(None) | Err(_) => break,
        }
    }
    writeln!(out)?;
    writeln!(out, "{REMOTE_ENDED}")?;
    out.flush()?;
    Err(CliError::Message {
        message: String::new(),
        code: 1,
    })
}
