//! TLS of the server RPC port (8300) and of the connections agents make to it: maps the
//! resolved config (`Config::internal_rpc_tls`) onto `meridian-tls`, names the peers
//! (`server.<dc>.<domain>`), builds the agent's `Channels`, and reloads certificates.
//!
//! Owns no state of its own: the `TlsContext` it builds is shared by the listener (accepts),
//! the channels (dials) and the reload path (SIGHUP, `PUT /v1/agent/reload`).

use meridian_config::{Config, InternalRpcTls};
use meridian_rpc::Channels;
use meridian_tls::{TlsContext, TlsError, TlsFiles, TlsSettings};
use tracing::{info, warn};

/// `meridian-tls` settings for the resolved internal RPC TLS config.
pub fn settings(t: &InternalRpcTls) -> TlsSettings {
    TlsSettings {
        files: TlsFiles {
            ca_file: t.ca_file.clone(),
            cert_file: t.cert_file.clone(),
            key_file: t.key_file.clone(),
        },
        verify_incoming: t.verify_incoming,
        verify_outgoing: t.verify_outgoing,
        verify_server_hostname: t.verify_server_hostname,
    }
}

/// The TLS context `cfg` asks for: `None` when no TLS key is set. Reads the files now, so a
/// missing or bad one stops the agent at start with the file named.
pub fn context(cfg: &Config) -> Result<Option<TlsContext>, TlsError> {
    let Some(t) = cfg.internal_rpc_tls() else {
        return Ok(None);
    };
    let ctx = TlsContext::new(settings(&t))?;
    let held = ctx.fingerprints();
    info!(
        cert_sha256 = held.cert.as_deref().unwrap_or("-"),
        ca_sha256 = %held.cas.join(","),
        serves_tls = ctx.serves_tls(),
        dials_tls = ctx.dials_tls(),
        verify_incoming = t.verify_incoming,
        verify_server_hostname = t.verify_server_hostname,
        server_name = %server_name(cfg),
        "server RPC TLS configured"
    );
    Ok(Some(ctx))
}

/// The name a server of this agent's datacenter must prove: `server.<dc>.<domain>`
/// (Consul's `verify_server_hostname` name; the domain without its final dot).
pub fn server_name(cfg: &Config) -> String {
    format!(
        "server.{}.{}",
        cfg.datacenter,
        cfg.domain.trim_matches('.').to_ascii_lowercase()
    )
}

/// The agent's gRPC channels: over TLS when `tls` dials TLS (`verify_outgoing`), verifying
/// local servers as [`server_name`] by default; plaintext otherwise.
pub fn channels(cfg: &Config, tls: Option<&TlsContext>) -> Channels {
    match tls {
        Some(t) => Channels::with_tls(t.clone(), server_name(cfg)),
        None => Channels::default(),
    }
}

/// Re-reads the certificate files a reloaded `cfg` names into `tls` (new paths allowed).
/// The verify flags stay as at start (a change is logged; it needs a restart, as does
/// turning TLS on or off). On error the running certificates stay.
pub fn reload(tls: Option<&TlsContext>, cfg: &Config) -> Result<(), String> {
    let next = cfg.internal_rpc_tls();
    let Some(tls) = tls else {
        if next.is_some() {
            warn!("TLS settings appeared in the configuration; turning TLS on needs a restart");
        }
        return Ok(());
    };
    let next = next.map(|t| settings(&t)).unwrap_or_default();
    let running = tls.settings();
    if (
        next.verify_incoming,
        next.verify_outgoing,
        next.verify_server_hostname,
    ) != (
        running.verify_incoming,
        running.verify_outgoing,
        running.verify_server_hostname,
    ) {
        warn!(
            "changes to verify_incoming, verify_outgoing or verify_server_hostname take effect after a restart"
        );
    }
    tls.reload_files(next.files)
        .map_err(|e| format!("TLS reload failed, keeping the current certificates: {e}"))?;
    let held = tls.fingerprints();
    info!(
        reloads = tls.reloads(),
        cert_sha256 = held.cert.as_deref().unwrap_or("-"),
        ca_sha256 = %held.cas.join(","),
        "reloaded TLS certificates"
    );
    Ok(())
}
