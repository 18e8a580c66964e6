//! The serf-level membership read model: turns foca notifications and leave intents into
//! members with serf's statuses (alive, leaving, left, failed), emits serf's event kinds, and
//! reaps failed/left members after their timeouts. Pure: the caller passes the time, and this
//! module never touches a socket or a channel; the runtime publishes [`MembersView`].
//!
//! Tags travel apart from foca's identity (see `identity.rs`), so the table also keeps the
//! newest tags heard per member. A member foca reports up before its tags were ever heard
//! is held back (not shown, no event) until they arrive: readers never see a member
//! without its role and datacenter. [`MemberTable::tags_wanted`] says whom to ask.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::broadcast::{LeaveIntent, UserEvent};
use super::identity::{NodeId, Tags};

/// serf's `MemberStatus` (the integer in `/v1/agent/members`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MemberStatus {
    /// Reachable.
    Alive = 1,
    /// Announced a graceful leave that has not completed.
    Leaving = 2,
    /// Left gracefully (or was force-left after failing).
    Left = 3,
    /// Stopped answering probes.
    Failed = 4,
}

impl MemberStatus {
    /// Consul's integer.
    pub fn as_serf(self) -> u8 {
        self as u8
    }
}

/// One member as readers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node name.
    pub name: String,
    /// Gossip address.
    pub addr: SocketAddr,
    /// Tags.
    pub tags: Tags,
    /// serf status.
    pub status: MemberStatus,
    /// Identity bump (orders restarts and tag changes).
    pub incarnation: u64,
}

impl Member {
    fn from_id(id: &NodeId, tags: Tags, status: MemberStatus) -> Self {
        Self {
            name: id.name.clone(),
            addr: id.addr,
            tags,
            status,
            incarnation: id.bump,
        }
    }
}

/// serf's event kinds, one member per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `member-join`: a member became alive (new, or back from failed/left).
    MemberJoin(Member),
    /// `member-leave`: a member left gracefully or was force-left.
    MemberLeave(Member),
    /// `member-failed`: a member stopped answering.
    MemberFailed(Member),
    /// `member-update`: a member's tags or address changed.
    MemberUpdate(Member),
    /// `member-reap`: a failed or left member was forgotten.
    MemberReap(Member),
    /// `user`: a user event.
    User(UserEvent),
}

impl Event {
    /// serf's name for the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::MemberJoin(_) => "member-join",
            Event::MemberLeave(_) => "member-leave",
            Event::MemberFailed(_) => "member-failed",
            Event::MemberUpdate(_) => "member-update",
            Event::MemberReap(_) => "member-reap",
            Event::User(_) => "user",
        }
    }
}

/// An immutable snapshot of the pool's members, sorted by name (includes the local node).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersView {
    /// The local node's name.
    pub local: String,
    /// Every known member.
    pub members: Vec<Member>,
}

impl MembersView {
    /// A member by name.
    pub fn get(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// How many members have `status`.
    pub fn count(&self, status: MemberStatus) -> usize {
        self.members.iter().filter(|m| m.status == status).count()
    }
}

#[derive(Debug)]
struct Entry {
    member: Member,
    since: Instant,
}

#[derive(Debug)]
struct Intent {
    bump: u64,
    at: Instant,
    /// Forget the member once it is left (`force-leave -prune`).
    prune: bool,
}

/// The table the runtime mutates; every method returns the events it caused.
#[derive(Debug)]
pub struct MemberTable {
    local: String,
    entries: BTreeMap<String, Entry>,
    leave_intents: HashMap<String, Intent>,
    /// The newest tags heard per member, with the identity bump they were published under.
    tags: HashMap<String, (u64, Tags)>,
    /// Members foca reports up whose tags were never heard; shown once they are.
    pending: HashMap<String, NodeId>,
}

impl MemberTable {
    /// A table holding only the local node, alive, with its tags.
    pub fn new(local: &NodeId, tags: &Tags, now: Instant) -> (Self, Vec<Event>) {
        let mut table = Self {
            local: local.name.clone(),
            entries: BTreeMap::new(),
            leave_intents: HashMap::new(),
            tags: HashMap::from([(local.name.clone(), (local.bump, tags.clone()))]),
            pending: HashMap::new(),
        };
        let member = Member::from_id(local, tags.clone(), MemberStatus::Alive);
        table.entries.insert(
            local.name.clone(),
            Entry {
                member: member.clone(),
                since: now,
            },
        );
        (table, vec![Event::MemberJoin(member)])
    }

