//! Session apply logic: creation against registered node and checks, invalidation that
//! releases or deletes held locks, starts their lock delay and deletes the session's
//! prepared queries. No I/O here.

use super::rows::Table;
use super::{HealthStatus, Response, Session, SessionBehavior, State};

impl State {
    pub(crate) fn session_create(&mut self, index: u64, s: &Session) -> Response {
        if let Err(e) = self.session_check_health(s) {
            return Response::Rejected(e);
        }
        if self.sessions.contains_key(&s.id) {
            return Response::Rejected(format!("session {} already exists", s.id));
        }
        let mut s = s.clone();
        s.create_index = index;
        s.modify_index = index;
        let id = s.id.clone();
        self.sessions.insert(id.clone(), s);
        self.tables.sessions = index;
        self.touch(Table::Sessions, id.clone());
        Response::SessionCreated(id)
    }

    fn session_check_health(&self, s: &Session) -> Result<(), String> {
        if !self.nodes.contains_key(&s.node) {
            return Err(format!("Missing node registration for node \"{}\"", s.node));
        }
        let ids = s
            .node_checks
            .iter()
            .chain(s.service_checks.iter().map(|c| &c.id));
        for id in ids {
            match self.checks.get(&(s.node.clone(), id.clone())) {
                None => return Err(format!("Missing check '{id}' registration")),
                Some(c) if c.status == HealthStatus::Critical => {
                    return Err(format!("Check '{id}' is in critical state"));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Destroys a session: its locks are released (and their lock delay starts) or, with
    /// `behavior = delete`, the locked keys are deleted. Prepared queries tied to it are
    /// deleted (Consul does the same).
    pub(crate) fn session_invalidate(&mut self, index: u64, now: u64, id: &str) {
        let Some(s) = self.sessions.remove(id) else {
            return;
        };
        self.tables.sessions = index;
        self.touch(Table::Sessions, id.to_string());
        self.delete_session_queries(index, id);
        // From the session → keys index: the store is not scanned.
        let held = self.session_held_keys(id);
        let delay_ms = s.lock_delay / 1_000_000;
        for key in held {
            match s.behavior {
                SessionBehavior::Release => {
                    if let Some(e) = self.kv.get_mut(&key) {
                        e.session = None;
                        e.modify_index = index;
                    }
                    self.index_session_key(&key, Some(id), None);
                    self.tables.kv = index;
                    self.touch(Table::Kv, key.clone());
                }
                SessionBehavior::Delete => self.kv_delete(index, now, &key),
            }
            if delay_ms > 0 {
                self.lock_delays.insert(key.clone(), now + delay_ms);
                self.touch(Table::LockDelays, key);
            }
        }
        // Expired lock delays are dropped here, so the table stays small.
        let expired: Vec<String> = self
            .lock_delays
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            self.lock_delays.remove(&k);
            self.touch(Table::LockDelays, k);
        }
    }

    /// Invalidates every session tied to `(node, check)`; called when that check turns
    /// critical or disappears.
    pub(crate) fn invalidate_sessions_for_check(
        &mut self,
        index: u64,
        now: u64,
        node: &str,
        check: &str,
    ) {
        let ids: Vec<String> = self
            .sessions
            .values()
            .filter(|s| {
                s.node == node
                    && (s.node_checks.iter().any(|c| c == check)
                        || s.service_checks.iter().any(|c| c.id == check))
            })
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            self.session_invalidate(index, now, &id);
        }
    }

    /// Invalidates every session of a node; called when the node is deregistered.
    pub(crate) fn invalidate_sessions_for_node(&mut self, index: u64, now: u64, node: &str) {
        let ids: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.node == node)
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            self.session_invalidate(index, now, &id);
        }
    }

    /// One session.
    pub fn session(&self, id: &str) -> Option<&Session> {
        self.sessions.get(id)
    }

    /// All sessions, by ID.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }
}
