//! Starting and stopping the programs on hosts: the `meridian agent` command line for each
//! role, the gateway's (when a binary is given), and a graceful stop with a deadline. With
//! the topology's `[gossip]` and `[tls]`, the command lines carry the run's gossip keys and
//! name the host's certificate files (`secrets`).

use std::time::Duration;

use rustix::process::Signal;

use crate::error::TestbedError;
use crate::plan::{HostPlan, Role};
use crate::proc::{self, Liveness};
use crate::secrets;
use crate::state::{RunDir, State};
use crate::wait;

/// How long a stopping agent gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The command line for `host` (run as `ip netns exec NS <argv>`), or `None` when the host
/// runs nothing (a gateway without a gateway binary).
pub fn argv(state: &State, run: &RunDir, host: &HostPlan) -> Option<Vec<String>> {
    let servers: Vec<String> = state
        .plan
        .servers_of(&host.dc)
        .filter(|s| s.name != host.name)
        .map(|s| s.lan_ip.to_string())
        .collect();
    let ip = host.lan_ip.to_string();
    let data = run.data_dir(&host.name).to_string_lossy().into_owned();
    let mut args: Vec<String> = match host.role {
        Role::Gateway => return gateway_argv(state, run, host, &data, &servers),
        Role::Server => {
            let expect = state.plan.servers_of(&host.dc).count();
            vec![
                state.meridian.to_string_lossy().into_owned(),
                "agent".into(),
                "-server".into(),
                "-bootstrap-expect".into(),
                expect.to_string(),
            ]
        }
        Role::Client => vec![
            state.meridian.to_string_lossy().into_owned(),
            "agent".into(),
        ],
    };
    args.extend(
        [
            "-datacenter",
            &host.dc,
            "-node",
            &host.name,
            "-bind",
            &ip,
            // HTTP and DNS on the LAN address and on the host's own loopback, so
            // `testbed exec HOST -- dig @127.0.0.1 -p 8600 ...` works too.
            "-client",
            &format!("{ip} 127.0.0.1"),
            "-data-dir",
            &data,
            // All hosts start at once: the first join attempt may find nobody listening yet.
            "-retry-interval",
            "1s",
            "-hcl",
            &format!(
                "performance {{ raft_multiplier = {} }}",
                state.topology.agent.raft_multiplier
            ),
        ]
        .map(String::from),
    );
    for s in &servers {
        args.extend(["-retry-join".to_string(), s.clone()]);
    }
    if let Some(key) = state.gossip_keys.lan.get(&host.dc) {
        args.extend(["-encrypt".to_string(), key.clone()]);
    }
    if state.tls.is_some() {
        args.extend([
            "-hcl".to_string(),
            tls_hcl(&secrets::host_files(run, &host.name)),
        ]);
    }
    let spec = state.topology.datacenter.get(&host.dc);
    let extra = spec.and_then(|d| match host.role {
        Role::Server => d.server_hcl.clone(),
        Role::Client => d.client_hcl.clone(),
        Role::Gateway => None,
    });
    if let Some(hcl) = extra {
        args.extend(["-hcl".to_string(), hcl]);
    }
    args.extend(state.topology.agent.extra_args.iter().cloned());
    Some(args)
}

/// Consul's TLS stanza for an agent: its files, both directions verified, servers verified
/// by name (`server.<dc>.consul`). Paths are quoted as HCL strings; one attribute per
/// line, as HCL wants.
fn tls_hcl(f: &secrets::HostTls) -> String {
    let q = |p: &std::path::Path| hcl_string(&p.to_string_lossy());
    format!(
        "tls {{\n  defaults {{\n    ca_file = {}\n    cert_file = {}\n    key_file = {}\n    \
         verify_incoming = true\n    verify_outgoing = true\n  }}\n  \
         internal_rpc {{\n    verify_server_hostname = true\n  }}\n}}",
        q(&f.ca),
        q(&f.cert),
        q(&f.key)
    )
}

/// `s` as an HCL string literal (quotes and backslashes escaped, and the template
/// openers `${` and `%{` doubled).
fn hcl_string(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace("${", "$${")
        .replace("%{", "%%{");
    format!("\"{escaped}\"")
}

