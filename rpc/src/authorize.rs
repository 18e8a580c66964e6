//! Who may call a service, by the names on the caller's client certificate: Consul's
//! `AuthorizeServerConn` (#11207), applied where a stolen client certificate would do harm.
//!
//! With `verify_incoming` every connection presents a certificate the CA signed, but a
//! client agent's certificate (`client.dc1.consul`) is as trusted as a server's. So, when
//! `verify_server_hostname` makes names meaningful, raft on a server's RPC port accepts only
//! `server.<dc>.<domain>` and a gateway's WAN port accepts deliveries only from
//! `gateway.<any dc>.<domain>`. A connection without a client certificate (plaintext or TLS
//! without one, both possible only without `verify_incoming`) is not judged here: that
//! policy is the handshake's. A refusal is `PermissionDenied` naming the certificate's names,
//! logged once per peer address.
//!
//! ```text
//!  incoming ─ RpcConnectInfo{peer_names} ─▶ tonic ─▶ RequirePeer (Interceptor) ─ ok ─▶ service
//!                                                         └─ names don't fit ─▶ PermissionDenied
//! ```

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use meridian_tls::{connect_info, remote_addr};
use parking_lot::Mutex;
use tonic::{Request, Status};

/// Peer addresses already warned about, bounded like the handshake's.
const MAX_WARNED: usize = 4096;

/// Which certificate names a service accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// Any certificate the handshake accepted (names not checked: no `verify_server_hostname`).
    Anyone,
    /// Exactly this name (`server.dc1.consul`).
    Exact(String),
    /// `<prefix><anything without a dot><suffix>` (`gateway.` + dc + `.consul`).
    AnyDc { prefix: String, suffix: String },
}

/// A tonic interceptor admitting only peers whose certificate carries an accepted name.
#[derive(Debug, Clone)]
pub struct RequirePeer {
    what: &'static str,
    rule: Rule,
    warned: Arc<Mutex<HashSet<IpAddr>>>,
}

impl RequirePeer {
    /// Raft on a server of `dc`: only `server.<dc>.<domain>`.
    pub fn server(dc: &str, domain: &str) -> Self {
        RequirePeer::new("raft", Rule::Exact(format!("server.{dc}.{}", bare(domain))))
    }

    /// Deliveries on a gateway's WAN port: only `gateway.<any dc>.<domain>`.
    pub fn gateway(domain: &str) -> Self {
        RequirePeer::new(
            "WAN delivery",
            Rule::AnyDc {
                prefix: "gateway.".into(),
                suffix: format!(".{}", bare(domain)),
            },
        )
    }

    /// No role check (without `verify_server_hostname`, names carry no meaning).
    pub fn anyone() -> Self {
        RequirePeer::new("RPC", Rule::Anyone)
    }

    fn new(what: &'static str, rule: Rule) -> Self {
        RequirePeer {
            what,
            rule,
            warned: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    fn admits(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        match &self.rule {
            Rule::Anyone => true,
            Rule::Exact(want) => name == *want,
            Rule::AnyDc { prefix, suffix } => name
                .strip_prefix(prefix.as_str())
                .and_then(|rest| rest.strip_suffix(suffix.as_str()))
                .is_some_and(|dc| !dc.is_empty() && !dc.contains('.')),
        }
    }

    fn wanted(&self) -> String {
        match &self.rule {
            Rule::Anyone => "any name".into(),
            Rule::Exact(n) => n.clone(),
            Rule::AnyDc { prefix, suffix } => format!("{prefix}<dc>{suffix}"),
        }
    }
}

impl tonic::service::Interceptor for RequirePeer {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        if self.rule == Rule::Anyone {
            return Ok(req);
        }
        let Some(names) = connect_info(&req).and_then(|c| c.peer_names.clone()) else {
            return Ok(req);
        };
        if names.iter().any(|n| self.admits(n)) {
            return Ok(req);
        }
        let why = format!(
            "{} needs a certificate for {}; the caller's is for {:?}",
            self.what,
            self.wanted(),
            names
        );
        let peer = remote_addr(&req);
        let first = peer.is_some_and(|p| {
            let mut w = self.warned.lock();
            w.len() < MAX_WARNED && w.insert(p.ip())
        });
        if first {
            tracing::warn!(peer = ?peer, reason = %why, "refused an RPC: wrong certificate role (further refusals from this address are logged at debug)");
        } else {
            tracing::debug!(peer = ?peer, reason = %why, "refused an RPC: wrong certificate role");
        }
        Err(Status::permission_denied(why))
    }
}

fn bare(domain: &str) -> String {
    domain.trim_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_matched_by_role() {
        let s = RequirePeer::server("dc1", "consul.");
        assert!(s.admits("server.dc1.consul") && s.admits("SERVER.dc1.consul"));
        assert!(!s.admits("server.dc2.consul") && !s.admits("client.dc1.consul"));
        let g = RequirePeer::gateway("consul");
        assert!(g.admits("gateway.dc2.consul") && g.admits("gateway.dc1.consul"));
        for bad in [
            "gateway..consul",
            "gateway.a.b.consul",
            "server.dc1.consul",
            "gateway.dc1.consulx",
        ] {
            assert!(!g.admits(bad), "{bad}");
        }
    }
}