    /// The current snapshot.
    pub fn view(&self) -> MembersView {
        MembersView {
            local: self.local.clone(),
            members: self.entries.values().map(|e| e.member.clone()).collect(),
        }
    }

    /// Number of members that are alive or leaving.
    pub fn num_active(&self) -> usize {
        self.entries
            .values()
            .filter(|e| matches!(e.member.status, MemberStatus::Alive | MemberStatus::Leaving))
            .count()
    }

    /// The status of a member.
    pub fn status(&self, name: &str) -> Option<MemberStatus> {
        self.entries.get(name).map(|e| e.member.status)
    }

    /// The identity bump we know for a member.
    pub fn bump(&self, name: &str) -> Option<u64> {
        self.entries.get(name).map(|e| e.member.incarnation)
    }

    /// Our own identity changed (tags, or a renew after being declared down).
    pub fn local_changed(&mut self, id: &NodeId, now: Instant) -> Vec<Event> {
        self.refresh(id, now).into_iter().collect()
    }

    /// Our own status (leaving, then left, during a graceful leave).
    pub fn set_local_status(&mut self, status: MemberStatus, now: Instant) {
        if let Some(e) = self.entries.get_mut(&self.local) {
            e.member.status = status;
            e.since = now;
        }
    }

    /// foca `MemberUp`. A member whose tags were never heard waits in `pending`.
    pub fn member_up(&mut self, id: &NodeId, now: Instant) -> Vec<Event> {
        let mut events: Vec<Event> = self.refresh(id, now).into_iter().collect();
        let Some(e) = self.entries.get_mut(&id.name) else {
            let Some((_, tags)) = self.tags.get(&id.name) else {
                if self.pending.get(&id.name).is_none_or(|p| p.bump <= id.bump) {
                    self.pending.insert(id.name.clone(), id.clone());
                }
                return Vec::new();
            };
            self.pending.remove(&id.name);
            let member = Member::from_id(id, tags.clone(), MemberStatus::Alive);
            self.entries.insert(
                id.name.clone(),
                Entry {
                    member: member.clone(),
                    since: now,
                },
            );
            return vec![Event::MemberJoin(member)];
        };
        if e.member.incarnation != id.bump {
            return events; // stale: we already know a newer identity
        }
        let intent_applies = self
            .leave_intents
            .get(&id.name)
            .is_some_and(|i| i.bump >= id.bump);
        match e.member.status {
            MemberStatus::Alive | MemberStatus::Leaving => {}
            MemberStatus::Failed | MemberStatus::Left => {
                e.member.status = if intent_applies {
                    MemberStatus::Leaving
                } else {
                    MemberStatus::Alive
                };
                e.since = now;
                events.retain(|ev| !matches!(ev, Event::MemberUpdate(_)));
                events.push(Event::MemberJoin(e.member.clone()));
            }
        }
        events
    }

    /// foca `MemberDown`: left if a leave intent for this incarnation arrived, else failed;
    /// then reaped at once if that intent was a prune.
    pub fn member_down(&mut self, id: &NodeId, now: Instant) -> Vec<Event> {
        let intent = self
            .leave_intents
            .get(&id.name)
            .filter(|i| i.bump >= id.bump);
        let (intent_applies, prune) = (intent.is_some(), intent.is_some_and(|i| i.prune));
        let Some(e) = self.entries.get_mut(&id.name) else {
            // Never shown (tags unknown): it just stops waiting for them.
            if self
                .pending
                .get(&id.name)
                .is_some_and(|p| p.bump <= id.bump)
            {
                self.pending.remove(&id.name);
            }
            return Vec::new();
        };
        if e.member.incarnation > id.bump || id.name == self.local {
            return Vec::new(); // about an identity the member already replaced
        }
        e.member.incarnation = id.bump;
        e.member.addr = id.addr;
        let (status, event): (_, fn(Member) -> Event) = if intent_applies {
            (MemberStatus::Left, Event::MemberLeave)
        } else {
            (MemberStatus::Failed, Event::MemberFailed)
        };
        if e.member.status == status {
            return Vec::new();
        }
        e.member.status = status;
        e.since = now;
        let mut events = vec![event(e.member.clone())];
        if prune {
            events.extend(self.prune(&id.name));
        }
        events
    }