/// The gateway's command line (`meridian-gateway --help`): its LAN address joins its DC's
/// pool through the DC's servers, its WAN address (on the WAN access segment, the only
/// interface with a route to other DCs) joins every other gateway. WAN gossip and WAN RPC
/// share port 8302 there; LAN RPC is 8300 on the LAN address. The advertised addresses
/// default to the bound ones, which are specific here.
fn gateway_argv(
    state: &State,
    run: &RunDir,
    host: &HostPlan,
    data: &str,
    servers: &[String],
) -> Option<Vec<String>> {
    let bin = state.gateway.as_ref()?;
    let wan = host.wan_ip?;
    let mut args = vec![
        bin.to_string_lossy().into_owned(),
        "-datacenter".into(),
        host.dc.clone(),
        "-node".into(),
        host.name.clone(),
        "-bind".into(),
        host.lan_ip.to_string(),
        "-bind-wan".into(),
        wan.to_string(),
        "-data-dir".into(),
        data.into(),
        // As for the agents: every host starts at once, and the gateway's default (30 s,
        // Consul's) would make a first join that finds nobody listening cost 30 s.
        "-retry-interval".into(),
        "1s".into(),
    ];
    // The DC's agents seal LAN gossip with this key when the topology gives them one; the
    // gateway is in the same pool. (The other `extra_args` are agent flags it does not take.)
    let lan_key = encrypt_key(&state.topology.agent.extra_args)
        .or_else(|| state.gossip_keys.lan.get(&host.dc).cloned());
    if let Some(key) = lan_key {
        args.extend(["-encrypt".into(), key]);
    }
    if let Some(key) = &state.gossip_keys.wan {
        args.extend(["-encrypt-wan".into(), key.clone()]);
    }
    if state.tls.is_some() {
        let f = secrets::host_files(run, &host.name);
        for (flag, path) in [
            ("-ca-file", &f.ca),
            ("-cert-file", &f.cert),
            ("-key-file", &f.key),
        ] {
            args.extend([flag.into(), path.to_string_lossy().into_owned()]);
        }
        for flag in [
            "-verify-incoming",
            "-verify-outgoing",
            "-verify-server-hostname",
        ] {
            args.push(flag.into());
        }
    }
    for s in servers {
        args.extend(["-retry-join".into(), s.clone()]);
    }
    for g in state.plan.hosts.iter().filter(|g| g.role == Role::Gateway) {
        if let (true, Some(ip)) = (g.name != host.name, g.wan_ip) {
            args.extend(["-retry-join-wan".into(), ip.to_string()]);
        }
    }
    Some(args)
}

/// The value of `-encrypt` in agent flags (`-encrypt K`, `--encrypt K`, `-encrypt=K`).
fn encrypt_key(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let flag = a.trim_start_matches('-');
        if a.starts_with('-') && flag == "encrypt" {
            return it.next().cloned();
        }
        if a.starts_with('-')
            && let Some(key) = flag.strip_prefix("encrypt=")
        {
            return Some(key.to_string());
        }
    }
    None
}

/// Starts `host`'s program (if it has one) and records it in `state` (not saved here).
pub fn start(state: &mut State, run: &RunDir, host: &HostPlan) -> Result<bool, TestbedError> {
    let Some(argv) = argv(state, run, host) else {
        return Ok(false);
    };
    run.create_dir(&run.data_dir(&host.name))?;
    let p = proc::spawn_in(&host.netns, &argv, &run.log_path(&host.name))?;
    state.processes.insert(host.name.clone(), p);
    state.commands.insert(host.name.clone(), argv);
    Ok(true)
}

/// Sends `sig` to `host`'s process group and, for SIGKILL/SIGTERM, waits until it is gone
/// (SIGKILL after `STOP_GRACE` when SIGTERM was not enough).
pub async fn signal(state: &State, host: &str, sig: Signal) -> Result<(), TestbedError> {
    let p = state
        .processes
        .get(host)
        .cloned()
        .ok_or_else(|| TestbedError::NotRunning(host.to_string()))?;
    proc::signal(&p, sig)?;
    if sig == Signal::TERM {
        // A stopped process handles SIGTERM only once continued.
        proc::signal(&p, Signal::CONT)?;
        let gone = wait::until("graceful stop", STOP_GRACE, "", || async {
            (proc::liveness(&p) == Liveness::Dead).then_some(())
        })
        .await;
        if gone.is_err() {
            proc::signal(&p, Signal::KILL)?;
        }
    }
    if sig == Signal::TERM || sig == Signal::KILL {
        wait::until(
            &format!("exit of {host}'s agent"),
            Duration::from_secs(10),
            "",
            || async { (proc::liveness(&p) == Liveness::Dead).then_some(()) },
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{encrypt_key, hcl_string};

    #[test]
    fn paths_become_hcl_strings() {
        assert_eq!(
            hcl_string("/r/hosts/a/tls/ca.pem"),
            "\"/r/hosts/a/tls/ca.pem\""
        );
        assert_eq!(hcl_string("a\"b\\c${d}$e"), "\"a\\\"b\\\\c$${d}$e\"");
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_gossip_key_is_found_in_every_spelling_of_the_agent_flag() {
        for spelled in [
            args(&["-log-level", "debug", "-encrypt", "K1"]),
            args(&["--encrypt", "K1"]),
            args(&["-encrypt=K1"]),
            args(&["--encrypt=K1", "-ui"]),
        ] {
            assert_eq!(encrypt_key(&spelled).as_deref(), Some("K1"), "{spelled:?}");
        }
        assert_eq!(encrypt_key(&args(&["-encrypt-wan", "K2", "-ui"])), None);
        assert_eq!(encrypt_key(&args(&["encrypt", "K3"])), None);
        assert_eq!(encrypt_key(&[]), None);
    }
}
