//! [`TlsContext`]: the current rustls server and client configurations of one agent (or
//! gateway), swapped whole on [`TlsContext::reload`], plus the count of refused handshakes.
//!
//! Every new connection reads the configuration current at that moment (an `ArcSwap` load);
//! connections already up keep the one they started with, so a reload never drops them.
//! A reload that fails (a missing or bad file) changes nothing and names the file.
//!
//! ```text
//!  TlsSettings ──load::build──▶ ServerConfig ─▶ ArcSwap ◀── incoming(): one load per accept
//!                          └──▶ ClientConfig ─▶ ArcSwap ◀── TlsConnector: one load per dial
//!  reload() ── build again ── ok: store both │ err: keep both, return the error
//! ```

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rustls::{ClientConfig, ServerConfig};
use tracing::{debug, warn};

use crate::error::TlsError;
use crate::fingerprint::Fingerprints;
use crate::load;
use crate::settings::{Purpose, TlsFiles, TlsSettings};

/// How many distinct peer addresses are remembered for "warn once" before later ones are
/// logged at debug only (bounds memory under a scan from many addresses).
const MAX_WARNED_PEERS: usize = 4096;

/// The TLS state of one process. Cheap to clone: clones share the configurations and the
/// counters.
#[derive(Clone)]
pub struct TlsContext(Arc<Inner>);

struct Inner {
    /// What the configurations were built from; the lock also serializes reloads.
    settings: Mutex<TlsSettings>,
    /// `None` when there is no certificate: this process accepts plaintext only.
    server: Option<ArcSwap<ServerConfig>>,
    /// `None` without `verify_outgoing`: this process dials in plaintext.
    client: Option<ArcSwap<ClientConfig>>,
    /// Incoming handshakes refused (untrusted or missing certificate, plaintext under
    /// `verify_incoming`, garbage, timeout).
    failures: AtomicU64,
    /// Peer IPs already warned about.
    warned: Mutex<HashSet<IpAddr>>,
    /// Successful reloads.
    reloads: AtomicU64,
    /// What this TLS serves (never changes: a reload keeps it).
    purpose: Purpose,
    /// The files' fingerprints as of the last (re)load; written under the settings lock.
    fingerprints: Mutex<Fingerprints>,
}

impl fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsContext")
            .field("settings", &*self.0.settings.lock())
            .field("handshake_failures", &self.handshake_failures())
            .finish_non_exhaustive()
    }
}

impl TlsContext {
    /// Reads the files `settings` name and builds the configurations; the error names the
    /// file (or the rule) at fault.
    pub fn new(settings: TlsSettings) -> Result<Self, TlsError> {
        let built = load::build(&settings)?;
        Ok(TlsContext(Arc::new(Inner {
            purpose: settings.purpose,
            settings: Mutex::new(settings),
            server: built.server.map(ArcSwap::from_pointee),
            client: built.client.map(ArcSwap::from_pointee),
            failures: AtomicU64::new(0),
            warned: Mutex::new(HashSet::new()),
            reloads: AtomicU64::new(0),
            fingerprints: Mutex::new(built.fingerprints),
        })))
    }

    /// The fingerprints of the certificate and CAs in use (as of the last successful
    /// load).
    pub fn fingerprints(&self) -> Fingerprints {
        self.0.fingerprints.lock().clone()
    }

    /// The settings the current configurations were built from.
    pub fn settings(&self) -> TlsSettings {
        self.0.settings.lock().clone()
    }

    /// Whether this process accepts TLS (it has a certificate).
    pub fn serves_tls(&self) -> bool {
        self.0.server.is_some()
    }

    /// Whether this process dials over TLS (`verify_outgoing`).
    pub fn dials_tls(&self) -> bool {
        self.0.client.is_some()
    }

    /// Whether incoming connections must be TLS with a client certificate.
    pub fn verify_incoming(&self) -> bool {
        self.0.settings.lock().verify_incoming
    }

    /// The server configuration for a connection accepted now.
    pub fn server_config(&self) -> Option<Arc<ServerConfig>> {
        self.0.server.as_ref().map(ArcSwap::load_full)
    }

    /// The client configuration for a connection dialled now.
    pub fn client_config(&self) -> Option<Arc<ClientConfig>> {
        self.0.client.as_ref().map(ArcSwap::load_full)
    }

    /// Re-reads the same files (a certificate renewed in place) and swaps the
    /// configurations. On error nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let files = self.0.settings.lock().files.clone();
        self.reload_files(files)
    }

    /// Reads `files` (paths a reloaded configuration names) with the verify flags this
    /// context started with, and swaps the configurations. On error nothing changes. A
    /// reload cannot switch TLS on or off (add or remove the certificate, or the client
    /// side): that changes what the listener accepts and needs a restart.
    pub fn reload_files(&self, files: TlsFiles) -> Result<(), TlsError> {
        let mut settings = self.0.settings.lock();
        let next = TlsSettings {
            files,
            ..settings.clone()
        };
        let load::Built {
            server,
            client,
            fingerprints,
        } = load::build(&next)?;
        if server.is_some() != self.0.server.is_some()
            || client.is_some() != self.0.client.is_some()
        {
            return Err(TlsError::Settings(
                "a reload cannot turn TLS on or off (cert_file/key_file added or removed); restart the agent".into(),
            ));
        }
        if let (Some(slot), Some(cfg)) = (&self.0.server, server) {
            slot.store(Arc::new(cfg));
        }
        if let (Some(slot), Some(cfg)) = (&self.0.client, client) {
            slot.store(Arc::new(cfg));
        }
        *settings = next;
        *self.0.fingerprints.lock() = fingerprints;
        self.0.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// What this TLS serves (fixed at creation).
    pub fn purpose(&self) -> Purpose {
        self.0.purpose
    }

    /// Whether incoming plaintext is refused: always on the HTTPS port, with
    /// `verify_incoming` on an RPC port.
    pub fn requires_tls(&self) -> bool {
        self.0.purpose == Purpose::Https || self.verify_incoming()
    }

    /// Incoming handshakes refused so far.
    pub fn handshake_failures(&self) -> u64 {
        self.0.failures.load(Ordering::Relaxed)
    }

    /// Successful reloads so far.
    pub fn reloads(&self) -> u64 {
        self.0.reloads.load(Ordering::Relaxed)
    }

    /// Counts a refused incoming connection and logs it: at WARN the first time for a peer
    /// IP, at debug after that, so a misconfigured peer retrying every second does not
    /// flood the log.
    pub(crate) fn record_failure(&self, peer: SocketAddr, reason: &dyn fmt::Display) {
        self.0.failures.fetch_add(1, Ordering::Relaxed);
        let first = {
            let mut warned = self.0.warned.lock();
            warned.len() < MAX_WARNED_PEERS && warned.insert(peer.ip())
        };
        let kind = self.purpose().label();
        if first {
            warn!(peer = %peer, reason = %reason, kind, "refused a connection: TLS handshake failed (further failures from this address are logged at debug)");
        } else {
            debug!(peer = %peer, reason = %reason, kind, "refused a connection: TLS handshake failed");
        }
    }
}
