//! `meridian info`: the `Stats` section of `/v1/agent/self`, printed as Consul's `consul info`.

use std::io::Write;

use serde_json::Value;

use super::CliError;
use super::client::{ApiClient, HttpFlags};

/// `info`
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// Runs `info`.
pub async fn run(a: InfoArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let client = ApiClient::new(&a.http, None)
        .map_err(CliError::http("Error connecting to Consul agent"))?;
    let me: Value = client
        .get_json("/v1/agent/self", &[])
        .await
        .map_err(CliError::http("Error querying agent"))?
        .unwrap_or(Value::Null);
    write!(out, "{}", render_stats(&me)?)?;
    Ok(())
}

/// `section:` then `\tkey = value` lines, both sorted (serde_json maps are ordered).
pub(crate) fn render_stats(me: &Value) -> Result<String, CliError> {
    let Some(stats) = me.get("Stats").and_then(Value::as_object) else {
        return Err(CliError::msg(format!(
            "Agent response did not contain 'Stats' key: {me}"
        )));
    };
    let mut s = String::new();
    for (section, values) in stats {
        s.push_str(section);
        s.push_str(":\n");
        let Some(values) = values.as_object() else {
            return Err(CliError::msg(format!(
                "Got invalid subkey in stats: {values}"
            )));
        };
        for (k, v) in values {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            s.push_str(&format!("\t{k} = {v}\n"));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_sorted_sections() {
        let me = serde_json::json!({"Stats": {"raft": {"state": "Leader", "applied_index": "7"}, "agent": {"checks": 0}}});
        assert_eq!(
            render_stats(&me).unwrap(),
            "agent:\n\tchecks = 0\nraft:\n\tapplied_index = 7\n\tstate = Leader\n"
        );
        assert!(render_stats(&serde_json::json!({})).is_err());
    }
}
