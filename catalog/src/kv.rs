//! KV apply logic: set, CAS, lock/unlock with sessions and lock delay, deletes with
//! tombstones. Semantics follow Consul's state store (`kvs.go`). No I/O here.

use super::rows::Table;
use super::{KvEntry, KvOp, KvOutcome, KvVerb, State, Tombstone};

impl State {
    /// Applies one KV op. `Err` is a user-facing rejection (e.g. an invalid session); the
    /// state is unchanged then.
    pub(crate) fn kv_apply(
        &mut self,
        index: u64,
        now: u64,
        op: &KvOp,
    ) -> Result<KvOutcome, String> {
        let key = op.key.as_str();
        match op.verb {
            KvVerb::Set => {
                self.kv_put(index, op, None);
                Ok(KvOutcome::Done(true))
            }
            KvVerb::Cas => {
                let ok = match self.kv.get(key) {
                    None => op.index == 0,
                    Some(e) => op.index != 0 && e.modify_index == op.index,
                };
                if ok {
                    self.kv_put(index, op, None);
                }
                Ok(KvOutcome::Done(ok))
            }
            KvVerb::Lock => {
                let Some(sid) = op.session.as_deref() else {
                    return Err("missing session".into());
                };
                if !self.sessions.contains_key(sid) {
                    return Err(format!("invalid session \"{sid}\""));
                }
                if let Some(until) = self.lock_delays.get(key)
                    && now < *until
                {
                    return Ok(KvOutcome::Done(false));
                }
                let ok = match self.kv.get(key).and_then(|e| e.session.as_deref()) {
                    Some(holder) if holder != sid => false,
                    Some(_) => {
                        // Re-acquiring a held lock updates the value, not the LockIndex.
                        self.kv_put(index, op, Some(LockChange::Keep));
                        true
                    }
                    None => {
                        self.kv_put(index, op, Some(LockChange::Acquire(sid.to_string())));
                        true
                    }
                };
                Ok(KvOutcome::Done(ok))
            }
            KvVerb::Unlock => {
                let Some(sid) = op.session.as_deref() else {
                    return Err("missing session".into());
                };
                let held = self.kv.get(key).and_then(|e| e.session.as_deref()) == Some(sid);
                if held {
                    self.kv_put(index, op, Some(LockChange::Release));
                }
                Ok(KvOutcome::Done(held))
            }
            KvVerb::Delete => {
                self.kv_delete(index, now, key);
                Ok(KvOutcome::Done(true))
            }
            KvVerb::DeleteTree => {
                let keys: Vec<String> = self.kv_prefix(key).map(|e| e.key.clone()).collect();
                for k in keys {
                    self.kv_delete(index, now, &k);
                }
                Ok(KvOutcome::Done(true))
            }
            KvVerb::DeleteCas => {
                let ok = match self.kv.get(key) {
                    None => false,
                    Some(e) => op.index != 0 && e.modify_index == op.index,
                };
                if ok {
                    self.kv_delete(index, now, key);
                }
                Ok(KvOutcome::Done(ok))
            }
            KvVerb::Get => match self.kv.get(key) {
                Some(e) => Ok(KvOutcome::Read(vec![e.clone()])),
                None => Err(format!("key \"{key}\" doesn't exist")),
            },
            KvVerb::GetOrEmpty => Ok(KvOutcome::Read(
                self.kv.get(key).cloned().into_iter().collect(),
            )),
            KvVerb::GetTree => Ok(KvOutcome::Read(self.kv_prefix(key).cloned().collect())),
            KvVerb::CheckIndex => match self.kv.get(key) {
                Some(e) if e.modify_index == op.index => Ok(KvOutcome::Read(vec![])),
                Some(e) => Err(format!(
                    "current modify index ({}) for key \"{key}\" doesn't match the expected ({})",
                    e.modify_index, op.index
                )),
                None => Err(format!("key \"{key}\" doesn't exist")),
            },
            KvVerb::CheckSession => {
                let sid = op.session.as_deref().unwrap_or("");
                match self.kv.get(key) {
                    Some(e) if e.session.as_deref() == Some(sid) => Ok(KvOutcome::Read(vec![])),
                    Some(e) => Err(format!(
                        "current session {:?} for key \"{key}\" doesn't match the expected session {sid:?}",
                        e.session.as_deref().unwrap_or("")
                    )),
                    None => Err(format!("key \"{key}\" doesn't exist")),
                }
            }
            KvVerb::CheckNotExists => match self.kv.get(key) {
                Some(_) => Err(format!("key \"{key}\" exists")),
                None => Ok(KvOutcome::Read(vec![])),
            },
        }
    }