    /// foca `Rename`: the member switched to a newer identity (tags changed, or restarted).
    /// Status changes arrive separately as `MemberUp`/`MemberDown`; new tags through
    /// [`Self::learn_tags`].
    pub fn renamed(&mut self, new: &NodeId, now: Instant) -> Vec<Event> {
        if let Some(p) = self.pending.get_mut(&new.name)
            && p.bump < new.bump
        {
            *p = new.clone();
        }
        self.refresh(new, now).into_iter().collect()
    }

    /// Tags a member published under identity bump `bump` (broadcast, push-pull or a
    /// direct reply). Older than what we hold: ignored. A member waiting for its tags is
    /// shown now (`member-join`); a shown one whose tags changed gets `member-update`.
    pub fn learn_tags(&mut self, name: &str, bump: u64, tags: &Tags, now: Instant) -> Vec<Event> {
        if self.tags.get(name).is_some_and(|(held, _)| *held >= bump) {
            return Vec::new();
        }
        self.tags.insert(name.to_owned(), (bump, tags.clone()));
        if let Some(id) = self.pending.remove(name) {
            return self.member_up(&id, now);
        }
        let Some(e) = self.entries.get_mut(name) else {
            return Vec::new();
        };
        if e.member.tags == *tags {
            return Vec::new();
        }
        e.member.tags = tags.clone();
        let alive = e.member.status == MemberStatus::Alive;
        alive
            .then(|| Event::MemberUpdate(e.member.clone()))
            .into_iter()
            .collect()
    }

    /// The newest tags held for a member, with their bump (to answer tag requests).
    pub fn tags_of(&self, name: &str) -> Option<(u64, &Tags)> {
        self.tags.get(name).map(|(bump, tags)| (*bump, tags))
    }

    /// Members whose current identity is newer than the tags we hold (or who wait for
    /// their first tags), with the address to ask.
    pub fn tags_wanted(&self) -> Vec<(String, SocketAddr)> {
        let stale = |name: &str, bump: u64| self.tags.get(name).is_none_or(|(b, _)| *b < bump);
        let waiting = self.pending.values().map(|id| (id.name.clone(), id.addr));
        let shown = self
            .entries
            .values()
            .map(|e| &e.member)
            .filter(|m| {
                m.name != self.local
                    && matches!(m.status, MemberStatus::Alive | MemberStatus::Leaving)
                    && stale(&m.name, m.incarnation)
            })
            .map(|m| (m.name.clone(), m.addr));
        waiting.chain(shown).collect()
    }

    /// A new leave intent: alive → leaving, failed → left (force-leave). A prune intent
    /// also removes a left member (`member-reap`), or a leaving one once it is down.
    pub fn leave_intent(&mut self, intent: &LeaveIntent, now: Instant) -> Vec<Event> {
        if intent.name == self.local {
            return Vec::new(); // our own intent echoed back; we track our status ourselves
        }
        self.leave_intents.insert(
            intent.name.clone(),
            Intent {
                bump: intent.bump,
                at: now,
                prune: intent.prune,
            },
        );
        let Some(e) = self.entries.get_mut(&intent.name) else {
            return Vec::new();
        };
        if intent.bump < e.member.incarnation {
            return Vec::new();
        }
        let mut events = match e.member.status {
            MemberStatus::Alive => {
                e.member.status = MemberStatus::Leaving;
                e.since = now;
                Vec::new()
            }
            MemberStatus::Failed => {
                e.member.status = MemberStatus::Left;
                e.since = now;
                vec![Event::MemberLeave(e.member.clone())]
            }
            MemberStatus::Leaving | MemberStatus::Left => Vec::new(),
        };
        if intent.prune && e.member.status == MemberStatus::Left {
            events.extend(self.prune(&intent.name));
        }
        events
    }

    /// Removes a member now (serf's `eraseNode`). If it comes back alive it joins anew.
    fn prune(&mut self, name: &str) -> Option<Event> {
        self.entries
            .remove(name)
            .map(|e| Event::MemberReap(e.member))
    }

