//! Meridian's testbed: datacenters of real `meridian` agents, each host in its own network
//! namespace on one machine, with faults on demand and asserting scenarios.
//!
//! # Layout
//!
//! ```text
//!  topology.toml/.hcl ──▶ topology (parse, validate, errors with lines)
//!                              │
//!                              ▼
//!                            plan (hosts, namespaces, addresses; pure)
//!                              │
//!   up ──▶ netns (ip: namespaces, bridges, veths) ──▶ agents/proc (meridian in each ns)
//!    │                                                     │
//!    └── state (run dir, state.json: what this run made) ◀─┘
//!                              │
//!   status / exec / logs       │       down (kill everything in the namespaces, delete them)
//!   faults ──▶ proc signals, firewall (nft drop rules inside namespaces)
//!   scenario ──▶ helper (`testbed _probe`, `_kv-writer`, `_reads` run *inside* a namespace)
//!   wan ──▶ router namespace + `_wan-emulator` (TUN: delay, loss, blackhole per DC pair)
//! ```
//!
//! Everything is driven through child processes (`ip`, `nft`, `ip netns exec`): the
//! workspace forbids `unsafe`, so no `setns` here.

pub mod agents;
pub mod cli;
pub mod dns_wait;
pub mod down;
pub mod error;
pub mod faults;
pub mod firewall;
pub mod gateways;
pub mod helper;
pub mod hosts;
pub mod jepsen;
pub mod netns;
pub mod out;
pub mod plan;
pub mod preflight;
pub mod probe;
pub mod proc;
pub mod scenario;
pub mod secrets;
pub mod state;
pub mod status;
pub mod topology;
pub mod up;
pub mod wait;
pub mod wan;

use cli::{Cli, Command, WanCommand};
use error::TestbedError;
use faults::ProcessFault;
use state::RunDir;

/// Runs one (non-helper) command; the process exit code on success.
pub async fn run(cli: Cli) -> Result<i32, TestbedError> {
    let run = RunDir::new(&cli.run_dir);
    match cli.command {
        Command::Up {
            topology,
            meridian,
            gateway,
            timeout,
        } => {
            let args = up::UpArgs {
                topology: &topology,
                meridian: meridian.as_deref(),
                gateway: gateway.as_deref(),
                timeout,
            };
            up::up(&run, args).await?;
        }
        Command::Status { json } => status::status(&run, json).await?,
        Command::Exec { host, command } => return hosts::exec(&run, &host, &command).await,
        Command::Logs { host, follow } => hosts::logs(&run, &host, follow).await?,
        Command::Down { prefix, purge } => down::down(&run, prefix.as_deref(), purge).await?,
        Command::Kill { host } => faults::process(&run, &host, ProcessFault::Kill).await?,
        Command::Stop { host } => faults::process(&run, &host, ProcessFault::Stop).await?,
        Command::Cont { host } => faults::process(&run, &host, ProcessFault::Cont).await?,
        Command::Restart { host } => faults::process(&run, &host, ProcessFault::Restart).await?,
        Command::Partition { a, b } => faults::partition(&run, &a, &b).await?,
        Command::Isolate { host } => faults::isolate(&run, &host).await?,
        Command::Heal => faults::heal(&run).await?,
        Command::Scenario { name, doc } => scenario::run(&run, name, doc.as_deref()).await?,
        Command::Wan { command } => wan_command(&run, command).await?,
        Command::Jepsen(opts) => return jepsen::command(&run, opts).await,
        // `main` runs helpers before it builds a runtime; from here they run blocking.
        Command::Probe { .. }
        | Command::JepsenClients { .. }
        | Command::KvWriter { .. }
        | Command::Reads { .. }
        | Command::WanEmulator { .. }
        | Command::Echo { .. }
        | Command::DnsWait { .. }
        | Command::Ping { .. } => {
            let code = tokio::task::spawn_blocking(move || run_helper(&cli).unwrap_or(1)).await;
            return Ok(code.unwrap_or(1));
        }
    }
    Ok(0)
}

async fn wan_command(run: &RunDir, command: WanCommand) -> Result<(), TestbedError> {
    use wan::control::{LinkChange, change, show};
    match command {
        WanCommand::Show { json } => show(run, json).await,
        WanCommand::Delay {
            a,
            b,
            delay,
            jitter,
        } => change(run, &a, &b, LinkChange::Delay(delay, jitter)).await,
        WanCommand::Loss { a, b, percent } => change(run, &a, &b, LinkChange::Loss(percent)).await,
        WanCommand::Blackhole { a, b } => change(run, &a, &b, LinkChange::Blackhole).await,
        WanCommand::Restore { a, b } => change(run, &a, &b, LinkChange::Restore).await,
        WanCommand::Probe {
            from,
            to,
            count,
            interval,
            wait,
            udp_only,
            json,
        } => {
            let args = wan::probe::ProbeArgs {
                from,
                to,
                count,
                interval,
                wait,
                udp_only,
            };
            wan::probe::command(run, args, json).await
        }
    }
}

/// Runs a hidden helper command synchronously, if `cli` is one; its exit code.
pub fn run_helper(cli: &Cli) -> Option<i32> {
    match &cli.command {
        Command::Probe { urls, put } => Some(helper::probe(urls, put.as_deref())),
        Command::JepsenClients {
            urls,
            clients,
            keys,
            prefix,
            seed,
            reads,
            secs,
            final_only,
            offset_ns,
        } => {
            let w = jepsen::workload::Workload {
                urls: urls.split(',').map(str::to_string).collect(),
                clients: *clients,
                keys: *keys,
                prefix: prefix.clone(),
                reads: *reads,
                seed: *seed,
                timeout: std::time::Duration::from_secs(5),
            };
            Some(jepsen::on_testbed::helper(
                &w,
                *secs,
                *final_only,
                *offset_ns,
            ))
        }
        Command::KvWriter {
            url,
            prefix,
            max_keys,
            max_secs,
        } => Some(helper::kv_writer(url, prefix, *max_keys, *max_secs)),
        Command::Reads {
            urls,
            every,
            timeout,
            max_count,
            max_time,
            stop_on_eof,
            put,
        } => Some(helper::reads(
            urls,
            helper::ReadPace {
                every: *every,
                timeout: *timeout,
                max_count: *max_count,
                max_time: *max_time,
                stop_on_eof: *stop_on_eof,
                put: put.clone(),
            },
        )),
        Command::WanEmulator {
            tun,
            links,
            control,
        } => Some(wan::emulator::run(tun, links, control)),
        Command::Echo { bind, port } => Some(wan::echo::echo(*bind, *port)),
        Command::DnsWait {
            server,
            name,
            expect,
            timeout,
        } => Some(dns_wait::wait(*server, name, *expect, *timeout)),
        Command::Ping {
            target,
            proto,
            count,
            interval,
            wait,
        } => Some(wan::echo::ping(
            *target,
            proto == "tcp",
            *count,
            *interval,
            *wait,
        )),
        _ => None,
    }
}
