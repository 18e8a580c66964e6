//! The CLI's HTTP client for a running agent: address and token flags (with Consul's
//! environment variables as fallbacks), request helpers, and errors that say what failed and
//! where. Only the CLI uses this; it holds no agent logic.

use std::error::Error as _;
use std::time::Duration;

use serde::de::DeserializeOwned;

pub use super::client_tls::TlsFlags;

/// Default agent address, as Consul's.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8500";

/// Flags every HTTP subcommand accepts.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HttpFlags {
    /// Agent HTTP address (`host:port`, `http://host:port` or `https://host:port`). Env:
    /// MERIDIAN_HTTP_ADDR, then CONSUL_HTTP_ADDR. Default 127.0.0.1:8500.
    #[arg(long = "http-addr", env = "MERIDIAN_HTTP_ADDR", value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// Consul's variable, used when MERIDIAN_HTTP_ADDR and -http-addr are absent.
    #[arg(long = "consul-http-addr", env = "CONSUL_HTTP_ADDR", hide = true)]
    pub consul_http_addr: Option<String>,
    /// ACL token sent as X-Consul-Token. Env: MERIDIAN_HTTP_TOKEN, then CONSUL_HTTP_TOKEN.
    #[arg(
        long = "token",
        env = "MERIDIAN_HTTP_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Consul's token variable, used when MERIDIAN_HTTP_TOKEN and -token are absent.
    #[arg(
        long = "consul-http-token",
        env = "CONSUL_HTTP_TOKEN",
        hide = true,
        hide_env_values = true
    )]
    pub consul_http_token: Option<String>,
    /// File holding the ACL token (used when -token and MERIDIAN_HTTP_TOKEN are absent).
    /// Env: MERIDIAN_HTTP_TOKEN_FILE, then CONSUL_HTTP_TOKEN_FILE.
    #[arg(
        long = "token-file",
        env = "MERIDIAN_HTTP_TOKEN_FILE",
        value_name = "PATH"
    )]
    pub token_file: Option<std::path::PathBuf>,
    /// Consul's token-file variable; as in Consul's API client it beats CONSUL_HTTP_TOKEN.
    #[arg(
        long = "consul-http-token-file",
        env = "CONSUL_HTTP_TOKEN_FILE",
        hide = true
    )]
    pub consul_http_token_file: Option<std::path::PathBuf>,
    /// HTTPS: CA, client certificate, server name.
    #[command(flatten)]
    pub tls: TlsFlags,
}

/// Flags of subcommands that read server state: which datacenter, and whether a stale read
/// from any server is fine.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerFlags {
    /// Datacenter to query (default: the agent's).
    #[arg(long, value_name = "DC")]
    pub datacenter: Option<String>,
    /// Allow any server to answer, not only the leader.
    #[arg(long)]
    pub stale: bool,
}

/// Why a request to the agent failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The address flag or variable is not usable.
    #[error("invalid HTTP address {0:?}: {1}")]
    InvalidAddr(String, &'static str),
    /// The agent could not be reached.
    #[error("{reason} ({base})")]
    Connect {
        /// Base URL tried.
        base: String,
        /// What the OS or HTTP stack said, e.g. `connection refused`.
        reason: String,
    },
    /// The agent answered with an error status (Consul's API client wording).
    #[error("Unexpected response code: {status} ({body})")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Response body, trimmed.
        body: String,
    },
    /// The agent's answer could not be decoded.
    #[error("invalid response from agent: {0}")]
    Decode(String),
    /// HTTPS could not be set up (a missing CA, an unreadable certificate).
    #[error("HTTPS: {0}")]
    Tls(String),
    /// The token file could not be read.
    #[error("error loading token file {path}: {reason}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The token to send: `-token`/MERIDIAN_HTTP_TOKEN, else the `-token-file`/
/// MERIDIAN_HTTP_TOKEN_FILE, else CONSUL_HTTP_TOKEN_FILE, else CONSUL_HTTP_TOKEN.
fn token_of(flags: &HttpFlags) -> Result<Option<String>, ClientError> {
    if let Some(t) = flags.token.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(t.clone()));
    }
    let file = flags
        .token_file
        .as_ref()
        .or(flags.consul_http_token_file.as_ref());
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| ClientError::TokenFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        return Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty()));
    }
    Ok(flags.consul_http_token.clone().filter(|t| !t.is_empty()))
}