    fn kv_put(&mut self, index: u64, op: &KvOp, lock: Option<LockChange>) {
        let key = op.key.clone();
        let prev = self.kv.get(&key);
        let mut entry = KvEntry {
            key: key.clone(),
            flags: op.flags,
            value: op.value.clone().filter(|v| !v.is_empty()),
            create_index: prev.map_or(index, |p| p.create_index),
            modify_index: index,
            lock_index: prev.map_or(0, |p| p.lock_index),
            session: prev.and_then(|p| p.session.clone()),
        };
        match lock {
            None | Some(LockChange::Keep) => {}
            Some(LockChange::Acquire(sid)) => {
                entry.lock_index += 1;
                entry.session = Some(sid);
            }
            Some(LockChange::Release) => entry.session = None,
        }
        let old = prev.and_then(|p| p.session.clone());
        if old != entry.session {
            self.index_session_key(&key, old.as_deref(), entry.session.as_deref());
        }
        self.kv.insert(key.clone(), entry);
        if self.tombstones.remove(&key).is_some() {
            self.touch(Table::Tombstones, key.clone());
        }
        self.tables.kv = index;
        self.touch(Table::Kv, key);
    }

    pub(crate) fn kv_delete(&mut self, index: u64, now: u64, key: &str) {
        if let Some(old) = self.kv.remove(key) {
            if let Some(sid) = old.session.as_deref() {
                self.index_session_key(key, Some(sid), None);
            }
            self.tombstones
                .insert(key.to_string(), Tombstone { index, at_ms: now });
            self.tables.kv = index;
            self.touch(Table::Kv, key.to_string());
            self.touch(Table::Tombstones, key.to_string());
        }
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub fn kv_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a KvEntry> + 'a {
        self.kv
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
    }

    /// One entry.
    pub fn kv_get(&self, key: &str) -> Option<&KvEntry> {
        self.kv.get(key)
    }

    /// The blocking-query index of a single-key read: the key's ModifyIndex, else the index of
    /// its tombstone, else 1 (nothing yet; any creation wakes the watcher).
    pub fn kv_key_index(&self, key: &str) -> u64 {
        if let Some(e) = self.kv.get(key) {
            return e.modify_index;
        }
        self.tombstones.get(key).map_or(1, |t| t.index).max(1)
    }

    /// The blocking-query index of a prefix read: the highest ModifyIndex or tombstone under
    /// the prefix, so deletes inside the prefix wake watchers and writes elsewhere do not.
    pub fn kv_prefix_index(&self, prefix: &str) -> u64 {
        let live = self
            .kv_prefix(prefix)
            .map(|e| e.modify_index)
            .max()
            .unwrap_or(0);
        let dead = self
            .tombstones
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, t)| t.index)
            .max()
            .unwrap_or(0);
        live.max(dead).max(1)
    }
}

impl State {
    /// Moves `key` in the session → keys index from session `old` to session `new`.
    pub(crate) fn index_session_key(&mut self, key: &str, old: Option<&str>, new: Option<&str>) {
        if let Some(sid) = old
            && let Some(keys) = self.session_keys.get_mut(sid)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.session_keys.remove(sid);
            }
        }
        if let Some(sid) = new {
            self.session_keys
                .entry(sid.to_string())
                .or_default()
                .insert(key.to_string());
        }
    }

    /// The keys session `id` holds locked, in key order (from the index, no scan).
    pub fn session_held_keys(&self, id: &str) -> Vec<String> {
        self.session_keys
            .get(id)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }
}

enum LockChange {
    Acquire(String),
    Keep,
    Release,
}

impl State {
    /// True if some tombstone is older than `cutoff_ms` (the leader then proposes a reap).
    pub fn has_tombstones_before(&self, cutoff_ms: u64) -> bool {
        self.tombstones.values().any(|t| t.at_ms < cutoff_ms)
    }
}
