//! `testbed`: parse flags, set up logging, run one command, exit with its code. The work is
//! in the library (`meridian_testbed::run`).

use std::io::Write;

use clap::Parser;
use meridian_testbed::cli::Cli;

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    // Helpers run inside namespaces and block: no runtime for them.
    if let Some(code) = meridian_testbed::run_helper(&cli) {
        std::process::exit(code);
    }
    let code = match tokio::runtime::Runtime::new() {
        Ok(rt) => {
            let code = match rt.block_on(meridian_testbed::run(cli)) {
                Ok(code) => code,
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "testbed: {e}");
                    e.exit_code()
                }
            };
            // Exit with the runtime alive: dropping it would wait for blocking tasks (a
            // Jepsen workload interrupted by Ctrl-C runs until its own deadline).
            std::process::exit(code);
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "testbed: cannot start a runtime: {e}");
            1
        }
    };
    std::process::exit(code);
}
