//! HTTPS for the CLI, as Consul's CLI does it: an `https://` address (or `CONSUL_HTTP_SSL=true`
//! with `host:port`), the CA from `-ca-file` / `CONSUL_CACERT`, a client certificate from
//! `-client-cert` and `-client-key` (`CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY`) for agents
//! with `verify_incoming`, `-tls-server-name` (`CONSUL_TLS_SERVER_NAME`) to verify a name
//! other than the address's host, and `CONSUL_HTTP_SSL_VERIFY=false` to skip verification.

use std::path::PathBuf;

/// Flags of every HTTP subcommand that concern HTTPS.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsFlags {
    /// CA certificate that signed the agent's HTTPS certificate. Env: CONSUL_CACERT.
    #[arg(long = "ca-file", env = "CONSUL_CACERT", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate, for agents with verify_incoming. Env: CONSUL_CLIENT_CERT.
    #[arg(long = "client-cert", env = "CONSUL_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// Its private key. Env: CONSUL_CLIENT_KEY.
    #[arg(long = "client-key", env = "CONSUL_CLIENT_KEY", value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// Name to verify the agent's certificate against (default: the address's host).
    /// Env: CONSUL_TLS_SERVER_NAME.
    #[arg(
        long = "tls-server-name",
        env = "CONSUL_TLS_SERVER_NAME",
        value_name = "NAME"
    )]
    pub tls_server_name: Option<String>,
    /// Consul's CONSUL_HTTP_SSL: `true` makes a `host:port` address HTTPS.
    #[arg(long = "consul-http-ssl", env = "CONSUL_HTTP_SSL", hide = true)]
    pub http_ssl: Option<String>,
    /// Consul's CONSUL_HTTP_SSL_VERIFY: `false` trusts any certificate.
    #[arg(
        long = "consul-http-ssl-verify",
        env = "CONSUL_HTTP_SSL_VERIFY",
        hide = true
    )]
    pub http_ssl_verify: Option<String>,
}

/// Go's `strconv.ParseBool`, as Consul reads its variables; `None` for anything else.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl TlsFlags {
    /// Whether an address without a scheme means HTTPS (`CONSUL_HTTP_SSL=true`).
    pub(crate) fn https_by_default(&self) -> Result<bool, String> {
        bool_var("CONSUL_HTTP_SSL", self.http_ssl.as_deref(), false)
    }

    /// The rustls configuration for an HTTPS agent.
    pub(crate) fn rustls_config(&self) -> Result<rustls::ClientConfig, String> {
        let verify = bool_var(
            "CONSUL_HTTP_SSL_VERIFY",
            self.http_ssl_verify.as_deref(),
            true,
        )?;
        let identity = match (&self.client_cert, &self.client_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            (None, None) => None,
            (Some(_), None) => return Err("-client-cert is set but -client-key is not".into()),
            (None, Some(_)) => return Err("-client-key is set but -client-cert is not".into()),
        };
        meridian_tls::https_client_config(self.ca_file.as_deref(), identity, verify)
            .map_err(|e| e.to_string())
    }
}

fn bool_var(name: &str, value: Option<&str>, default: bool) -> Result<bool, String> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => parse_bool(v).ok_or_else(|| format!("{name}={v:?} is not a boolean")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consul_booleans_and_pairs() {
        let f = |ssl: &str| TlsFlags {
            http_ssl: Some(ssl.into()),
            ..TlsFlags::default()
        };
        assert_eq!(f("true").https_by_default(), Ok(true));
        assert_eq!(f("0").https_by_default(), Ok(false));
        assert!(
            f("yes")
                .https_by_default()
                .unwrap_err()
                .contains("CONSUL_HTTP_SSL")
        );
        assert_eq!(TlsFlags::default().https_by_default(), Ok(false));
        let half = TlsFlags {
            client_cert: Some("c.pem".into()),
            ..TlsFlags::default()
        };
        assert!(half.rustls_config().unwrap_err().contains("-client-key"));
        let no_ca = TlsFlags::default().rustls_config().unwrap_err();
        assert!(no_ca.contains("CONSUL_CACERT"), "{no_ca}");
        let insecure = TlsFlags {
            http_ssl_verify: Some("false".into()),
            ..TlsFlags::default()
        };
        assert!(insecure.rustls_config().is_ok());
    }
}
