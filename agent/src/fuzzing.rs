//! Entry points for the fuzz targets in `fuzz/` (a separate cargo-fuzz crate), for decoders
//! that are otherwise private to their module. Each function is the receiving side's real
//! code, not a copy; this module only names it. Not an API: hidden from the docs, and free
//! to change with the fuzz targets.
//!
//! The gossip decoders (`gossip::transport::unwrap`, `gossip::direct::parse`,
//! `gossip::broadcast::GossipMessage::decode`) and the DNS handler are public already and
//! are used directly.

use openraft::EntryPayload;
use openraft::raft::AppendEntriesRequest;

use crate::catalog::{Command, Request, RequestId, State};
pub use crate::http::fuzzing::{Endpoint, decode_body};
use crate::raft::TypeConfig;

/// A forwarded request's payload (`ForwardRequest.payload`) as the leader reads it: the
/// write's command and request id, `None` for reads, HTTP and status requests.
pub fn forward_request(payload: &[u8]) -> Result<Option<(Command, Option<RequestId>)>, String> {
    crate::cluster::forward::decode_request(payload)
}

/// A forwarded request's reply (`ForwardResponse.payload`) as the follower reads it.
pub fn forward_reply(payload: &[u8]) -> Result<(), String> {
    crate::cluster::forward::decode_reply(payload)
}

/// An `AppendEntries` payload (`RaftRequest.payload`) as a follower reads it: the requests
/// its normal entries carry, in log order.
pub fn append_entries(payload: &[u8]) -> Result<Vec<Request>, String> {
    let ae: AppendEntriesRequest<TypeConfig> =
        crate::cluster::wire::decode("append entries", payload).map_err(|e| e.to_string())?;
    Ok(ae
        .entries
        .into_iter()
        .filter_map(|e| match e.payload {
            EntryPayload::Normal(req) => Some(req),
            _ => None,
        })
        .collect())
}

/// A `Vote` payload as a server reads it.
pub fn vote(payload: &[u8]) -> Result<(), String> {
    crate::cluster::wire::decode::<crate::cluster::raft_rpc::VoteEnvelope>("vote", payload)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// An `InstallSnapshot` payload as a follower installs it: the header, the snapshot's rows
/// and the state rebuilt from them.
pub fn install_snapshot(payload: &[u8]) -> Result<State, String> {
    let (_vote, snapshot) = crate::cluster::raft_rpc::unpack_snapshot(payload)?;
    let rows = crate::raft::state_machine::decode_snapshot(&snapshot.snapshot)
        .map_err(|e| e.to_string())?;
    State::restore(rows).map_err(|e| e.to_string())
}
