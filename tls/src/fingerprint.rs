//! [`Fingerprints`]: which certificate and CAs a TLS context holds, named by the SHA-256
//! of their DER in the form `openssl x509 -noout -fingerprint -sha256` prints
//! (`AB:CD:...`), so an operator can compare a running process with the files after a
//! rotation. Pure: the caller reads the files.

use rustls::pki_types::CertificateDer;

/// Which certificates a context holds, by SHA-256 fingerprint: what an operator compares
/// with the files after a rotation, for a process that has no listener to shake hands
/// with (a client agent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprints {
    /// This process's certificate (the first of `cert_file`), when it has one.
    pub cert: Option<String>,
    /// Every CA certificate of `ca_file`, in file order.
    pub cas: Vec<String>,
}

/// `AB:CD:...`: the SHA-256 of `der` as upper-case hex bytes joined by colons.
pub(crate) fn sha256(der: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_colon_separated_upper_case_sha256() {
        // SHA-256 of the empty input.
        let fp = sha256(&CertificateDer::from(Vec::new()));
        assert!(fp.starts_with("E3:B0:C4:42:98:FC:1C:14:"), "{fp}");
        assert_eq!(fp.len(), 32 * 3 - 1);
    }
}
