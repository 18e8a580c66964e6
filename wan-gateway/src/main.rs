//! The `meridian-gateway` binary: parse Consul-style flags, set up logging, run the gateway
//! until SIGINT or SIGTERM (then leave both pools); SIGHUP reloads its certificates.

use std::process::ExitCode;

use clap::Parser;
use meridian_gateway::Options;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let opts = Options::parse_from(meridian_config::normalize_args(std::env::args()));
    let filter = EnvFilter::try_new(&opts.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if opts.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("==> starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("==> {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(opts: Options) -> anyhow::Result<()> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let token = CancellationToken::new();
    let gateway = meridian_gateway::start(&opts, token.clone()).await?;
    loop {
        tokio::select! {
            _ = int.recv() => break,
            _ = term.recv() => break,
            // SIGHUP re-reads the certificates: new connections get them, live ones go on.
            _ = hup.recv() => match &gateway.tls {
                Some(tls) => match tls.reload() {
                    Ok(()) => {
                        let held = tls.fingerprints();
                        tracing::info!(
                            reloads = tls.reloads(),
                            cert_sha256 = held.cert.as_deref().unwrap_or("-"),
                            ca_sha256 = %held.cas.join(","),
                            "reloaded the TLS certificates"
                        );
                    }
                    Err(e) => tracing::error!(cause = %e, "TLS reload failed; keeping the current certificates"),
                },
                None => tracing::info!("SIGHUP: nothing to reload (no TLS)"),
            },
        }
    }
    tracing::info!("leaving the LAN and WAN pools");
    gateway.shutdown().await;
    Ok(())
}
