//! `[u32 header length][header JSON][raw body]`: a typed header and an opaque body in one
//! payload, so bodies (HTTP, snapshots) are carried as they are, not JSON-escaped.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire;

/// Packs `header` and `body`; `what` names the message in errors.
pub fn pack<T: Serialize>(what: &'static str, header: &T, body: &[u8]) -> Result<Vec<u8>, String> {
    let h = wire::encode(what, header).map_err(|e| e.to_string())?;
    let len = u32::try_from(h.len()).map_err(|_| format!("{what} header too large"))?;
    let mut out = Vec::with_capacity(4 + h.len() + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    Ok(out)
}

/// Splits a packed payload into its header and body. Never panics on short or garbled
/// input: a clear error instead.
pub fn unpack<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<(T, Vec<u8>), String> {
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| format!("{what}: message too short"))?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(format!("{what}: header truncated"));
    }
    let (h, body) = rest.split_at(len);
    let header = wire::decode(what, h).map_err(|e| e.to_string())?;
    Ok((header, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_garbage_is_an_error() {
        let packed = pack("t", &vec!["a".to_string()], b"raw \x00 body").expect("pack");
        let (h, body): (Vec<String>, Vec<u8>) = unpack("t", &packed).expect("unpack");
        assert_eq!(h, ["a"]);
        assert_eq!(body, b"raw \x00 body");
        for bad in [
            &b""[..],
            b"\x00\x00",
            b"\x00\x00\x00\x09{}",
            b"\x00\x00\x00\x02{x",
        ] {
            assert!(unpack::<Vec<String>>("t", bad).is_err(), "{bad:?}");
        }
    }
}
