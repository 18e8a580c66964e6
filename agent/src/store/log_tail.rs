//! The raft log's in-memory tail (the newest entries, durable or not, so the state machine
//! and replication read them from memory) and the meta keys of the log database: shared by
//! the log store (reads, appends) and its writer (marks entries durable, writes the meta),
//! below both.

use std::collections::VecDeque;

use crate::raft::type_config::{Entry, LogId};

pub(super) const META_VOTE: &str = "vote";
pub(super) const META_COMMITTED: &str = "committed";
pub(super) const META_PURGED: &str = "last_purged";

/// Durable entries the [`Tail`] keeps beyond what is in flight, so the state machine and
/// replication read recent entries from memory.
pub(super) const TAIL_KEEP: usize = 8192;

/// The newest log entries, contiguous by index: everything appended but not yet durable, plus
/// up to [`TAIL_KEEP`] durable ones. Entries below `first` are durable in SQLite.
#[derive(Debug)]
pub(super) struct Tail {
    /// Index of `entries[0]` (or of the next append, when empty).
    pub(super) first: u64,
    pub(super) entries: VecDeque<Entry>,
    /// Highest index known to be durable.
    flushed: u64,
}

impl Tail {
    pub(super) fn new(next: u64) -> Self {
        Self {
            first: next,
            entries: VecDeque::new(),
            flushed: next.saturating_sub(1),
        }
    }

    pub(super) fn push(&mut self, entry: Entry) {
        let index = entry.log_id.index;
        let end = self.first + self.entries.len() as u64;
        if index < self.first || index > end {
            // Not adjacent (after a snapshot moved the log): start a new run.
            self.entries.clear();
            self.first = index;
        } else if index < end {
            // Overwrite (openraft truncates first, but never keep a stale suffix).
            self.entries.truncate((index - self.first) as usize);
        }
        self.entries.push_back(entry);
        self.evict();
    }

    /// Records that everything up to `index` is durable and drops what is no longer needed.
    pub(super) fn mark_flushed(&mut self, index: u64) {
        self.flushed = self.flushed.max(index);
        self.evict();
    }

    fn evict(&mut self) {
        while self.entries.len() > TAIL_KEEP && self.first <= self.flushed {
            self.entries.pop_front();
            self.first += 1;
        }
    }

    /// Drops entries after `index` (all when `None`).
    pub(super) fn truncate_after(&mut self, index: Option<u64>) {
        let from = index.map_or(0, |i| i + 1);
        if from <= self.first {
            self.entries.clear();
            self.first = from;
        } else {
            let keep = (from - self.first).min(self.entries.len() as u64);
            self.entries.truncate(keep as usize);
        }
        self.flushed = self.flushed.min(from.saturating_sub(1));
    }

    /// Drops entries up to and including `index`.
    pub(super) fn purge_upto(&mut self, index: u64) {
        while self.first <= index && self.entries.pop_front().is_some() {
            self.first += 1;
        }
        if self.entries.is_empty() {
            self.first = self.first.max(index + 1);
        }
    }

    pub(super) fn last(&self) -> Option<LogId> {
        self.entries.back().map(|e| e.log_id)
    }
}

#[cfg(test)]
mod tail_tests {
    use openraft::EntryPayload;
    use openraft::impls::leader_id_adv::LeaderId;

    use super::{Entry, LogId, TAIL_KEEP, Tail};

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(
                LeaderId {
                    term: 1,
                    node_id: 1,
                },
                index,
            ),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(t: &Tail) -> Vec<u64> {
        t.entries.iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn keeps_unflushed_entries_and_evicts_only_durable_ones() {
        let mut t = Tail::new(1);
        let n = TAIL_KEEP as u64 + 10;
        for i in 1..=n {
            t.push(entry(i));
        }
        // Nothing durable yet: everything stays, however long the tail gets.
        assert_eq!(t.entries.len() as u64, n);
        t.mark_flushed(5);
        assert_eq!(t.first, 6);
        t.mark_flushed(n);
        assert_eq!(t.entries.len(), TAIL_KEEP);
        assert_eq!(t.first, n - TAIL_KEEP as u64 + 1);
        assert_eq!(t.last().map(|l| l.index), Some(n));
    }

    #[test]
    fn truncate_purge_and_overwrite_keep_it_contiguous() {
        let mut t = Tail::new(1);
        (1..=10).for_each(|i| t.push(entry(i)));
        t.truncate_after(Some(7));
        assert_eq!(indexes(&t), (1..=7).collect::<Vec<_>>());
        t.push(entry(5)); // overwrite drops the stale suffix
        assert_eq!(indexes(&t), (1..=5).collect::<Vec<_>>());
        t.purge_upto(3);
        assert_eq!((t.first, indexes(&t)), (4, vec![4, 5]));
        t.purge_upto(9); // past the end: the next append starts after the purge point
        assert_eq!((t.first, t.entries.len()), (10, 0));
        t.push(entry(20)); // not adjacent (snapshot installed): a new run
        assert_eq!((t.first, indexes(&t)), (20, vec![20]));
        t.truncate_after(None);
        assert_eq!((t.first, t.entries.len()), (0, 0));
    }
}
