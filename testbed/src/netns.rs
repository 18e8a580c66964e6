//! The `ip` driver: creates and removes this run's namespaces, bridges and veth pairs by
//! running iproute2 as child processes (no netlink code, no `unsafe`).
//!
//! Everything is made inside namespaces (see `plan`), so removing a run is: end the
//! processes in its namespaces, then `ip netns del` each one; the veths and bridges go with
//! them. Nothing here decides *what* to make; the `Plan` does.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::plan::{HostPlan, LAN_PREFIX_LEN, Plan, WAN_PREFIX_LEN, WAN_SUPERNET};

/// An `ip` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The program could not be started.
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Why.
        source: std::io::Error,
    },
    /// The program exited non-zero.
    #[error("`{cmd}` failed: {stderr}")]
    Failed {
        /// The command line.
        cmd: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
}

/// Runs `ip ARGS` (with `batch` on stdin when given); returns stdout.
pub async fn ip(args: &[&str], batch: Option<&str>) -> Result<String, NetError> {
    run("ip", args, batch).await
}

/// `testbed`'s hidden helper subcommand `sub` (`_kv-writer`, `_echo`, ...) to be run inside
/// namespace `ns`: stdout piped (helpers report there), stderr ours, stdin closed unless the
/// caller pipes it, and killed when the handle is dropped.
pub fn helper(testbed: &std::path::Path, ns: &str, sub: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns])
        .arg(testbed)
        .arg(sub)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    cmd
}

/// Runs `program ARGS`, feeding `stdin` when given; returns stdout, or the stderr as error.
pub async fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, NetError> {
    let cmd = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| NetError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|source| NetError::Spawn {
                cmd: cmd.clone(),
                source,
            })?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| NetError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let stderr = if stderr.is_empty() {
            out.status.to_string()
        } else {
            stderr
        };
        Err(NetError::Failed { cmd, stderr })
    }
}

/// Names of all network namespaces that start with `prefix-`.
pub async fn list_with_prefix(prefix: &str) -> Result<Vec<String>, NetError> {
    let out = ip(&["netns", "list"], None).await?;
    let want = format!("{prefix}-");
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&want))
        .map(str::to_string)
        .collect())
}

/// Pids of every process in namespace `ns` (empty when it does not exist).
pub async fn pids_in(ns: &str) -> Vec<i32> {
    match ip(&["netns", "pids", ns], None).await {
        Ok(out) => out.lines().filter_map(|l| l.trim().parse().ok()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Removes namespace `ns`; one that is already gone is fine.
pub async fn delete(ns: &str) -> Result<(), NetError> {
    match ip(&["netns", "del", ns], None).await {
        Ok(_) => Ok(()),
        Err(NetError::Failed { stderr, .. }) if stderr.contains("No such file") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the switch namespace with one bridge per DC LAN and one per DC WAN access
/// segment (DCs with gateways).
pub async fn build_switch(plan: &Plan) -> Result<(), NetError> {
    let sw = plan.switch_netns.as_str();
    ip(&["netns", "add", sw], None).await?;
    let mut batch = String::from("link set lo up\n");
    let bridges = plan
        .dcs
        .iter()
        .map(|d| d.bridge.as_str())
        .chain(plan.dcs.iter().filter_map(|d| d.wan_bridge.as_deref()));
    for br in bridges {
        // STP off (the default) and no forward delay: ports forward as soon as they are up.
        batch.push_str(&format!(
            "link add {br} type bridge forward_delay 0 stp_state 0\nlink set {br} up\n"
        ));
    }
    ip(&["-n", sw, "-batch", "-"], Some(&batch)).await.map(drop)
}

/// Creates `host`'s namespace, its veth pair(s) to the switch and its addresses.
pub async fn build_host(plan: &Plan, host: &HostPlan) -> Result<(), NetError> {
    let sw = plan.switch_netns.as_str();
    let ns = host.netns.as_str();
    ip(&["netns", "add", ns], None).await?;
    let dc = plan.dc(&host.dc);
    let lan_bridge = dc.map(|d| d.bridge.clone()).unwrap_or_default();
    let mut links = vec![(
        "eth0",
        lan_bridge,
        format!("{}/{LAN_PREFIX_LEN}", host.lan_ip),
    )];
    let wan_bridge = dc.and_then(|d| d.wan_bridge.clone());
    if let (Some(wan), Some(bridge)) = (host.wan_ip, wan_bridge) {
        links.push(("eth1", bridge, format!("{wan}/{WAN_PREFIX_LEN}")));
    }
    let mut sw_batch = String::new();
    let mut host_batch = String::from("link set lo up\n");
    for ((ifname, bridge, cidr), port) in links.iter().zip(&host.switch_ports) {
        sw_batch.push_str(&format!(
            "link add {port} type veth peer name {ifname} netns {ns}\n\
             link set {port} master {bridge} up\n"
        ));
        host_batch.push_str(&format!(
            "addr add {cidr} dev {ifname}\nlink set {ifname} up\n"
        ));
    }
    // Other DCs' WAN segments are reached through the WAN router only.
    if let (Some(_), Some(hop)) = (host.wan_ip, plan.wan_next_hop(&host.dc)) {
        host_batch.push_str(&format!("route add {WAN_SUPERNET} via {hop} dev eth1\n"));
    }
    ip(&["-n", sw, "-batch", "-"], Some(&sw_batch)).await?;
    ip(&["-n", ns, "-batch", "-"], Some(&host_batch))
        .await
        .map(drop)
}
