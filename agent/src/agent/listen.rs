//! Binding the API's sockets before anything serves: one HTTP listener per `addresses.http`
//! (else `client_addr`) address and, with `ports.https`, one HTTPS listener per
//! `addresses.https` address, with the HTTPS certificates read now so a bad file stops the
//! start naming it. With port 0 the later addresses take the port the first one got.

use std::net::{IpAddr, SocketAddr};

use meridian_config::Config;
use tokio::net::TcpListener;

use super::AgentError;
use crate::http::ApiSockets;

/// Binds HTTP and HTTPS as `cfg` asks.
pub(super) async fn bind_api(cfg: &Config) -> Result<ApiSockets, AgentError> {
    let cfg_err = |e: meridian_config::ConfigError| AgentError::Config(e.to_string());
    let http_port = cfg
        .ports
        .http_port()
        .ok_or_else(|| AgentError::Config("ports.http must be enabled".into()))?;
    let http = bind_all("HTTP", &cfg.http_addrs().map_err(cfg_err)?, http_port).await?;
    let https_tls = crate::cluster::tls::https_context(cfg)?;
    let https = match (cfg.ports.https_port(), &https_tls) {
        (Some(port), Some(_)) => {
            bind_all("HTTPS", &cfg.https_addrs().map_err(cfg_err)?, port).await?
        }
        _ => Vec::new(),
    };
    Ok(ApiSockets {
        http,
        https,
        https_tls,
    })
}

async fn bind_all(
    what: &'static str,
    ips: &[IpAddr],
    mut port: u16,
) -> Result<Vec<TcpListener>, AgentError> {
    let mut out = Vec::new();
    for ip in ips {
        let addr = SocketAddr::new(*ip, port);
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| AgentError::Bind { what, addr, source })?;
        port = l.local_addr().map_or(port, |a| a.port());
        out.push(l);
    }
    Ok(out)
}
