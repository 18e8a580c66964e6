//! The errors every RPC path shares (HTTP, DNS, forwarding, the server) and Consul's
//! consistency modes. Below the router and the server, so both can name them without
//! depending on each other.

use crate::raft::RaftError;

/// How fresh a read must be (Consul's consistency modes). Every mode answers from a state
/// snapshot of the server that serves it; they differ in how far that server first catches
/// up (`ServerHandle::read`, `ServerHandle::leader_read_index`):
///
/// | mode | Meridian | Consul |
/// |---|---|---|
/// | default | linearizable while clocks drift less than the lease margin: the leader's read index comes from its leader lease (a quorum acked it within the election timeout; followers refuse votes for that long), else a ReadIndex round | leader lease without a quorum check: a deposed leader may answer stale data for a short window |
/// | consistent | linearizable, no clock assumption: a ReadIndex round (a heartbeat quorum sent after the read arrived) before every read; concurrent reads share one round | the same (`verifyLeader` per read) |
/// | stale | any server's own state, possibly behind; `X-Consul-LastContact` says how far | the same |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// The leader answers at the read index its lease vouches for (see the table above).
    #[default]
    Default,
    /// Any server answers from its local state, even without a leader.
    Stale,
    /// The leader confirms leadership with a quorum round sent after the read arrived.
    Consistent,
}

impl Consistency {
    /// The `X-Consul-Effective-Consistency` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "leader",
            Self::Stale => "stale",
            Self::Consistent => "consistent",
        }
    }
}

/// Why an RPC failed. Messages are Consul's where clients match on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// Another datacenter is known but did not answer in time (its gateways or servers are
    /// down, or the WAN to it is cut).
    #[error("rpc error: {0}")]
    DatacenterUnreachable(String),
    /// Another datacenter failed repeatedly and its circuit breaker is open: refused at
    /// once, without trying, until the wait is over (`cluster::breaker`).
    #[error("datacenter {dc:?} unavailable (retry in {}s)", retry_in.as_secs().max(1))]
    DatacenterUnavailable {
        /// The datacenter.
        dc: String,
        /// How long until the breaker lets a trial through.
        retry_in: std::time::Duration,
    },
    /// The datacenter has no leader (or this server lost it).
    #[error("No cluster leader")]
    NoLeader,
    /// The datacenter is unknown or unreachable.
    #[error("No path to datacenter")]
    NoPathToDatacenter(String),
    /// The state machine rejected the command; the text is user-facing.
    #[error("{0}")]
    Rejected(String),
    /// The raft layer failed.
    #[error("raft: {0}")]
    Raft(RaftError),
    /// The agent is shutting down.
    #[error("agent is shutting down")]
    ShuttingDown,
    /// A client agent knows no server (Consul's wording).
    #[error("No known Consul servers")]
    NoServers,
    /// This agent has no local server for this request.
    #[error("this request needs a server; client agents forward it")]
    NotAServer,
    /// A forwarded request could not be understood on the way.
    #[error("rpc forwarding: {0}")]
    Forward(String),
    /// A write may or may not have been applied: the leader was lost (or stopped answering)
    /// after the request reached it, and retries found no answer before the deadline.
    /// Unlike [`RpcError::NoLeader`] this does not mean "not applied".
    #[error(
        "write outcome unknown: the leader was lost after the request was sent; it may or may not have been applied"
    )]
    OutcomeUnknown,
}

impl RpcError {
    /// Whether another datacenter is known but could not be reached (timeout, no gateway
    /// or server of it answered, or its breaker is open): the failures a catalog copy may
    /// stand in for. An unknown datacenter is not one.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            RpcError::DatacenterUnreachable(_) | RpcError::DatacenterUnavailable { .. }
        )
    }
}

impl From<RaftError> for RpcError {
    fn from(e: RaftError) -> Self {
        if e.is_no_leader() {
            RpcError::NoLeader
        } else if e.is_indeterminate() {
            RpcError::OutcomeUnknown
        } else {
            RpcError::Raft(e)
        }
    }
}
