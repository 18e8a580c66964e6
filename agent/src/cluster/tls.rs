//! TLS of the server RPC port (8300) and of the connections agents make to it, and of the
//! HTTPS API: maps the resolved config (`Config::internal_rpc_tls`, `Config::https_tls`)
//! onto `meridian-tls`, names the peers (`server.<dc>.<domain>`), builds the agent's
//! `Channels`, and reloads certificates.
//!
//! Owns no state of its own: the `TlsContext`s it builds are shared by the listeners
//! (accepts), the channels (dials) and the reload path (SIGHUP, `PUT /v1/agent/reload`).

use meridian_config::{Config, ResolvedTls, TlsVersion};
use meridian_rpc::Channels;
use meridian_tls::{MinVersion, Purpose, TlsContext, TlsError, TlsFiles, TlsSettings};
use tracing::{info, warn};

/// `meridian-tls` settings for a resolved TLS config serving `purpose`.
pub fn settings(t: &ResolvedTls, purpose: Purpose) -> TlsSettings {
    TlsSettings {
        files: TlsFiles {
            ca_file: t.ca_file.clone(),
            cert_file: t.cert_file.clone(),
            key_file: t.key_file.clone(),
        },
        verify_incoming: t.verify_incoming,
        verify_outgoing: t.verify_outgoing,
        verify_server_hostname: t.verify_server_hostname,
        purpose,
        min_version: match t.min_version {
            TlsVersion::V1_3 => MinVersion::Tls13,
            _ => MinVersion::Tls12,
        },
        cipher_suites: t.cipher_suites.clone(),
    }
}

/// Builds the context for `t`, reading the files now (so a missing or bad one stops the
/// agent at start with the file named).
fn build(t: &ResolvedTls, purpose: Purpose) -> Result<TlsContext, TlsError> {
    if t.min_version < TlsVersion::V1_2 {
        warn!(
            kind = purpose.label(),
            "tls_min_version below TLSv1_2: rustls speaks TLS 1.2 and 1.3 only, so 1.2 is the minimum offered"
        );
    }
    TlsContext::new(settings(t, purpose))
}

/// The HTTPS API's TLS context: `None` when `ports.https` is off. Validation made sure it
/// has a certificate.
pub fn https_context(cfg: &Config) -> Result<Option<TlsContext>, TlsError> {
    if cfg.ports.https_port().is_none() {
        return Ok(None);
    }
    let t = cfg.https_tls().unwrap_or_default();
    let ctx = build(&t, Purpose::Https)?;
    info!(
        verify_incoming = t.verify_incoming,
        "HTTPS API TLS configured"
    );
    Ok(Some(ctx))
}

/// The server RPC TLS context `cfg` asks for: `None` when no TLS key is set.
pub fn context(cfg: &Config) -> Result<Option<TlsContext>, TlsError> {
    let Some(t) = cfg.internal_rpc_tls() else {
        return Ok(None);
    };
    let ctx = build(&t, Purpose::Rpc)?;
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

/// Who may call raft on this server: with `verify_server_hostname`, only certificates for
/// [`server_name`] (Consul's `AuthorizeServerConn`); otherwise anyone the handshake admits.
pub fn raft_peers(cfg: &Config, tls: Option<&TlsContext>) -> meridian_rpc::RequirePeer {
    match tls {
        Some(t) if t.settings().verify_server_hostname => {
            meridian_rpc::RequirePeer::server(&cfg.datacenter, &cfg.domain)
        }
        _ => meridian_rpc::RequirePeer::anyone(),
    }
}

/// The agent's gRPC channels: over TLS when `tls` dials TLS (`verify_outgoing`), verifying
/// local servers as [`server_name`] by default; plaintext otherwise.
pub fn channels(cfg: &Config, tls: Option<&TlsContext>) -> Channels {
    match tls {
        Some(t) => Channels::with_tls(t.clone(), server_name(cfg)),
        None => Channels::default(),
    }
}

/// Re-reads the certificate files a reloaded `cfg` names into `tls` (the RPC or the HTTPS
/// context; new paths allowed). The verify flags stay as at start (a change is logged; it
/// needs a restart, as does turning TLS on or off). On error the running certificates stay.
pub fn reload(tls: Option<&TlsContext>, cfg: &Config, purpose: Purpose) -> Result<(), String> {
    let next = match purpose {
        Purpose::Https => cfg.https_tls(),
        _ => cfg.internal_rpc_tls(),
    };
    let Some(tls) = tls else {
        if next.is_some() && purpose == Purpose::Rpc {
            warn!("TLS settings appeared in the configuration; turning TLS on needs a restart");
        }
        return Ok(());
    };
    let next = next.map(|t| settings(&t, purpose)).unwrap_or_default();
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
    tls.reload_files(next.files).map_err(|e| {
        format!(
            "{} TLS reload failed, keeping the current certificates: {e}",
            purpose.label()
        )
    })?;
    let held = tls.fingerprints();
    info!(
        kind = purpose.label(),
        reloads = tls.reloads(),
        cert_sha256 = held.cert.as_deref().unwrap_or("-"),
        ca_sha256 = %held.cas.join(","),
        "reloaded TLS certificates"
    );
    Ok(())
}
