//! Point-to-point messages that travel outside SWIM: RTT pings for network coordinates,
//! replies to keyring queries, tag requests and replies, and push-pull state sync. They share the pool's socket and encryption with foca; one
//! byte at the start of every (opened) payload says which of the two a datagram carries,
//! because foca's postcard frames have no magic of their own.
//!
//! ```text
//!   [envelope: 0 plaintext | 1 sealed] ─ opened ─▶ [kind: 0 foca | 1 direct][body]
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::coordinate::Coordinate;
use super::identity::TagsUpdate;
use super::pushpull::PushPull;
use super::query::KeyReply;

/// Kind byte of a foca (SWIM) payload.
pub const KIND_FOCA: u8 = 0;
/// Kind byte of a [`Direct`] payload.
pub const KIND_DIRECT: u8 = 1;

/// A message sent to one member's gossip address. Append variants only: postcard encodes
/// the variant index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Direct {
    /// "Reply with your coordinate"; the sender times the round trip.
    Ping {
        /// Sender's sequence number, echoed in the pong.
        seq: u64,
    },
    /// Answer to a ping (the sequence number and the sender's address say who answers).
    Pong {
        /// The ping's sequence number.
        seq: u64,
        /// Responder's current coordinate.
        coord: Coordinate,
    },
    /// A member's answer to a keyring query, sent to the query's origin.
    KeyReply(KeyReply),
    /// "Send me the tags you hold for these members" (first sight of an identity).
    TagsRequest {
        /// Member names.
        names: Vec<String>,
    },
    /// Tags held for the members asked about (those the responder knows).
    Tags(Vec<TagsUpdate>),
    /// Part of a push-pull state exchange.
    PushPull(PushPull),
}

/// A payload whose kind byte or body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed gossip payload")]
pub struct Malformed;

/// What an opened payload carries.
#[derive(Debug)]
pub enum Payload<'a> {
    /// Bytes for foca.
    Foca(&'a [u8]),
    /// A decoded direct message.
    Direct(Direct),
}

/// Prefixes foca's bytes with their kind.
pub fn frame_foca(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 1);
    out.put_u8(KIND_FOCA);
    out.put_slice(data);
    out.freeze()
}

/// Encodes a direct message with its kind.
pub fn frame_direct(msg: &Direct) -> Result<Bytes, postcard::Error> {
    let mut out = vec![KIND_DIRECT];
    out.extend_from_slice(&postcard::to_allocvec(msg)?);
    Ok(Bytes::from(out))
}

/// Splits an opened payload by its kind byte.
pub fn parse(payload: &[u8]) -> Result<Payload<'_>, Malformed> {
    match payload.split_first() {
        Some((&KIND_FOCA, rest)) => Ok(Payload::Foca(rest)),
        Some((&KIND_DIRECT, rest)) => postcard::from_bytes(rest)
            .map(Payload::Direct)
            .map_err(|_| Malformed),
        _ => Err(Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinate::VivaldiConfig;

    #[test]
    fn kinds_round_trip_and_garbage_is_malformed() {
        let framed = frame_foca(b"swim");
        assert!(matches!(parse(&framed), Ok(Payload::Foca(b"swim"))));
        let pong = Direct::Pong {
            seq: 9,
            coord: Coordinate::new(&VivaldiConfig::default()),
        };
        let framed = frame_direct(&pong).expect("encodes");
        match parse(&framed) {
            Ok(Payload::Direct(d)) => assert_eq!(d, pong),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(parse(b"").err(), Some(Malformed));
        assert_eq!(parse(b"\x07x").err(), Some(Malformed));
        assert_eq!(parse(b"\x01\xff\xff\xff").err(), Some(Malformed));
        // A truncated direct message is malformed, not a panic.
        assert_eq!(parse(&framed[..framed.len() / 2]).err(), Some(Malformed));
    }
}
