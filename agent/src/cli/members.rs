//! `meridian members` and `meridian leave`: Consul's member table over `/v1/agent/members`
//! (`command/members`) and graceful leave over `/v1/agent/leave`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use super::CliError;
use super::client::{ApiClient, HttpFlags};
use super::table::columnize;

/// `members [-detailed] [-wan] [-status REGEX]`
#[derive(Debug, clap::Args)]
pub struct MembersArgs {
    /// Show all tags instead of the summary columns.
    #[arg(long)]
    pub detailed: bool,
    /// List the WAN pool instead of the LAN pool.
    #[arg(long)]
    pub wan: bool,
    /// Only members whose status matches this regular expression.
    #[arg(long, default_value = ".*")]
    pub status: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// `leave`
#[derive(Debug, clap::Args)]
pub struct LeaveArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// One entry of `GET /v1/agent/members` (consul.md §2.6).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Member {
    /// Node name.
    pub name: String,
    /// Gossip address.
    pub addr: String,
    /// Gossip port.
    pub port: u16,
    /// Serf tags (`role`, `dc`, `build`, `vsn`, ...).
    pub tags: Option<BTreeMap<String, String>>,
    /// Serf status: 1 alive, 2 leaving, 3 left, 4 failed.
    pub status: u8,
}

impl Member {
    fn tag(&self, k: &str) -> &str {
        self.tags
            .as_ref()
            .and_then(|t| t.get(k))
            .map_or("", String::as_str)
    }

    fn is_server(&self) -> bool {
        self.tag("role") == "consul"
    }

    /// `ip:port`, bracketed for IPv6, as Go's `net.TCPAddr`.
    fn address(&self) -> String {
        match self.addr.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, self.port).to_string(),
            Err(_) => format!("{}:{}", self.addr, self.port),
        }
    }
}

/// serf's `MemberStatus.String()`.
pub(crate) fn status_name(status: u8) -> &'static str {
    match status {
        0 => "none",
        1 => "alive",
        2 => "leaving",
        3 => "left",
        4 => "failed",
        _ => "unknown",
    }
}

/// Runs `members`. Exit code 2 when no member matches, as Consul's.
pub async fn run(a: MembersArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let status_re = regex::Regex::new(&a.status)
        .map_err(|e| CliError::msg(format!("Failed to compile status regexp: {e}")))?;
    let client = ApiClient::new(&a.http, None)
        .map_err(CliError::http("Error connecting to Consul agent"))?;
    let query = if a.wan {
        vec![("wan", "1".to_string())]
    } else {
        Vec::new()
    };
    let mut members: Vec<Member> = client
        .get_json("/v1/agent/members", &query)
        .await
        .map_err(CliError::http("Error retrieving members"))?
        .unwrap_or_default();
    members.retain(|m| status_re.is_match(status_name(m.status)));
    if members.is_empty() {
        return Err(CliError::Message {
            message: String::new(),
            code: 2,
        });
    }
    writeln!(out, "{}", members_table(members, a.detailed))?;
    Ok(())
}

/// Consul's member table: servers first, then by segment and name.
pub(crate) fn members_table(mut members: Vec<Member>, detailed: bool) -> String {
    members.sort_by(|a, b| (!a.is_server(), &a.name).cmp(&(!b.is_server(), &b.name)));
    let mut rows: Vec<Vec<String>> = Vec::new();
    if detailed {
        rows.push(
            ["Node", "Address", "Status", "Tags"]
                .map(String::from)
                .to_vec(),
        );
        for m in &members {
            let tags = m
                .tags
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            rows.push(vec![
                m.name.clone(),
                m.address(),
                status_name(m.status).into(),
                tags,
            ]);
        }
        return columnize(&rows);
    }
    rows.push(
        [
            "Node",
            "Address",
            "Status",
            "Type",
            "Build",
            "Protocol",
            "DC",
            "Partition",
            "Segment",
        ]
        .map(String::from)
        .to_vec(),
    );
    for m in &members {
        let status = status_name(m.status).to_string();
        let kind = match m.tag("role") {
            "consul" => "server",
            "node" => "client",
            // Meridian's WAN gateways (the whole WAN pool, and LAN members too).
            "gateway" => "gateway",
            _ => {
                rows.push(vec![m.name.clone(), m.address(), status, "unknown".into()]);
                continue;
            }
        };
        let build = match m.tag("build") {
            "" => "< 0.3".to_string(),
            b => b.split(':').next().unwrap_or(b).to_string(),
        };
        let partition = match m.tag("ap") {
            "" => "default",
            p => p,
        };
        let segment = match (m.is_server(), m.tag("segment")) {
            (true, _) => "<all>",
            (false, "") => "<default>",
            (false, s) => s,
        };
        rows.push(vec![
            m.name.clone(),
            m.address(),
            status,
            kind.into(),
            build,
            m.tag("vsn").into(),
            m.tag("dc").into(),
            partition.into(),
            segment.into(),
        ]);
    }
    columnize(&rows)
}

/// Runs `leave`: `PUT /v1/agent/leave`.
pub async fn leave(a: LeaveArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let client = ApiClient::new(&a.http, None)
        .map_err(CliError::http("Error connecting to Consul agent"))?;
    client
        .put("/v1/agent/leave", &[], Vec::new())
        .await
        .map_err(CliError::http("Error leaving"))?;
    writeln!(out, "Graceful leave complete")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, role: &str) -> Member {
        let tags = [
            ("role", role),
            ("dc", "dc1"),
            ("build", "0.1.0:abc"),
            ("vsn", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Member {
            name: name.into(),
            addr: "10.0.0.1".into(),
            port: 8301,
            tags: Some(tags),
            status: 1,
        }
    }

    #[test]
    fn servers_first_with_consul_columns() {
        let table = members_table(vec![member("c1", "node"), member("s1", "consul")], false);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "Node  Address        Status  Type    Build  Protocol  DC   Partition  Segment"
        );
        assert_eq!(
            lines[1],
            "s1    10.0.0.1:8301  alive   server  0.1.0  2         dc1  default    <all>"
        );
        assert_eq!(
            lines[2],
            "c1    10.0.0.1:8301  alive   client  0.1.0  2         dc1  default    <default>"
        );
    }
}
