//! Point-to-point messages that travel outside SWIM: RTT pings for network coordinates,
//! replies to keyring queries, tag requests and replies, and push-pull state sync. They share the pool's socket and encryption with foca; one
//! byte at the start of every (opened) payload says which of the two a datagram carries,
//! because foca's postcard frames have no magic of their own.
//!
//! ```text
//!   [envelope: 0 plaintext | 1 sealed] ─ opened ─▶ [kind: 2 foca | 3 direct][body]
//! ```
//!
//! Kinds 0 and 1 were the same two before tags left foca's identity (and the pong lost
//! its name): a node of that protocol cannot decode this one's frames nor this one its, so
//! the kinds changed and either side drops the other's datagrams as malformed (counted),
//! instead of misreading them.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::coordinate::Coordinate;
use super::identity::TagsUpdate;
use super::pushpull::PushPull;
use super::query::KeyReply;

/// Kind byte of a foca (SWIM) payload (compact identity).
pub const KIND_FOCA: u8 = 2;
/// Kind byte of a [`Direct`] payload.
pub const KIND_DIRECT: u8 = 3;

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
        coord: WireCoordinate,
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

/// A coordinate as a pong carries it: `f32` components, half the bytes of [`Coordinate`]'s
/// `f64` (a pong goes out every probe interval; seven significant digits are far finer
/// than RTT noise). A component too large for `f32` becomes infinite and the receiver's
/// validity check drops the sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireCoordinate {
    /// Euclidean position.
    pub vec: Vec<f32>,
    /// Confidence.
    pub error: f32,
    /// Per-node offset.
    pub adjustment: f32,
    /// Height.
    pub height: f32,
}

impl From<&Coordinate> for WireCoordinate {
    fn from(c: &Coordinate) -> Self {
        Self {
            vec: c.vec.iter().map(|&v| v as f32).collect(),
            error: c.error as f32,
            adjustment: c.adjustment as f32,
            height: c.height as f32,
        }
    }
}

impl From<&WireCoordinate> for Coordinate {
    fn from(c: &WireCoordinate) -> Self {
        Self {
            vec: c.vec.iter().map(|&v| f64::from(v)).collect(),
            error: f64::from(c.error),
            adjustment: f64::from(c.adjustment),
            height: f64::from(c.height),
        }
    }
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
            coord: WireCoordinate::from(&Coordinate::new(&VivaldiConfig::default())),
        };
        let framed = frame_direct(&pong).expect("encodes");
        match parse(&framed) {
            Ok(Payload::Direct(d)) => assert_eq!(d, pong),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(parse(b"").err(), Some(Malformed));
        assert_eq!(parse(b"\x07x").err(), Some(Malformed));
        assert_eq!(parse(b"\x03\xff\xff\xff").err(), Some(Malformed));
        // The previous protocol's kinds (tags inside the identity) are refused.
        assert_eq!(parse(b"\x00swim").err(), Some(Malformed));
        assert_eq!(parse(b"\x01\x00\x01").err(), Some(Malformed));
        // An f32 coordinate round-trips within f32 precision and fits a small datagram.
        let mut c = Coordinate::new(&VivaldiConfig::default());
        c.vec[0] = 0.000_123_456_789;
        let back = Coordinate::from(&WireCoordinate::from(&c));
        assert!((back.vec[0] - c.vec[0]).abs() < 1e-10);
        let framed_pong = frame_direct(&Direct::Pong {
            seq: 1,
            coord: WireCoordinate::from(&c),
        })
        .expect("encodes");
        assert!(framed_pong.len() <= 52, "{} bytes", framed_pong.len());
        // A truncated direct message is malformed, not a panic.
        assert_eq!(parse(&framed[..framed.len() / 2]).err(), Some(Malformed));
    }
}
