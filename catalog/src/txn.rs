//! Transactions: up to 128 ops applied atomically. The ops run against a clone of the state
//! (O(1) with imbl); on the first error the clone is dropped and nothing changes. No I/O here.

use super::{KvOutcome, KvVerb, Response, State, TxnError, TxnOp, TxnResult};

impl State {
    pub(crate) fn txn(&mut self, index: u64, now: u64, ops: &[TxnOp]) -> Response {
        let mut work = self.clone();
        let mut results = Vec::new();
        let mut errors = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match op {
                TxnOp::Kv(kv) => match work.kv_apply(index, now, kv) {
                    Ok(KvOutcome::Read(entries)) => {
                        results.extend(entries.into_iter().map(TxnResult::Kv));
                    }
                    Ok(KvOutcome::Done(true)) => {
                        if !matches!(
                            kv.verb,
                            KvVerb::Delete | KvVerb::DeleteTree | KvVerb::DeleteCas
                        ) && let Some(e) = work.kv.get(&kv.key)
                        {
                            let mut e = e.clone();
                            e.value = None;
                            results.push(TxnResult::Kv(e));
                        }
                    }
                    Ok(KvOutcome::Done(false)) => errors.push(TxnError {
                        op_index: i,
                        what: failed_what(kv.verb, &kv.key),
                    }),
                    Err(what) => errors.push(TxnError { op_index: i, what }),
                },
            }
        }
        if errors.is_empty() {
            *self = work;
            Response::TxnCommitted(results)
        } else {
            Response::TxnRolledBack(errors)
        }
    }
}

fn failed_what(verb: KvVerb, key: &str) -> String {
    match verb {
        KvVerb::Cas => format!("failed to set key \"{key}\", index is stale"),
        KvVerb::Lock => format!("failed to lock key \"{key}\", lock is already held"),
        KvVerb::Unlock => format!(
            "failed to unlock key \"{key}\", lock isn't held, or is held by another session"
        ),
        KvVerb::DeleteCas => format!("failed to delete key \"{key}\", index is stale"),
        _ => format!("failed to apply {verb:?} to key \"{key}\""),
    }
}

impl State {
    /// Runs a read-only transaction against this snapshot (no raft round trip).
    pub fn txn_read(&self, ops: &[TxnOp]) -> Response {
        let mut work = self.clone();
        work.txn(self.applied, 0, ops)
    }
}
