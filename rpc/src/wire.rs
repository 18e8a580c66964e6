//! Encoding of payloads inside the protobuf envelopes of `raft.proto` and `rpc.proto`:
//! serde JSON, as the raft log store uses (catalog types skip empty fields, which
//! non-self-describing formats such as postcard cannot decode).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A payload that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("rpc payload ({what}): {source}")]
pub struct WireError {
    what: &'static str,
    #[source]
    source: serde_json::Error,
}

/// Encodes `v`; `what` names it in errors.
pub fn encode<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, WireError> {
    serde_json::to_vec(v).map_err(|source| WireError { what, source })
}

/// Decodes a `T`; `what` names it in errors.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, WireError> {
    serde_json::from_slice(bytes).map_err(|source| WireError { what, source })
}