    /// Forgets failed members after `reconnect_timeout` and left ones after
    /// `tombstone_timeout` (serf's reaper).
    pub fn reap(
        &mut self,
        now: Instant,
        reconnect_timeout: Duration,
        tombstone_timeout: Duration,
    ) -> Vec<Event> {
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(name, e)| {
                let age = now.saturating_duration_since(e.since);
                **name != self.local
                    && match e.member.status {
                        MemberStatus::Failed => age >= reconnect_timeout,
                        MemberStatus::Left => age >= tombstone_timeout,
                        _ => false,
                    }
            })
            .map(|(name, _)| name.clone())
            .collect();
        let mut events = Vec::new();
        for name in expired {
            if let Some(e) = self.entries.remove(&name) {
                self.leave_intents.remove(&name);
                self.tags.remove(&name);
                events.push(Event::MemberReap(e.member));
            }
        }
        // Intents about members we never saw go after the tombstone timeout.
        self.leave_intents
            .retain(|_, i| now.saturating_duration_since(i.at) < tombstone_timeout);
        events
    }

    /// Adopts a newer identity for a known member; `member-update` if it stays alive and its
    /// address changed (tag changes arrive through [`Self::learn_tags`]).
    fn refresh(&mut self, id: &NodeId, now: Instant) -> Option<Event> {
        let e = self.entries.get_mut(&id.name)?;
        if id.bump <= e.member.incarnation {
            return None;
        }
        let changed = e.member.addr != id.addr;
        e.member.incarnation = id.bump;
        e.member.addr = id.addr;
        if e.member.status == MemberStatus::Leaving && id.name != self.local {
            // A newer incarnation supersedes an intent about an older one.
            e.member.status = MemberStatus::Alive;
            e.since = now;
        }
        (changed && e.member.status == MemberStatus::Alive)
            .then(|| Event::MemberUpdate(e.member.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Role;

    fn id(name: &str, port: u16, bump: u64) -> NodeId {
        NodeId {
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            bump,
        }
    }

    /// A table for "me" that already holds (empty) tags for `known`.
    fn table(t0: Instant, known: &[&str]) -> (MemberTable, Vec<Event>) {
        let (mut t, ev) = MemberTable::new(&id("me", 1, 1), &Tags::default(), t0);
        for name in known {
            assert!(t.learn_tags(name, 0, &Tags::default(), t0).is_empty());
        }
        (t, ev)
    }

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(Event::kind).collect()
    }

    #[test]
    fn join_fail_rejoin_and_reap() {
        let t0 = Instant::now();
        let (mut t, ev) = table(t0, &["b"]);
        assert_eq!(kinds(&ev), ["member-join"]);
        assert_eq!(kinds(&t.member_up(&id("b", 2, 5), t0)), ["member-join"]);
        assert_eq!(kinds(&t.member_down(&id("b", 2, 5), t0)), ["member-failed"]);
        assert_eq!(t.status("b"), Some(MemberStatus::Failed));
        // Restarted with a higher bump: foca renames, then reports it up.
        assert!(t.renamed(&id("b", 2, 9), t0).is_empty());
        assert_eq!(kinds(&t.member_up(&id("b", 2, 9), t0)), ["member-join"]);
        // A stale down about the old identity changes nothing.
        assert!(t.member_down(&id("b", 2, 5), t0).is_empty());
        assert_eq!(kinds(&t.member_down(&id("b", 2, 9), t0)), ["member-failed"]);
        let later = t0 + Duration::from_secs(10);
        assert!(
            t.reap(later, Duration::from_secs(11), Duration::from_secs(1))
                .is_empty()
        );
        let ev = t.reap(later, Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(kinds(&ev), ["member-reap"]);
        assert_eq!(t.view().members.len(), 1, "only the local node remains");
    }

    #[test]
    fn leave_intent_makes_down_a_leave_and_force_leave_works() {
        let t0 = Instant::now();
        let (mut t, _) = table(t0, &["b", "c"]);
        let _ = t.member_up(&id("b", 2, 5), t0);
        let _ = t.member_up(&id("c", 3, 5), t0);
        let intent = |name: &str, ltime| LeaveIntent {
            name: name.into(),
            bump: 5,
            ltime,
            prune: false,
        };
        assert!(t.leave_intent(&intent("b", 1), t0).is_empty());
        assert_eq!(t.status("b"), Some(MemberStatus::Leaving));
        assert_eq!(kinds(&t.member_down(&id("b", 2, 5), t0)), ["member-leave"]);
        assert_eq!(t.status("b"), Some(MemberStatus::Left));
        // c fails, then is force-left.
        let _ = t.member_down(&id("c", 3, 5), t0);
        assert_eq!(
            kinds(&t.leave_intent(&intent("c", 2), t0)),
            ["member-leave"]
        );
        assert_eq!(t.view().count(MemberStatus::Left), 2);
    }

    #[test]
    fn prune_reaps_failed_left_and_leaving_members() {
        let t0 = Instant::now();
        let (mut t, _) = table(t0, &["failed", "left", "leaving"]);
        for (name, port) in [("failed", 2), ("left", 3), ("leaving", 4)] {
            let _ = t.member_up(&id(name, port, 5), t0);
        }
        let prune = |name: &str, ltime| LeaveIntent {
            name: name.into(),
            bump: 5,
            ltime,
            prune: true,
        };
        let _ = t.member_down(&id("failed", 2, 5), t0);
        assert_eq!(
            kinds(&t.leave_intent(&prune("failed", 1), t0)),
            ["member-leave", "member-reap"]
        );
        let plain = LeaveIntent {
            prune: false,
            ..prune("left", 2)
        };
        let _ = t.leave_intent(&plain, t0);
        let _ = t.member_down(&id("left", 3, 5), t0);
        assert_eq!(t.status("left"), Some(MemberStatus::Left));
        assert_eq!(
            kinds(&t.leave_intent(&prune("left", 3), t0)),
            ["member-reap"]
        );
        // Alive: leaving now, reaped when it goes down.
        assert!(t.leave_intent(&prune("leaving", 4), t0).is_empty());
        assert_eq!(t.status("leaving"), Some(MemberStatus::Leaving));
        assert_eq!(
            kinds(&t.member_down(&id("leaving", 4, 5), t0)),
            ["member-leave", "member-reap"]
        );
        assert_eq!(t.view().members.len(), 1, "only the local node remains");
        // A late report about a pruned member changes nothing; a new incarnation rejoins.
        assert!(t.member_down(&id("failed", 2, 5), t0).is_empty());
        assert_eq!(
            kinds(&t.member_up(&id("failed", 2, 6), t0)),
            ["member-join"]
        );
    }

    #[test]
    fn tag_change_is_an_update() {
        let t0 = Instant::now();
        let (mut t, _) = table(t0, &["b"]);
        let _ = t.member_up(&id("b", 2, 5), t0);
        // The rename says newer tags exist; until they arrive the old ones are shown.
        assert!(t.renamed(&id("b", 2, 6), t0).is_empty());
        assert_eq!(t.tags_wanted(), vec![("b".to_string(), id("b", 2, 6).addr)]);
        let server = Tags::new(Role::Server, "dc1");
        let ev = t.learn_tags("b", 6, &server, t0);
        assert_eq!(kinds(&ev), ["member-update"]);
        assert_eq!(
            t.view().get("b").map(|m| m.tags.role()),
            Some(Some(Role::Server))
        );
        assert!(t.tags_wanted().is_empty());
        // Older tags arriving late change nothing.
        assert!(t.learn_tags("b", 5, &Tags::default(), t0).is_empty());
        assert_eq!(t.tags_of("b").map(|(bump, _)| bump), Some(6));
        assert_eq!(MemberStatus::Failed.as_serf(), 4);
    }

    #[test]
    fn a_member_without_tags_waits_until_they_arrive() {
        let t0 = Instant::now();
        let (mut t, _) = table(t0, &[]);
        assert!(t.member_up(&id("b", 2, 5), t0).is_empty(), "held back");
        assert!(t.view().get("b").is_none());
        assert_eq!(t.tags_wanted(), vec![("b".to_string(), id("b", 2, 5).addr)]);
        let client = Tags::new(Role::Client, "dc1");
        let ev = t.learn_tags("b", 5, &client, t0);
        assert_eq!(kinds(&ev), ["member-join"]);
        assert_eq!(t.view().get("b").map(|m| m.tags.clone()), Some(client));
        // One that goes down before its tags arrive is never shown.
        assert!(t.member_up(&id("c", 3, 5), t0).is_empty());
        assert!(t.member_down(&id("c", 3, 5), t0).is_empty());
        assert!(t.tags_wanted().is_empty());
        assert!(t.learn_tags("c", 5, &Tags::default(), t0).is_empty());
        assert!(t.view().get("c").is_none());
    }
}
