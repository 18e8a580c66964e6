//! Which of the agent's services and checks the catalog has not seen yet (Consul's
//! `InSync` flags): every local change marks its entry with a new generation, and
//! anti-entropy syncs just the marked entries (`sync::Syncer::sync_changes`), so one
//! registration costs one catalog write, not a read-back of the whole node. An entry is
//! settled only if it did not change again while it was being written; the lowest
//! unsettled generation tells an API write when its own change has reached the catalog.

use std::collections::BTreeMap;

/// Services or checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A service (registered with its checks).
    Service,
    /// A check.
    Check,
}

/// One unsynced entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The generation of its last change.
    pub seq: u64,
    /// The name of the service it is or belongs to, as it was when it changed: what a
    /// deregistration is vetted against once the entry is gone locally.
    pub service: String,
}

/// The unsynced entries at one moment, by ID.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    /// Services.
    pub services: Vec<(String, Entry)>,
    /// Checks.
    pub checks: Vec<(String, Entry)>,
}

impl Pending {
    /// Nothing to sync.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.checks.is_empty()
    }

    /// Every entry as settled by a pass that saw them all.
    pub fn all(&self) -> Vec<(Kind, String, u64)> {
        let s = self
            .services
            .iter()
            .map(|(id, e)| (Kind::Service, id.clone(), e.seq));
        let c = self
            .checks
            .iter()
            .map(|(id, e)| (Kind::Check, id.clone(), e.seq));
        s.chain(c).collect()
    }
}

/// The marks, kept under `LocalState`'s lock.
#[derive(Debug, Default)]
pub(super) struct Dirty {
    seq: u64,
    services: BTreeMap<String, Entry>,
    checks: BTreeMap<String, Entry>,
}

impl Dirty {
    /// The generation of the last change.
    pub(super) fn generation(&self) -> u64 {
        self.seq
    }

    fn next(&mut self, service: &str) -> Entry {
        self.seq += 1;
        Entry {
            seq: self.seq,
            service: service.to_string(),
        }
    }

    /// Marks service `id` (named `name`) changed.
    pub(super) fn service(&mut self, id: &str, name: &str) {
        let e = self.next(name);
        self.services.insert(id.to_string(), e);
    }

    /// Marks check `id` (of the service named `service`, or none) changed.
    pub(super) fn check(&mut self, id: &str, service: &str) {
        let e = self.next(service);
        self.checks.insert(id.to_string(), e);
    }

    /// Drops the mark of check `id`: the catalog drops it with its service.
    pub(super) fn forget_check(&mut self, id: &str) {
        self.checks.remove(id);
    }

    /// The marked entries now.
    pub(super) fn pending(&self) -> Pending {
        let copy = |m: &BTreeMap<String, Entry>| {
            m.iter()
                .map(|(id, e)| (id.clone(), e.clone()))
                .collect::<Vec<_>>()
        };
        Pending {
            services: copy(&self.services),
            checks: copy(&self.checks),
        }
    }

    /// Clears the marks of `done` whose generation is still the one synced.
    pub(super) fn settle(&mut self, done: &[(Kind, String, u64)]) {
        for (kind, id, seq) in done {
            let map = match kind {
                Kind::Service => &mut self.services,
                Kind::Check => &mut self.checks,
            };
            if map.get(id).is_some_and(|e| e.seq == *seq) {
                map.remove(id);
            }
        }
    }

    /// Every change up to this generation is in the catalog (or blocked by ACLs).
    pub(super) fn synced_through(&self) -> u64 {
        let oldest = self
            .services
            .values()
            .chain(self.checks.values())
            .map(|e| e.seq)
            .min();
        oldest.map_or(self.seq, |g| g - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_changed_while_syncing_stays_and_holds_the_low_water() {
        let mut d = Dirty::default();
        d.service("a", "web");
        d.check("c", "web");
        let seen = d.pending();
        assert_eq!(d.synced_through(), 0);
        d.service("a", "web"); // changed again while the pass ran
        d.settle(&seen.all());
        let left = d.pending();
        assert_eq!(
            left.services.len(),
            1,
            "the newer change of a is still unsynced"
        );
        assert!(left.checks.is_empty());
        assert_eq!(d.synced_through(), 2);
        d.settle(&left.all());
        assert_eq!(d.synced_through(), 3);
    }
}
