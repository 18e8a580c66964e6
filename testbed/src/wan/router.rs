//! The WAN router namespace: a leg on every DC's WAN access segment, a persistent TUN
//! device, policy routing that sends every arriving packet into it, and the emulator
//! process that reads it (see the module above for the path of a packet).
//!
//! All by iproute2 and sysctl as child processes; the emulator attaches to the TUN device
//! by name, so it can be restarted without touching the routes.

use std::path::PathBuf;
use std::time::Duration;

use super::control::{Request, WanError, request, socket_path_fits};
use super::{LinksFile, ROUTE_TABLE, ROUTER_DIR, TUN, WanLink};
use crate::error::TestbedError;
use crate::netns::{NetError, ip, run};
use crate::plan::{Plan, WAN_PREFIX_LEN, WanRouterPlan};
use crate::proc;
use crate::state::{RunDir, State};
use crate::wait;

/// How long the emulator has to attach and answer.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// `hosts/wan-router/links.json`.
pub fn links_path(run: &RunDir) -> PathBuf {
    run.host_dir(ROUTER_DIR).join("links.json")
}

/// `hosts/wan-router/control.sock`.
pub fn control_path(run: &RunDir) -> PathBuf {
    run.host_dir(ROUTER_DIR).join("control.sock")
}

/// `hosts/wan-router/emulator.log`.
pub fn log_path(run: &RunDir) -> PathBuf {
    run.host_dir(ROUTER_DIR).join("emulator.log")
}

/// Makes the router namespace of `plan` (its access bridges must exist).
pub async fn build(plan: &Plan, router: &WanRouterPlan) -> Result<(), NetError> {
    let ns = router.netns.as_str();
    ip(&["netns", "add", ns], None).await?;
    let mut sw_batch = String::new();
    let mut batch = String::from("link set lo up\n");
    for p in &router.ports {
        sw_batch.push_str(&format!(
            "link add {} type veth peer name {} netns {ns}\nlink set {} master {} up\n",
            p.switch_port, p.ifname, p.switch_port, p.bridge
        ));
        batch.push_str(&format!(
            "addr add {}/{WAN_PREFIX_LEN} dev {}\nlink set {} up\n\
             rule add iif {} lookup {ROUTE_TABLE} pref 100\n",
            p.ip, p.ifname, p.ifname, p.ifname
        ));
    }
    // Persistent, so the routes stay while no emulator is attached (packets then queue
    // in the device and are dropped: a dead emulator is a dead WAN, not a bypass).
    batch.push_str(&format!(
        "tuntap add dev {TUN} mode tun\nlink set {TUN} up\nroute add default dev {TUN} table {ROUTE_TABLE}\n"
    ));
    ip(&["-n", &plan.switch_netns, "-batch", "-"], Some(&sw_batch)).await?;
    ip(&["-n", ns, "-batch", "-"], Some(&batch)).await?;
    // Forward; no reverse-path filter (packets come back in through `emu` with sources
    // that route out of a `w` leg); no IPv6 chatter into the emulator.
    let tun_rp = format!("net.ipv4.conf.{TUN}.rp_filter=0");
    let tun_v6 = format!("net.ipv6.conf.{TUN}.disable_ipv6=1");
    let sysctls = [
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
        tun_rp.as_str(),
        tun_v6.as_str(),
    ];
    let mut args = vec!["netns", "exec", ns, "sysctl", "-q", "-w"];
    args.extend(sysctls);
    run("ip", &args, None).await.map(drop)
}

/// Writes the links file the emulator reads.
pub fn write_links(run: &RunDir, links: &[WanLink]) -> Result<(), TestbedError> {
    let dir = run.host_dir(ROUTER_DIR);
    run.create_dir(&dir)?;
    let path = links_path(run);
    let file = LinksFile {
        links: links.to_vec(),
    };
    let tmp = dir.join("links.json.tmp");
    let text = serde_json::to_string_pretty(&file).unwrap_or_default();
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| TestbedError::Io {
            what: format!("writing {}", path.display()),
            source,
        })
}

/// Starts the emulator in the router namespace (recorded in `state`, not saved here) and
/// waits until it answers on its control socket.
pub async fn start_emulator(state: &mut State, run: &RunDir) -> Result<(), TestbedError> {
    let Some(router) = state.plan.wan_router.clone() else {
        return Ok(());
    };
    write_links(run, &state.wan_links)?;
    let control = control_path(run);
    if !socket_path_fits(&control) {
        return Err(WanError::BadValue(format!(
            "the run directory is too deep for a Unix socket ({}); use a shorter --run-dir",
            control.display()
        ))
        .into());
    }
    let argv: Vec<String> = vec![
        state.testbed.to_string_lossy().into_owned(),
        "_wan-emulator".into(),
        "--tun".into(),
        TUN.into(),
        "--links".into(),
        links_path(run).to_string_lossy().into_owned(),
        "--control".into(),
        control.to_string_lossy().into_owned(),
    ];
    let p = proc::spawn_in(&router.netns, &argv, &log_path(run))?;
    state.wan_emulator = Some(p.clone());
    let log = log_path(run);
    wait::until(
        "the link emulator answering",
        START_DEADLINE,
        &format!("see {}", log.display()),
        || async {
            if proc::liveness(&p) == proc::Liveness::Dead {
                return Some(Err(TestbedError::AgentDied {
                    host: "wan-router".into(),
                    log: log.clone(),
                }));
            }
            request(run, Request::Stats).await.ok().map(|_| Ok(()))
        },
    )
    .await?
}
