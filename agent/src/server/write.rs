//! The write path: every client write gets a [`RequestId`] once, then goes to the leader —
//! proposed here when this server leads, forwarded otherwise — and is retried with the same id
//! until an answer comes or the hold timeout passes.
//!
//! Retrying is safe because the state machine answers a request id it has applied with the
//! first result (`catalog/requests.rs`), so a write forwarded to a leader that died after
//! receiving it survives the leader change instead of being applied twice. What the caller
//! hears when no answer came depends on whether the write may have reached a leader:
//!
//! ```text
//!   every attempt failed before sending (no leader, connect refused, "not leader")
//!       → RpcError::NoLeader        (certainly not applied)
//!   some attempt may have been received (timeout, lost connection, leadership lost)
//!       → RpcError::OutcomeUnknown  (may or may not have been applied)
//! ```

use std::time::Duration;

use tokio::time::Instant;

use super::{RETRY, ServerHandle, unix_ms};
use crate::catalog::{Command, Request, RequestId, Response};
use crate::cluster::{ForwardError, Forwarder};
use crate::rpc::RpcError;
use meridian_rpc::TransportError;

/// How one attempt ended, as the retry loop sees it.
enum Attempt {
    /// An answer (success or a definite error): return it.
    Done(Result<(u64, Response), RpcError>),
    /// Certainly not applied by this attempt: try again.
    NotSent,
    /// The write may have reached a leader: try again with the same id.
    MaybeSent,
}

/// A fresh id for one client write (random: ids from all servers must not collide).
pub(crate) fn new_request_id() -> RequestId {
    RequestId::from_u128(uuid::Uuid::new_v4().as_u128())
}

/// The ids of one HTTP request that a client agent forwarded with a request id: the n-th
/// write (or fresh UUID) the request's handler makes is derived from that id and n, so when
/// the client agent retries the request on another server after losing its answer, the
/// handler's writes carry the same ids as the first time and the state machine answers
/// them with their first results instead of applying them again.
#[derive(Debug)]
pub(crate) struct ForwardedIds {
    base: u128,
    next: std::cell::Cell<u32>,
}

tokio::task_local! {
    static FORWARDED: ForwardedIds;
}

impl ForwardedIds {
    fn take(&self) -> u128 {
        let n = self.next.get();
        self.next.set(n.wrapping_add(1));
        // A multiplier with high bits set spreads n over the whole id (no collision with
        // another request's base in practice: bases are random 128-bit numbers).
        self.base
            .wrapping_add(u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
    }
}

/// Runs `fut` (one forwarded HTTP request) with its writes' ids derived from `id`.
pub(crate) async fn with_forwarded_id<F: std::future::Future>(id: RequestId, fut: F) -> F::Output {
    let ids = ForwardedIds {
        base: id.as_u128(),
        next: std::cell::Cell::new(0),
    };
    FORWARDED.scope(ids, fut).await
}

/// The id of the next write this task makes: derived from the forwarded request's id when
/// there is one, random otherwise.
fn next_request_id() -> RequestId {
    FORWARDED
        .try_with(|ids| RequestId::from_u128(ids.take()))
        .unwrap_or_else(|_| new_request_id())
}

/// The request id of a write relayed to another datacenter: derived like this task's own
/// writes (so a client agent's retry of the request relays it with the same id), random
/// when the request was not forwarded with one.
pub(crate) fn relay_request_id() -> RequestId {
    next_request_id()
}

/// A new UUID (session and prepared-query ids) that a retried forwarded request chooses the
/// same way again, so the id it answers is the one its first attempt created.
pub fn fresh_uuid() -> uuid::Uuid {
    FORWARDED
        .try_with(|ids| {
            let bits = ids.take().to_be_bytes();
            uuid::Builder::from_random_bytes(bits).into_uuid()
        })
        .unwrap_or_else(|_| uuid::Uuid::new_v4())
}

impl ServerHandle {
    /// Proposes a command through raft and returns its log index and the state machine's
    /// answer; on a follower the leader proposes it. Waits up to the hold timeout for a
    /// leader, retrying across leader changes. A `Rejected` answer is turned into
    /// [`RpcError::Rejected`]. The write takes effect at most once.
    pub async fn apply(&self, cmd: Command) -> Result<(u64, Response), RpcError> {
        self.apply_as(cmd, next_request_id()).await
    }

