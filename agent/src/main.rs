//! The `meridian` binary: parse Consul-style arguments, set up logging, run the subcommand and
//! turn its outcome into an exit code. No logic that tests need lives here.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use std::sync::Arc;

use meridian_agent::agent::{StopSignal, Stopper};
use meridian_agent::cli::{self, Cli, Command};
use meridian_agent::local::reload::{ConfigSource, Reload};
use meridian_agent::logs::LogStream;
use meridian_config::{AgentFlags, Config, normalize_args};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

fn main() -> ExitCode {
    // Only ring is meant to be compiled in; installing it explicitly keeps rustls from
    // panicking if another provider ever sneaks in (rust-stack.md §3.3).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    match cli.command {
        Command::Agent(flags) => match run_agent(&flags) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("==> {e:#}");
                ExitCode::FAILURE
            }
        },
        other => {
            let _ = init_tracing("warn", false);
            cli::run(other)
        }
    }
}

fn run_agent(flags: &AgentFlags) -> anyhow::Result<()> {
    let cfg = Config::load(flags).context("error loading configuration")?;
    let logs = init_tracing(&cfg.log_level, cfg.log_json);
    meridian_agent::agent::log_config_warnings(&cfg);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let flags = flags.clone();
    let source: ConfigSource = Box::new(move || Config::load(&flags).map_err(|e| e.to_string()));
    runtime.block_on(async {
        // Handlers go in before anything starts: a signal that arrives while the agent is
        // still binding or electing is then held for the stopper, not fatal by default.
        let signals = Signals::install().context("installing signal handlers")?;
        meridian_agent::agent::run_with(cfg, source, logs, |stopper, reload| {
            tokio::spawn(stop_on_signal(stopper, signals.int, signals.term));
            tokio::spawn(reload_on_hangup(reload, signals.hup));
        })
        .await
        .context("agent failed")
    })
}

/// The agent's signal streams, registered at start.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// `SIGHUP` reloads the config files' service definitions, as Consul's.
async fn reload_on_hangup(reload: Arc<Reload>, mut hup: Signal) {
    while hup.recv().await.is_some() {
        match reload.reload().await {
            Ok(()) => tracing::info!("reloaded configuration"),
            Err(e) => {
                tracing::error!(cause = %e, "reload failed; keeping the running configuration")
            }
        }
    }
}

/// Stops the agent on the first SIGINT or SIGTERM (leaving the gossip pool as the config
/// says for that signal); a second signal exits at once.
async fn stop_on_signal(stopper: Stopper, mut int: Signal, mut term: Signal) {
    let signal = tokio::select! {
        _ = int.recv() => StopSignal::Interrupt,
        _ = term.recv() => StopSignal::Terminate,
    };
    tracing::info!(?signal, "caught signal, shutting down");
    stopper.stop(signal);
    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    // Not eprintln!: it panics when stderr is closed, and the exit would never come.
    let _ = writeln!(
        std::io::stderr(),
        "==> second signal received, exiting immediately"
    );
    std::process::exit(1);
}

/// Text or JSON logs to stderr at `level` (Consul's names; `err` means `error`). `RUST_LOG`,
/// when set, wins, for per-module debugging. Colour only on a terminal. The returned stream
/// feeds `/v1/agent/monitor` at each monitor's own level (`logs.rs`).
fn init_tracing(level: &str, json: bool) -> LogStream {
    let level = match level.to_ascii_lowercase().as_str() {
        "err" => "error".to_string(),
        other => other.to_string(),
    };
    // openraft and sqlx log routine internals at info; keep them to warnings unless asked.
    // hickory logs every DNS request at info (two lines each: a flood under load, and it
    // costs throughput); Consul logs queries at debug, so they show from `debug` on.
    let dns = match level.as_str() {
        "debug" | "trace" => "",
        _ => ",hickory_server=warn,hickory_proto=warn,hickory_net=warn",
    };
    // openraft warns on every failed replication RPC and heartbeat (hundreds a minute for
    // one dead peer); the transport logs a peer's failure and recovery once each and counts
    // the rest (cluster/peer_health.rs), so those targets show errors only.
    let quiet = ",openraft::replication=error,openraft::core::heartbeat=error,\
                 openraft::engine::handler::replication_handler=error";
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},openraft=warn,sqlx=warn{quiet}{dns}")));
    let logs = LogStream::default();
    let registry = tracing_subscriber::registry().with(logs.layer());
    // Colour codes only on a terminal: a file or a pipe gets plain text.
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if json {
        registry.with(stderr.json().with_filter(filter)).try_init()
    } else {
        registry.with(stderr.with_filter(filter)).try_init()
    };
    logs
}
