//! LAN and WAN gossip: SWIM membership over UDP with foca, an encrypted keyring,
//! user events and Vivaldi network coordinates. Built once as a library piece, configured per
//! pool, so the WAN gateway reuses it on 8302. This module owns the error type and the
//! public re-exports; the agent wires a pool in, nothing here knows about HTTP or raft.
//!
//! ```text
//!  UDP ─▶ transport::Receiver ─(open/verify)─ gossip.inbound ─▶ runtime (owns Foca) ─▶ members
//!  UDP ◀─ transport::Sender ◀─(seal)──────── gossip.outbound ◀─┘  ▲      │   watch + events
//!                                 GossipHandle ── gossip.commands ─┘      ▼
//!                                        ▲────────── MembersView / Event ─┘
//! ```
//!
//! Protocol code never touches the socket; the transport never parses SWIM.

pub mod broadcast;
pub mod config;
pub mod coordinate;
pub mod direct;
pub mod handle;
pub mod identity;
pub mod join;
pub mod keyring;
pub mod members;
pub mod pushpull;
pub mod query;
pub mod rtt;
mod runtime;
pub mod snapshot;
pub mod transport;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

pub use broadcast::UserEvent;
pub use config::{GossipConfig, GossipConfigError};
pub use handle::{BoundGossip, GossipHandle};
pub use identity::{NodeId, Role, Tags, TagsUpdate};
pub use join::{JoinAddrError, KeyringSetupError, RetryJoin};
pub use keyring::{GossipKey, KeyError, Keyring, KeyringFileError, OpenError};
pub use members::{Event, Member, MemberStatus, MembersView};
pub use query::{KeyOp, KeyringSummary};
pub use snapshot::{Snapshot, SnapshotError};
pub use transport::GossipStats;

/// Errors from the gossip pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GossipError {
    /// The UDP socket could not be bound.
    #[error("binding gossip socket {addr}: {source}")]
    Bind {
        /// Requested address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] GossipConfigError),
    /// A key operation was refused.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The keyring file could not be written.
    #[error(transparent)]
    KeyringFile(#[from] KeyringFileError),
    /// A user event's name plus payload exceeds the limit.
    #[error("user event is {size} bytes (name + payload); the limit is {limit} bytes")]
    UserEventTooLarge {
        /// Name + payload bytes.
        size: usize,
        /// `user_event_size_limit`.
        limit: usize,
    },
    /// Keyring operations need an encrypted pool.
    #[error(
        "gossip encryption is not enabled; keyring operations need agents started with -encrypt"
    )]
    EncryptionDisabled,
    /// A user event needs a name.
    #[error("user event name must not be empty")]
    EmptyEventName,
    /// None of the join addresses answered in time.
    #[error("join failed: none of {attempted} address(es) answered")]
    JoinFailed {
        /// Addresses tried (ours excluded).
        attempted: usize,
    },
    /// No member has this name.
    #[error("no member named {0:?}")]
    UnknownMember(String),
    /// This node has left the pool; start a new one to rejoin.
    #[error("this node has left the gossip pool")]
    Left,
    /// foca refused the operation.
    #[error("gossip protocol error: {0}")]
    Foca(String),
    /// The pool is shut down.
    #[error("gossip pool is shut down")]
    Shutdown,
}

impl GossipError {
    /// True when the pool is no longer running (shut down or left).
    pub fn is_stopped(&self) -> bool {
        matches!(self, GossipError::Shutdown | GossipError::Left)
    }
}