    /// [`apply`](Self::apply) as write `id`: calling it again with the same `id` (within
    /// minutes) answers the first result and changes nothing.
    pub async fn apply_as(&self, cmd: Command, id: RequestId) -> Result<(u64, Response), RpcError> {
        let deadline = Instant::now() + self.0.hold;
        let mut maybe_sent = false;
        loop {
            let attempt = match self.leader_or_wait(deadline).await {
                Ok(None) => classify(self.apply_local(cmd.clone(), Some(id)).await),
                Ok(Some((leader, addr, fwd))) => {
                    self.forward_apply(fwd, leader, &addr, &cmd, id, deadline)
                        .await
                }
                Err(e) if !maybe_sent => return Err(e),
                Err(_) => return Err(RpcError::OutcomeUnknown),
            };
            match attempt {
                Attempt::Done(result) => return result,
                Attempt::NotSent => {}
                Attempt::MaybeSent => maybe_sent = true,
            }
            if Instant::now() >= deadline {
                tracing::debug!(request = %id, maybe_sent, "write found no leader in time");
                return Err(if maybe_sent {
                    RpcError::OutcomeUnknown
                } else {
                    RpcError::NoLeader
                });
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Proposes a command on this server, which must lead; `id` makes it exactly-once (the
    /// leader's own housekeeping passes `None`). A write that is not committed within the
    /// hold timeout (the quorum went away after it was proposed) reports
    /// [`RpcError::OutcomeUnknown`] rather than hanging.
    pub async fn apply_local(
        &self,
        cmd: Command,
        id: Option<RequestId>,
    ) -> Result<(u64, Response), RpcError> {
        let write = self.0.raft.write(Request {
            now_ms: unix_ms(),
            cmd,
            request_id: id,
        });
        let (index, resp) =
            match tokio::time::timeout(self.0.hold.max(Duration::from_secs(5)), write).await {
                Ok(r) => r?,
                Err(_) => return Err(RpcError::OutcomeUnknown),
            };
        match resp {
            Response::Rejected(msg) => Err(RpcError::Rejected(msg)),
            other => Ok((index, other)),
        }
    }

    /// One forwarded attempt. It is abandoned (as possibly sent) as soon as this server
    /// learns of a different leader, so a leader that hangs (SIGSTOP, partition) does not
    /// use up the whole deadline.
    async fn forward_apply(
        &self,
        fwd: &Forwarder,
        leader: u64,
        addr: &str,
        cmd: &Command,
        id: RequestId,
        deadline: Instant,
    ) -> Attempt {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(RETRY);
        let send = fwd.apply(addr, cmd.clone(), id, left);
        let result = tokio::select! {
            r = send => r,
            () = self.0.raft.leader_changed_from(leader) => {
                tracing::debug!(request = %id, from = leader, "leader changed while forwarding; retrying");
                return Attempt::MaybeSent;
            }
        };
        match result {
            Ok(ok) => Attempt::Done(Ok(ok)),
            Err(
                ForwardError::NotLeader(_)
                | ForwardError::Transport(TransportError::Unreachable { .. }),
            ) => Attempt::NotSent,
            Err(e @ ForwardError::Transport(TransportError::NoAnswer { .. })) => {
                tracing::debug!(request = %id, cause = %e, "forwarded write unanswered; retrying");
                Attempt::MaybeSent
            }
            Err(ForwardError::Remote(e)) => classify(Err(e)),
            Err(e) => Attempt::Done(Err(self.forward_failed(e))),
        }
    }
}

/// Sorts a local (or remotely reported) result into retry classes.
fn classify(result: Result<(u64, Response), RpcError>) -> Attempt {
    match result {
        Err(RpcError::Raft(e)) if e.is_not_leader() => Attempt::NotSent,
        Err(RpcError::NoLeader) => Attempt::NotSent,
        Err(RpcError::OutcomeUnknown) => Attempt::MaybeSent,
        other => Attempt::Done(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids and UUIDs one forwarded request makes, in order.
    async fn made_by(id: RequestId) -> (RequestId, uuid::Uuid, RequestId) {
        with_forwarded_id(id, async {
            (next_request_id(), fresh_uuid(), next_request_id())
        })
        .await
    }

    #[tokio::test]
    async fn a_retried_forwarded_request_makes_the_same_ids_again() {
        let id = new_request_id();
        let first = made_by(id).await;
        assert_eq!(made_by(id).await, first, "a retry repeats every id");
        assert_ne!(first.0, first.2, "two writes of one request differ");
        assert_ne!(made_by(new_request_id()).await, first);
        assert_eq!(first.1.get_version_num(), 4, "still a v4-shaped UUID");
        // Outside a forwarded request: random every time.
        assert_ne!(next_request_id(), next_request_id());
        assert_ne!(fresh_uuid(), fresh_uuid());
    }
}
