//! Consul's `tls_cipher_suites` mapped onto rustls' suites: names are IANA's (as Go and
//! Consul spell them, with Go's short `..._CHACHA20_POLY1305` alias). They choose the TLS 1.2
//! suites offered; TLS 1.3 suites are not configurable, in Consul as here.
//!
//! rustls offers only forward-secret AEAD suites. A suite Consul knows but rustls refuses to
//! implement (CBC, RC4, 3DES, static-RSA key exchange) is skipped with a warning, so a Consul
//! config that lists them next to GCM suites still starts; a name that is no suite at all,
//! or a list with nothing rustls offers, is an error naming it.

use rustls::SupportedCipherSuite;
use rustls::crypto::ring::ALL_CIPHER_SUITES;
use tracing::warn;

use crate::error::TlsError;

/// The TLS 1.2 suites `names` select, in rustls' preference order; `None` when `names` is
/// empty (offer everything).
pub(crate) fn select(names: &[String]) -> Result<Option<Vec<SupportedCipherSuite>>, TlsError> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut wanted = Vec::new();
    for name in names {
        let name = name.trim();
        match tls12_suite(name) {
            Some(suite) => wanted.push(suite.suite()),
            None if obsolete(name) => warn!(
                suite = name,
                "tls_cipher_suites: rustls does not implement this (only forward-secret AEAD \
                 suites); skipped"
            ),
            None => {
                return Err(TlsError::Settings(format!(
                    "tls_cipher_suites: unknown cipher suite {name:?}; rustls offers {}",
                    offered().join(", ")
                )));
            }
        }
    }
    let chosen: Vec<SupportedCipherSuite> = ALL_CIPHER_SUITES
        .iter()
        .filter(|s| s.tls13().is_none() && wanted.contains(&s.suite()))
        .copied()
        .collect();
    if chosen.is_empty() {
        return Err(TlsError::Settings(format!(
            "tls_cipher_suites: none of {names:?} is offered by rustls; choose from {}",
            offered().join(", ")
        )));
    }
    Ok(Some(chosen))
}

/// rustls' TLS 1.2 suite called `name` (IANA name, or Go's alias without `_SHA256` for
/// ChaCha20-Poly1305).
fn tls12_suite(name: &str) -> Option<SupportedCipherSuite> {
    ALL_CIPHER_SUITES.iter().copied().find(|s| {
        s.tls13().is_none() && {
            let iana = suite_name(s);
            iana == name || iana.strip_suffix("_SHA256") == Some(name)
        }
    })
}

/// A suite Consul (Go) accepts that rustls deliberately lacks.
fn obsolete(name: &str) -> bool {
    name.starts_with("TLS_")
        && ["_CBC_", "_RC4_", "_3DES_", "TLS_RSA_WITH_"]
            .iter()
            .any(|m| name.contains(m))
}

fn suite_name(s: &SupportedCipherSuite) -> String {
    format!("{:?}", s.suite())
}

/// The TLS 1.2 suite names rustls offers.
fn offered() -> Vec<String> {
    ALL_CIPHER_SUITES
        .iter()
        .filter(|s| s.tls13().is_none())
        .map(suite_name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn consul_names_select_rustls_suites() {
        assert!(select(&[]).unwrap().is_none());
        let got = select(&names(&[
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            " TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
            "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        ]))
        .unwrap()
        .unwrap();
        let got: Vec<String> = got.iter().map(suite_name).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.contains(&"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string()));
        assert!(got.contains(&"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".to_string()));
    }

    #[test]
    fn unknown_or_nothing_usable_is_an_error_naming_it() {
        let e = select(&names(&["TLS_NOPE"])).unwrap_err().to_string();
        assert!(e.contains("TLS_NOPE") && e.contains("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
        let e = select(&names(&["TLS_RSA_WITH_AES_128_CBC_SHA"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none of"), "{e}");
    }
}
