//! `meridian tls ca create` and `meridian tls cert create`: Consul's builtin CA helpers,
//! with Consul's flags (`-server`, `-dc dc1`, `-additional-dnsname X`, ...), file names
//! (`consul-agent-ca.pem`, `dc1-server-consul-0.pem`) and output (`==> Saved ...`), writing
//! into the working directory. Never overwrites a file. `-gateway` is Meridian's: a
//! certificate for a WAN gateway, `gateway.<dc>.<domain>`.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use meridian_tls::{
    CertKind, CertSpec, DEFAULT_CA_DAYS, DEFAULT_CERT_DAYS, GenerateError, PemPair, ca_file_names,
    create_ca, create_cert,
};

use super::CliError;

/// Consul's warning before it writes a server certificate.
const SERVER_WARNING: &str = "==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys.";

/// `tls ca|cert ...`
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Helpers for the certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Helpers for certificates.
    #[command(subcommand)]
    Cert(CertCommand),
}

/// `tls ca ...`
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a new CA (`<domain>-agent-ca.pem`, `<domain>-agent-ca-key.pem`).
    Create(CaCreateArgs),
}

/// `tls cert ...`
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Create a new certificate signed by the CA.
    Create(CertCreateArgs),
}

/// `tls ca create [-domain consul] [-days 1825]`
#[derive(Debug, Args)]
pub struct CaCreateArgs {
    /// Domain of the cluster; names the files.
    #[arg(long, default_value = "consul")]
    pub domain: String,
    /// Days the CA is valid for.
    #[arg(long, default_value_t = DEFAULT_CA_DAYS)]
    pub days: u32,
}

/// `tls cert create -server|-client|-gateway|-cli [-dc dc1] [-domain consul] ...`
#[derive(Debug, Args)]
pub struct CertCreateArgs {
    /// A server certificate (`server.<dc>.<domain>`).
    #[arg(long)]
    pub server: bool,
    /// A client agent certificate (`client.<dc>.<domain>`).
    #[arg(long)]
    pub client: bool,
    /// A WAN gateway certificate (`gateway.<dc>.<domain>`).
    #[arg(long)]
    pub gateway: bool,
    /// A command-line client certificate (`cli.<dc>.<domain>`, client auth only).
    #[arg(long)]
    pub cli: bool,
    /// Datacenter of the certificate.
    #[arg(long, default_value = "dc1")]
    pub dc: String,
    /// Domain of the cluster.
    #[arg(long, default_value = "consul")]
    pub domain: String,
    /// With -server: also valid for `<node>.server.<dc>.<domain>`.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// The CA certificate. Default: `<domain>-agent-ca.pem`.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The CA key. Default: `<domain>-agent-ca-key.pem`.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// An extra DNS name (repeatable); `localhost` is always included.
    #[arg(long = "additional-dnsname", value_name = "NAME")]
    pub additional_dnsname: Vec<String>,
    /// An extra IP address (repeatable); `127.0.0.1` is always included.
    #[arg(long = "additional-ipaddress", value_name = "IP")]
    pub additional_ipaddress: Vec<IpAddr>,
    /// Days the certificate is valid for.
    #[arg(long, default_value_t = DEFAULT_CERT_DAYS)]
    pub days: u32,
}

/// Runs `tls ...`, writing into the working directory.
pub fn run(command: TlsCommand, out: &mut dyn Write) -> Result<(), CliError> {
    run_in(Path::new(""), command, out)
}

/// Runs `tls ...` with files in `dir` (the working directory when empty).
pub fn run_in(dir: &Path, command: TlsCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        TlsCommand::Ca(CaCommand::Create(a)) => ca_create(dir, &a, out),
        TlsCommand::Cert(CertCommand::Create(a)) => cert_create(dir, &a, out),
    }
}

fn ca_create(dir: &Path, a: &CaCreateArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let files = create_ca(dir, &a.domain, a.days).map_err(|e| CliError::msg(e.to_string()))?;
    writeln!(out, "==> Saved {}", files.cert.display())?;
    writeln!(out, "==> Saved {}", files.key.display())?;
    Ok(())
}

fn cert_create(dir: &Path, a: &CertCreateArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let kind = match (a.server, a.client, a.gateway, a.cli) {
        (true, false, false, false) => CertKind::Server,
        (false, true, false, false) => CertKind::Client,
        (false, false, true, false) => CertKind::Gateway,
        (false, false, false, true) => CertKind::Cli,
        _ => {
            return Err(CliError::msg(
                "Please provide either -server, -client, -gateway, or -cli",
            ));
        }
    };
    if a.node.is_some() && kind != CertKind::Server {
        return Err(CliError::msg("-node requires -server"));
    }
    let (ca_name, key_name) = ca_file_names(&a.domain);
    let ca = PemPair {
        cert: a.ca.clone().unwrap_or_else(|| dir.join(ca_name)),
        key: a.key.clone().unwrap_or_else(|| dir.join(key_name)),
    };
    let mut spec = CertSpec::new(kind, a.dc.clone(), a.domain.clone());
    spec.node = a.node.clone();
    spec.dns_names = a
        .additional_dnsname
        .iter()
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect();
    spec.ip_addresses = a.additional_ipaddress.clone();
    spec.days = a.days;
    for (path, what) in [(&ca.cert, "CA"), (&ca.key, "CA key")] {
        if let Err(e) = std::fs::metadata(path) {
            return Err(CliError::msg(format!(
                "Error reading {what}: {}: {e}",
                path.display()
            )));
        }
    }
    if kind == CertKind::Server {
        writeln!(out, "{SERVER_WARNING}")?;
    }
    writeln!(
        out,
        "==> Using {} and {}",
        ca.cert.display(),
        ca.key.display()
    )?;
    let files = create_cert(dir, &spec, &ca).map_err(|e| match e {
        GenerateError::Io { path, source } if path == ca.cert || path == ca.key => {
            CliError::msg(format!("Error reading CA: {}: {source}", path.display()))
        }
        other => CliError::msg(other.to_string()),
    })?;
    writeln!(out, "==> Saved {}", files.cert.display())?;
    writeln!(out, "==> Saved {}", files.key.display())?;
    Ok(())
}
