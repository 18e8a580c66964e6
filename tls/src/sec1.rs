//! Reading a CA key Consul wrote: `consul tls ca create` (Go's `x509.MarshalECPrivateKey`)
//! and `openssl ecparam -genkey` write SEC1 `EC PRIVATE KEY` PEM, which ring (under rcgen)
//! reads only inside PKCS#8. This wraps the SEC1 structure, unchanged, in the PKCS#8
//! envelope for its curve (RFC 5915 §3 → RFC 5208 §5), so `meridian tls cert create` signs
//! with an existing Consul CA. Pure; the key bytes are never interpreted here.

use rcgen::KeyPair;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

/// DER of OID 1.2.840.10045.2.1 (id-ecPublicKey).
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER of OID 1.2.840.10045.3.1.7 (P-256).
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of OID 1.3.132.0.34 (P-384).
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// The key in `pem`: PKCS#8 as rcgen reads it, or SEC1 wrapped into PKCS#8 (P-256 or P-384,
/// whichever ring accepts).
pub(crate) fn key_pair(pem: &str) -> Result<KeyPair, String> {
    match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
        Ok(PrivateKeyDer::Sec1(sec1)) => [P256, P384]
            .into_iter()
            .find_map(|curve| KeyPair::try_from(pkcs8(sec1.secret_sec1_der(), curve)).ok())
            .ok_or_else(|| "an EC PRIVATE KEY on a curve other than P-256 or P-384".to_string()),
        Ok(PrivateKeyDer::Pkcs1(_)) => {
            Err("an RSA key; Meridian signs with ECDSA or Ed25519 CA keys".into())
        }
        _ => KeyPair::from_pem(pem).map_err(|e| {
            format!("not a PKCS#8 (\"PRIVATE KEY\") or SEC1 (\"EC PRIVATE KEY\") key: {e}")
        }),
    }
}

/// `PrivateKeyInfo { version 0, AlgorithmIdentifier { id-ecPublicKey, curve }, OCTET STRING
/// sec1 }`.
fn pkcs8(sec1: &[u8], curve: &[u8]) -> Vec<u8> {
    let algorithm = tlv(0x30, &[EC_PUBLIC_KEY, curve].concat());
    let body = [&[0x02, 0x01, 0x00][..], &algorithm, &tlv(0x04, sec1)].concat();
    tlv(0x30, &body)
}

/// One DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway P-256 key as `openssl ecparam -name prime256v1 -genkey -noout` and
    /// Consul's `tls ca create` write it (SEC1 with curve parameters and public key).
    const SEC1_P256: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEICk7wF+s/QEvvlvWLoXp/GzVgkRwnROFadZQ3rizl7+moAoGCCqGSM49
AwEHoUQDQgAEoB9DBMauFW6J+pO43sOUOBZgpufLfrOD69HPig3X4rfTe60sP6Sg
eis+fAPJPAAG3I+vmhmj0CnzhiMNPvb01A==
-----END EC PRIVATE KEY-----
";

    #[test]
    fn a_sec1_key_reads_as_the_same_key() {
        let k = key_pair(SEC1_P256).expect("sec1 key");
        assert!(k.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256));
        // Its public half is the one in the SEC1 structure (its last 65 bytes).
        let Ok(PrivateKeyDer::Sec1(der)) = PrivateKeyDer::from_pem_slice(SEC1_P256.as_bytes())
        else {
            panic!("fixture is SEC1");
        };
        let der = der.secret_sec1_der();
        assert_eq!(k.public_key_raw(), &der[der.len() - 65..]);
    }

    #[test]
    fn pkcs8_still_reads_and_garbage_is_named() {
        let k = KeyPair::generate().expect("key");
        assert!(key_pair(&k.serialize_pem()).is_ok());
        let e = key_pair("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
            .unwrap_err();
        assert!(e.contains("EC PRIVATE KEY"), "{e}");
    }

    #[test]
    fn long_lengths_are_encoded_in_long_form() {
        assert_eq!(tlv(0x04, &[0; 3])[..2], [0x04, 3]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }
}
