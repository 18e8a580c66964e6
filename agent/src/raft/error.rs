//! [`RaftError`]: what the raft layer reports to the rest of the agent, and the one place
//! openraft's error types are translated.

use openraft::errors::{
    ClientWriteError, Fatal, ForwardToLeader, InitializeError, LinearizableReadError,
};

use super::type_config::{ServerNode, TypeConfig};
use crate::store::StoreError;

type OrError<E> = openraft::errors::RaftError<TypeConfig, E>;

/// A raft operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RaftError {
    /// This node is not the leader; `leader` is the current leader (id and address) if known.
    #[error("not the leader (leader: {})", leader.as_ref().map_or("unknown".to_string(), |(id, n)| format!("{id} {n}")))]
    NotLeader {
        /// The leader to forward to, if this node knows one.
        leader: Option<(u64, ServerNode)>,
    },
    /// No leader is known: an election is running or there is no quorum.
    #[error("no cluster leader")]
    NoLeader,
    /// Leadership changed after the write was proposed; it may or may not have been committed.
    #[error("leadership lost while committing; outcome unknown")]
    LeadershipLost,
    /// The write's group proposal ended without answering it (its task died); it may or may
    /// not have been committed.
    #[error("the write's proposal ended without an answer; outcome unknown")]
    Unanswered,
    /// Raft rejected the request (for example a membership change while another is running).
    #[error("rejected by raft: {0}")]
    Rejected(String),
    /// Opening or using the SQLite stores failed.
    #[error("raft storage: {0}")]
    Storage(#[from] StoreError),
    /// The raft configuration is invalid.
    #[error("invalid raft config: {0}")]
    Config(String),
    /// Raft stopped because of an unrecoverable error (storage failure, panic).
    #[error("raft failed: {0}")]
    Fatal(String),
    /// Raft has been shut down.
    #[error("raft is shut down")]
    Shutdown,
}

impl RaftError {
    /// Whether the caller should retry on (or forward to) another node: not leader, or no
    /// leader yet.
    pub fn is_not_leader(&self) -> bool {
        matches!(self, RaftError::NotLeader { .. } | RaftError::NoLeader)
    }

    /// Whether no leader is currently known.
    pub fn is_no_leader(&self) -> bool {
        matches!(
            self,
            RaftError::NoLeader | RaftError::NotLeader { leader: None }
        )
    }

    /// The leader to forward to, if this error names one.
    pub fn leader(&self) -> Option<&(u64, ServerNode)> {
        match self {
            RaftError::NotLeader { leader } => leader.as_ref(),
            _ => None,
        }
    }

    /// Whether raft is stopped (shut down or failed) and will not serve further requests.
    pub fn is_stopped(&self) -> bool {
        matches!(self, RaftError::Shutdown | RaftError::Fatal(_))
    }

    /// The same error for another write of a failed group proposal (`raft::batch`): the
    /// variants carry the same facts; a storage error is told as its text.
    pub(crate) fn for_each_member(&self) -> RaftError {
        match self {
            RaftError::NotLeader { leader } => RaftError::NotLeader {
                leader: leader.clone(),
            },
            RaftError::NoLeader => RaftError::NoLeader,
            RaftError::LeadershipLost => RaftError::LeadershipLost,
            RaftError::Unanswered => RaftError::Unanswered,
            RaftError::Rejected(s) => RaftError::Rejected(s.clone()),
            RaftError::Storage(e) => RaftError::Fatal(format!("raft storage: {e}")),
            RaftError::Config(s) => RaftError::Config(s.clone()),
            RaftError::Fatal(s) => RaftError::Fatal(s.clone()),
            RaftError::Shutdown => RaftError::Shutdown,
        }
    }

    /// Whether a write's outcome is unknown (it may still be applied).
    pub fn is_indeterminate(&self) -> bool {
        matches!(self, RaftError::LeadershipLost | RaftError::Unanswered)
    }
}

impl From<Fatal<TypeConfig>> for RaftError {
    fn from(f: Fatal<TypeConfig>) -> Self {
        match f {
            Fatal::Stopped => RaftError::Shutdown,
            other => RaftError::Fatal(other.to_string()),
        }
    }
}

impl From<ForwardToLeader<TypeConfig>> for RaftError {
    fn from(f: ForwardToLeader<TypeConfig>) -> Self {
        match (f.leader_id, f.leader_node) {
            (None, _) => RaftError::NoLeader,
            (Some(id), Some(node)) => RaftError::NotLeader {
                leader: Some((id, node)),
            },
            (Some(_), None) => RaftError::NotLeader { leader: None },
        }
    }
}

impl From<OrError<ClientWriteError<TypeConfig>>> for RaftError {
    fn from(e: OrError<ClientWriteError<TypeConfig>>) -> Self {
        match e {
            OrError::Fatal(f) => f.into(),
            OrError::APIError(ClientWriteError::ForwardToLeader(f)) => f.into(),
            OrError::APIError(ClientWriteError::LogEntryDiscarded(_)) => RaftError::LeadershipLost,
            OrError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                RaftError::Rejected(e.to_string())
            }
            OrError::APIError(ClientWriteError::PreconditionFailed(e)) => {
                RaftError::Rejected(e.to_string())
            }
        }
    }
}

impl From<OrError<LinearizableReadError<TypeConfig>>> for RaftError {
    fn from(e: OrError<LinearizableReadError<TypeConfig>>) -> Self {
        match e {
            OrError::Fatal(f) => f.into(),
            OrError::APIError(LinearizableReadError::ForwardToLeader(f)) => f.into(),
            OrError::APIError(LinearizableReadError::QuorumNotEnough(_)) => RaftError::NoLeader,
        }
    }
}

impl From<OrError<InitializeError<TypeConfig>>> for RaftError {
    fn from(e: OrError<InitializeError<TypeConfig>>) -> Self {
        match e {
            OrError::Fatal(f) => f.into(),
            OrError::APIError(e) => RaftError::Rejected(e.to_string()),
        }
    }
}

impl From<OrError<openraft::errors::Infallible>> for RaftError {
    fn from(e: OrError<openraft::errors::Infallible>) -> Self {
        match e {
            OrError::Fatal(f) => f.into(),
            OrError::APIError(never) => match never {},
        }
    }
}
