//! Group proposals: client writes that arrive while earlier ones are still being committed
//! share one raft entry.
//!
//! Every raft entry costs fixed work whatever it carries: a trip through openraft's core, a
//! row in the log on every server, a place in each replication message, an apply step and
//! an answer, and with followers that work is done on every server. The leader therefore
//! proposes one entry at a time ([`IN_FLIGHT`]); writes that come in meanwhile wait (for
//! at most one commit) and go out together as one [`Command::Batch`] entry. A write
//! that finds the slot free goes out at once as an entry of its own, so an idle server adds
//! no latency.
//!
//! ```text
//!   write ─▶ queue ─▶ [slot free?] ─▶ one request  → Request          ─▶ client_write
//!                                └─▶ n requests    → Command::Batch(n) ─▶ client_write
//!                                                       Response::Batch(n) ─▶ n answers
//! ```
//!
//! A batch is applied request by request in queue order, each with its own request id
//! (exactly once still holds per write) and all at the entry's index, which is how a Consul
//! transaction's writes share one index too. Requests whose caller has already given up are
//! dropped before proposing; once proposed, a batch succeeds or fails as one entry, so
//! every member hears the same outcome.
//!
//! Measured (`FAILOVER=0 bench/kv/run.sh cluster`, three servers on 2 CPUs): writes/s
//! +13-25% at 32 connections and +35-40% at 256; a single server is unchanged (its
//! per-entry work was small: 48-52 µs of CPU per write either way).

use std::sync::Arc;

use openraft::Raft;
use tokio::sync::oneshot;

use super::error::RaftError;
use super::state_machine::StateMachine;
use super::type_config::TypeConfig;
use crate::catalog::{Command, Request, Response};

/// Entries a leader has proposed and not yet seen committed and applied. One makes the
/// largest batches: three servers on 2 CPUs, four alternating runs at 32 connections, did
/// 10,575-10,774 writes/s at 1 vs 9,750-10,003 at 2 (61-62 vs 65-67 µs of leader CPU per
/// write, 39 vs 40-41 per follower); one server at 4 used ~10% more CPU per write than at 1.
const IN_FLIGHT: usize = 1;

/// Most requests in one entry (bounds an entry's size and a batch's tail latency).
const MAX_BATCH: usize = 256;

/// What a write's caller hears: the entry's log index and the write's own answer.
pub(super) type Answer = Result<(u64, Response), RaftError>;

/// One queued write.
struct Pending {
    req: Request,
    reply: oneshot::Sender<Answer>,
}

/// Writes waiting for a slot, and how many slots are taken.
#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    in_flight: usize,
}

/// The group-proposal queue of one raft node.
///
/// A write that finds a free slot starts a proposer task, which proposes everything queued
/// and keeps proposing what queued up meanwhile until the queue is empty. A write that finds
/// every slot taken only queues. So a write costs a lock and a oneshot, and a task is
/// spawned per busy period, not per write. Proposing happens on a task of its own because a
/// caller may be cancelled (timeout, closed connection) while the others in its batch wait.
pub(super) struct Batcher {
    raft: Raft<TypeConfig, StateMachine>,
    queue: parking_lot::Mutex<Queue>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batcher")
    }
}

impl Batcher {
    /// The queue for `raft`.
    pub(super) fn new(raft: Raft<TypeConfig, StateMachine>) -> Arc<Self> {
        Arc::new(Self {
            raft,
            queue: parking_lot::Mutex::new(Queue::default()),
        })
    }

    /// Proposes `req` (alone or with others) and waits for its answer.
    pub(super) async fn write(self: &Arc<Self>, req: Request) -> Answer {
        if matches!(req.cmd, Command::Batch(_)) {
            // Batches are built here and only here: one from a caller (a forwarded RPC
            // carries any Command) would go out alone and be applied as a batch.
            return Err(RaftError::Rejected(
                "a batch of writes is proposed only by the leader itself".to_string(),
            ));
        }
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut q = self.queue.lock();
            q.pending.push(Pending { req, reply });
            if q.in_flight < IN_FLIGHT {
                q.in_flight += 1;
                Some(std::mem::take(&mut q.pending))
            } else {
                None
            }
        };
        if let Some(batch) = start {
            let this = Arc::clone(self);
            tokio::spawn(async move { this.proposer(batch).await });
        }
        // A reply dropped unanswered means the proposer died: the write may have committed.
        answer.await.map_err(|_| RaftError::Unanswered)?
    }

    /// Proposes `batch`, then whatever queued meanwhile, until nothing is queued; then frees
    /// its slot.
    async fn proposer(&self, mut batch: Vec<Pending>) {
        // Frees the slot if this task ends early (a panic): writes must never wait on a
        // slot nobody holds.
        let mut slot = Slot(Some(self));
        loop {
            while !batch.is_empty() {
                let rest = batch.split_off(batch.len().min(MAX_BATCH));
                propose(&self.raft, batch).await;
                batch = rest;
            }
            let mut q = self.queue.lock();
            if q.pending.is_empty() {
                q.in_flight -= 1;
                slot.0 = None;
                return;
            }
            batch = std::mem::take(&mut q.pending);
        }
    }
}

/// A proposer's slot, given back on drop unless the proposer gave it back itself.
struct Slot<'a>(Option<&'a Batcher>);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.0 {
            b.queue.lock().in_flight -= 1;
        }
    }
}

/// Proposes `batch` as one entry and answers each of its callers.
async fn propose(raft: &Raft<TypeConfig, StateMachine>, mut batch: Vec<Pending>) {
    batch.retain(|p| !p.reply.is_closed());
    if batch.len() <= 1 {
        if let Some(p) = batch.pop() {
            let answer = raft
                .client_write(p.req)
                .await
                .map(|w| (w.log_id.index, w.data))
                .map_err(RaftError::from);
            let _ = p.reply.send(answer);
        }
        return;
    }
    let now_ms = batch.iter().map(|p| p.req.now_ms).max().unwrap_or_default();
    let (reqs, replies): (Vec<Request>, Vec<_>) =
        batch.into_iter().map(|p| (p.req, p.reply)).unzip();
    let n = reqs.len();
    match raft
        .client_write(Request::new(now_ms, Command::Batch(reqs)))
        .await
    {
        Ok(w) => match w.data {
            Response::Batch(answers) if answers.len() == n => {
                let index = w.log_id.index;
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok((index, answer)));
                }
            }
            other => {
                // Cannot happen: apply answers a batch of n with n answers.
                let e = format!("batch of {n} answered with {other:?}");
                tracing::error!("{e}");
                for reply in replies {
                    let _ = reply.send(Err(RaftError::Fatal(e.clone())));
                }
            }
        },
        Err(e) => {
            let e = RaftError::from(e);
            for reply in replies {
                let _ = reply.send(Err(e.for_each_member()));
            }
        }
    }
}
