//! The `meridian` command line: clap definitions and the subcommands that do not run an agent.
//!
//! `agent` is dispatched by `main.rs` (it owns the runtime and signals). Everything else runs
//! here: local commands (`version`, `validate`, `keygen`, `tls`) and HTTP-API clients (`kv`,
//! `catalog`, `members`, `info`, `operator`, `leave`, `join`, `force-leave`, `event`,
//! `keyring`, `rtt`, `acl`, `snapshot`, `monitor`) whose output text and exit codes follow
//! Consul's CLI, so scripts written for `consul` keep working. Messages such as
//! `Error! No key exists at: KEY` keep Consul's wording and capitalization on purpose.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use clap::{Parser, Subcommand};
use meridian_config::AgentFlags;

pub mod acl;
mod acl_print;
pub mod catalog;
pub mod client;
mod client_tls;
pub mod federation;
pub mod gossip;
pub mod info;
pub mod keyring;
pub mod kv;
pub mod members;
pub mod monitor;
pub mod operator;
pub mod rtt;
pub mod snapshot;
mod table;
pub mod tls;

pub use client::{ApiClient, ClientError, HttpFlags, ServerFlags};

/// Consul's serf protocol line, printed by `version`.
const PROTOCOL_LINE: &str = "Protocol 2 spoken by default, understands 2 to 3 (agent will automatically use protocol >2 when speaking to compatible agents)";

/// `meridian`: Consul-compatible service discovery.
#[derive(Debug, Parser)]
#[command(name = "meridian", version, about, propagate_version = true)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands, named as Consul's.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an agent (server or client).
    Agent(Box<AgentFlags>),
    /// Print the version.
    Version,
    /// Check config files or directories for errors.
    Validate(ValidateArgs),
    /// Generate a gossip encryption key.
    Keygen,
    /// Manage gossip encryption keys on every member.
    Keyring(keyring::KeyringArgs),
    /// Read and write the KV store.
    #[command(subcommand)]
    Kv(kv::KvCommand),
    /// List datacenters, nodes and services.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// List the members of the cluster.
    Members(members::MembersArgs),
    /// Print debugging information about the agent.
    Info(info::InfoArgs),
    /// Cluster operator tools.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// Make the agent leave the cluster gracefully and shut down.
    Leave(members::LeaveArgs),
    /// Tell the agent to join the cluster through other agents.
    Join(gossip::JoinArgs),
    /// Force a failed member of the cluster into the left state.
    ForceLeave(gossip::ForceLeaveArgs),
    /// Fire a new user event.
    Event(gossip::EventArgs),
    /// Estimate the network round trip time between two nodes.
    Rtt(rtt::RttArgs),
    /// Stream the logs of a running agent.
    Monitor(monitor::MonitorArgs),
    /// Manage ACL tokens, policies and roles.
    #[command(subcommand)]
    Acl(acl::AclCommand),
    /// Builtin helpers for creating CAs and certificates.
    #[command(subcommand)]
    Tls(tls::TlsCommand),
    /// Save, restore and inspect snapshots of the servers' state.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
}

/// `meridian validate PATH...`
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Only report errors.
    #[arg(long)]
    pub quiet: bool,
    /// Config files or directories, merged in order.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Why a subcommand failed; `Display` is what the user sees on stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A message in Consul's wording, with the exit code Consul uses for it.
    #[error("{message}")]
    Message {
        /// The text.
        message: String,
        /// The process exit code.
        code: u8,
    },
    /// A request to the agent failed; `context` is Consul's prefix, e.g. `Error querying Consul agent`.
    #[error("{context}: {source}")]
    Http {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: ClientError,
    },
    /// Writing the output failed.
    #[error("error writing output: {0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    /// A failure message with exit code 1.
    pub(crate) fn msg(message: impl Into<String>) -> Self {
        CliError::Message {
            message: message.into(),
            code: 1,
        }
    }

    /// A failed request with Consul's context prefix.
    pub(crate) fn http(context: impl Into<String>) -> impl FnOnce(ClientError) -> CliError {
        let context = context.into();
        move |source| CliError::Http { context, source }
    }

    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Message { code, .. } => *code,
            _ => 1,
        }
    }
}

/// Runs any subcommand except `agent`, writing results to stdout and errors to stderr.
pub fn run(command: Command) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run_with(command, &mut out)),
        Err(e) => Err(CliError::Io(e)),
    };
    let _ = out.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = e.to_string();
            // `members` with no match exits 2 silently, as Consul's.
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs a subcommand, writing its output to `out`.
pub async fn run_with(command: Command, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        Command::Agent(_) => Err(CliError::msg(
            "the agent subcommand is run by the binary's main",
        )),
        Command::Version => version(out),
        Command::Validate(args) => validate(&args, out),
        Command::Keygen => keygen(out),
        Command::Keyring(args) => keyring::run(args, out).await,
        Command::Kv(cmd) => kv::run(cmd, out).await,
        Command::Catalog(cmd) => catalog::run(cmd, out).await,
        Command::Members(args) => members::run(args, out).await,
        Command::Info(args) => info::run(args, out).await,
        Command::Operator(cmd) => operator::run(cmd, out).await,
        Command::Leave(args) => members::leave(args, out).await,
        Command::Join(args) => gossip::join(args, out).await,
        Command::ForceLeave(args) => gossip::force_leave(args, out).await,
        Command::Event(args) => gossip::event(args, out).await,
        Command::Rtt(args) => rtt::run(args, out).await,
        Command::Monitor(args) => monitor::run(args, out).await,
        Command::Tls(cmd) => tls::run(cmd, out),
        Command::Acl(cmd) => acl::run(cmd, out).await,
        Command::Snapshot(cmd) => snapshot::run(cmd, out).await,
    }
}

/// `meridian version`, shaped like `consul version`.
fn version(out: &mut dyn Write) -> Result<(), CliError> {
    writeln!(out, "Meridian v{}", env!("CARGO_PKG_VERSION"))?;
    writeln!(
        out,
        "Revision {}",
        option_env!("MERIDIAN_REVISION").unwrap_or("unknown")
    )?;
    writeln!(out, "{PROTOCOL_LINE}")?;
    Ok(())
}

/// `meridian validate`: `Configuration is valid!` or Consul's failure line, exit 1.
fn validate(args: &ValidateArgs, out: &mut dyn Write) -> Result<(), CliError> {
    match meridian_config::validate_paths(&args.paths) {
        Ok(cfg) => {
            // As Consul's validate: warnings go to stderr, even with -quiet.
            for w in &cfg.warnings {
                eprintln!("{w}");
            }
            if !args.quiet {
                writeln!(out, "Configuration is valid!")?;
            }
            Ok(())
        }
        Err(e) => Err(CliError::msg(format!("Config validation failed: {e}"))),
    }
}

/// `meridian keygen`: 32 random bytes, base64, from the OS CSPRNG.
fn keygen(out: &mut dyn Write) -> Result<(), CliError> {
    let mut key = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| CliError::msg("Error reading random data: the system random source failed"))?;
    writeln!(
        out,
        "{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )?;
    Ok(())
}