/// A client for one agent.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    query: Vec<(&'static str, String)>,
}

impl ApiClient {
    /// A client for the agent named by `flags`; `server` adds `dc`/`stale` to every request.
    pub fn new(flags: &HttpFlags, server: Option<&ServerFlags>) -> Result<Self, ClientError> {
        let addr = flags
            .http_addr
            .as_deref()
            .or(flags.consul_http_addr.as_deref())
            .unwrap_or(DEFAULT_HTTP_ADDR);
        let https_default = flags
            .tls
            .https_by_default()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let mut base = base_url(addr, https_default)?;
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
        if base.starts_with("https://") {
            let tls = flags.tls.rustls_config().map_err(ClientError::Tls)?;
            builder = builder.use_preconfigured_tls(tls);
            if let Some(name) = &flags.tls.tls_server_name {
                // Verify `name`: dial the address's host under that name.
                let (url, resolved) = renamed(&base, name)?;
                builder = builder.resolve(name, resolved);
                base = url;
            }
        }
        let http = builder.build().map_err(|e| ClientError::Connect {
            base: base.clone(),
            reason: e.to_string(),
        })?;
        let mut query = Vec::new();
        if let Some(s) = server {
            if let Some(dc) = &s.datacenter {
                query.push(("dc", dc.clone()));
            }
            if s.stale {
                query.push(("stale", String::new()));
            }
        }
        let token = token_of(flags)?;
        Ok(ApiClient {
            http,
            base,
            token,
            query,
        })
    }

    /// The agent's base URL, e.g. `http://127.0.0.1:8500`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `path`; `None` on 404.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<Vec<u8>>, ClientError> {
        self.send(reqwest::Method::GET, path, query, None).await
    }

    /// GET `path` and decode JSON; `None` on 404.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, ClientError> {
        match self.get(path, query).await? {
            Some(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| ClientError::Decode(e.to_string())),
            None => Ok(None),
        }
    }

    /// PUT `body` to `path`; returns the response body (404 is an error).
    pub async fn put(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Vec<u8>, ClientError> {
        self.send(reqwest::Method::PUT, path, query, Some(body))
            .await?
            .ok_or_else(not_found)
    }

    /// POST `body` to `path`; returns the response body (404 is an error).
    pub async fn post(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Vec<u8>, ClientError> {
        self.send(reqwest::Method::POST, path, query, Some(body))
            .await?
            .ok_or_else(not_found)
    }

    /// DELETE `path`; returns the response body (404 is an error).
    pub async fn delete(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<u8>, ClientError> {
        self.delete_with(path, query, None).await
    }

    /// DELETE `path` with a body (`/v1/operator/keyring` takes one).
    pub async fn delete_with(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ClientError> {
        self.send(reqwest::Method::DELETE, path, query, body)
            .await?
            .ok_or_else(not_found)
    }

    /// GET `path` and hand back the response as soon as its head is in, for a body that
    /// streams (`/v1/agent/monitor`); an error status is an error (404 too).
    pub async fn stream(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, ClientError> {
        let resp = self.start(reqwest::Method::GET, path, query, None).await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp.bytes().await.map_err(|e| self.connect_error(&e))?;
        Err(ClientError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&bytes).trim().to_string(),
        })
    }

    /// Sends a request and waits for the response's head.
    async fn start(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self
            .http
            .request(method, &url)
            .query(&self.query)
            .query(query);
        if let Some(token) = &self.token {
            req = req.header("X-Consul-Token", token);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        req.send().await.map_err(|e| self.connect_error(&e))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let resp = self.start(method, path, query, body).await?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.connect_error(&e))?
            .to_vec();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let body = String::from_utf8_lossy(&bytes).trim().to_string();
            return Err(ClientError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(Some(bytes))
    }

    /// Names the root cause (`connection refused`, `timed out`) rather than reqwest's wrapper.
    fn connect_error(&self, err: &reqwest::Error) -> ClientError {
        let mut reason = if err.is_timeout() {
            "timed out".to_string()
        } else {
            err.to_string()
        };
        let mut source = err.source();
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                reason = match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                    std::io::ErrorKind::ConnectionReset => "connection reset".into(),
                    std::io::ErrorKind::TimedOut => "timed out".into(),
                    _ => io.to_string(),
                };
                break;
            }
            reason = cause.to_string();
            source = cause.source();
        }
        ClientError::Connect {
            base: self.base.clone(),
            reason,
        }
    }
}

fn not_found() -> ClientError {
    ClientError::Status {
        status: 404,
        body: "not found".into(),
    }
}

/// `host:port`, `http://host:port[/]` or `https://host:port[/]` → the base URL; a bare
/// `host:port` is HTTPS when `https` (`CONSUL_HTTP_SSL=true`).
fn base_url(addr: &str, https: bool) -> Result<String, ClientError> {
    let addr = addr.trim().trim_end_matches('/');
    if addr.is_empty() {
        return Err(ClientError::InvalidAddr(addr.into(), "empty"));
    }
    if addr.starts_with("https://") {
        return Ok(addr.to_string());
    }
    if addr.starts_with("unix://") {
        return Err(ClientError::InvalidAddr(
            addr.into(),
            "unix sockets are not supported",
        ));
    }
    if addr.starts_with("http://") {
        return Ok(addr.to_string());
    }
    if addr.contains("://") {
        return Err(ClientError::InvalidAddr(addr.into(), "unknown scheme"));
    }
    let scheme = if https { "https" } else { "http" };
    Ok(format!("{scheme}://{addr}"))
}

/// `https://host:port` → (`https://name:port`, host:port resolved), so that the request
/// dials `host` but verifies the certificate against `name` (`-tls-server-name`).
fn renamed(base: &str, name: &str) -> Result<(String, std::net::SocketAddr), ClientError> {
    use std::net::ToSocketAddrs;
    let authority = base.trim_start_matches("https://");
    let invalid = |why| ClientError::InvalidAddr(base.to_string(), why);
    let addr = authority
        .to_socket_addrs()
        .map_err(|_| invalid("-tls-server-name needs an address of the form host:port"))?
        .next()
        .ok_or_else(|| invalid("the host resolves to no address"))?;
    Ok((format!("https://{name}:{}", addr.port()), addr))
}

/// Percent-encodes a KV key for a URL path, keeping `/` (Go's `url.PathEscape` per segment).
pub(crate) fn escape_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_with_and_without_scheme() {
        assert_eq!(
            base_url("127.0.0.1:8500", false).unwrap(),
            "http://127.0.0.1:8500"
        );
        assert_eq!(
            base_url("http://10.0.0.1:18500/", false).unwrap(),
            "http://10.0.0.1:18500"
        );
        assert_eq!(
            base_url("https://x:8501/", false).unwrap(),
            "https://x:8501"
        );
        assert_eq!(base_url("x:8501", true).unwrap(), "https://x:8501");
        assert!(base_url("", false).is_err());
        assert_eq!(
            renamed("https://127.0.0.1:8501", "server.dc1.consul").unwrap(),
            (
                "https://server.dc1.consul:8501".to_string(),
                "127.0.0.1:8501".parse().unwrap()
            )
        );
    }

    #[test]
    fn keys_are_escaped_but_slashes_kept() {
        assert_eq!(escape_path("a/b c?d#e%"), "a/b%20c%3Fd%23e%25");
    }

    #[test]
    fn consul_env_is_a_fallback() {
        let flags = HttpFlags {
            consul_http_addr: Some("10.1.1.1:8500".into()),
            ..HttpFlags::default()
        };
        assert_eq!(
            ApiClient::new(&flags, None).unwrap().base(),
            "http://10.1.1.1:8500"
        );
        let flags = HttpFlags {
            http_addr: Some("10.2.2.2:8500".into()),
            ..flags
        };
        assert_eq!(
            ApiClient::new(&flags, None).unwrap().base(),
            "http://10.2.2.2:8500"
        );
    }
}
