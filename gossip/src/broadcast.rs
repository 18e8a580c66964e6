//! Custom foca broadcasts: serf's user events, leave intents and keyring queries, with their
//! Lamport clocks
//! and dedupe. Owns the wire shape of these messages and the "is this new?" decision foca
//! needs to stop re-gossiping; no I/O and no membership state here.
//!
//! foca 2.0 has no accessor for the broadcast handler, so new messages are handed out
//! through [`Inbox`], which the runtime drains right after each foca call (same task, never
//! across an await; its size is bounded by what one foca call can decode).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::identity::{NodeId, TagsUpdate};
use super::query::KeyQuery;

/// A user event as subscribers see it (serf `UserEvent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEvent {
    /// Lamport time of the event (Consul's `LTime`).
    pub ltime: u64,
    /// Event name.
    pub name: String,
    /// Opaque payload.
    pub payload: Vec<u8>,
    /// Node that fired it.
    pub origin: String,
}

/// A member announcing its graceful leave (serf `messageLeave`), or another node
/// force-leaving a failed member. `bump` pins it to one incarnation, so a stale intent
/// cannot make a restarted node look left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveIntent {
    /// Member name.
    pub name: String,
    /// Identity bump the intent is about.
    pub bump: u64,
    /// Lamport time on the member clock.
    pub ltime: u64,
    /// `force-leave -prune`: forget the member once it is left (serf's `Prune`). Appended
    /// last: older nodes ignore the byte and treat the intent as a plain force-leave, and
    /// [`GossipMessage::decode`] reads their intents (without it) as `false`.
    pub prune: bool,
}

/// What travels in a custom broadcast. Append variants only: postcard encodes the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipMessage {
    /// A user event.
    User(UserEvent),
    /// A leave intent.
    Leave(LeaveIntent),
    /// A keyring query.
    Query(KeyQuery),
    /// A member's new tags (tags travel apart from the identity).
    Tags(TagsUpdate),
}

impl GossipMessage {
    /// postcard bytes for `Foca::add_broadcast`.
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }

    /// Reads a broadcast. A leave intent from a node that predates `prune` ends one byte
    /// early; it reads as `prune: false` (postcard encodes `false` as one zero byte).
    pub fn decode(data: &[u8]) -> Result<Self, postcard::Error> {
        const LEAVE_VARIANT: u8 = 1;
        match postcard::from_bytes(data) {
            Err(postcard::Error::DeserializeUnexpectedEnd)
                if data.first() == Some(&LEAVE_VARIANT) =>
            {
                let mut padded = data.to_vec();
                padded.push(0);
                postcard::from_bytes(&padded)
            }
            other => other,
        }
    }
}

/// foca's backlog key: user events are unique by (ltime, name, origin); a newer leave
/// intent for a name replaces an older one still being disseminated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BroadcastKey {
    /// A user event.
    User {
        /// Lamport time.
        ltime: u64,
        /// Event name.
        name: String,
        /// Firing node (two nodes may fire the same name at the same ltime).
        origin: String,
    },
    /// A leave intent.
    Leave {
        /// Member name.
        name: String,
        /// Lamport time.
        ltime: u64,
    },
    /// A keyring query.
    Query {
        /// Origin node.
        origin: String,
        /// Query ID.
        id: u64,
    },
    /// A member's tags.
    Tags {
        /// Member name.
        name: String,
        /// Identity bump the tags were published under.
        bump: u64,
    },
}

impl foca::Invalidates for BroadcastKey {
    fn invalidates(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Leave { name: a, ltime: ta }, Self::Leave { name: b, ltime: tb }) => {
                a == b && ta >= tb
            }
            (Self::Tags { name: a, bump: ba }, Self::Tags { name: b, bump: bb }) => {
                a == b && ba >= bb
            }
            _ => self == other,
        }
    }
}

/// A decoded broadcast that was not seen before.
pub type Inbox = Arc<Mutex<VecDeque<GossipMessage>>>;

/// A Lamport clock (serf `LamportClock`).
#[derive(Debug, Default)]
pub struct LamportClock(AtomicU64);

impl LamportClock {
    /// Current time.
    pub fn time(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Returns the current time and advances the clock.
    pub fn increment(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }

    /// Moves the clock past an observed time.
    pub fn witness(&self, seen: u64) {
        self.0.fetch_max(seen.saturating_add(1), Ordering::SeqCst);
    }
}

/// Undecodable custom broadcast; foca wraps it and the runtime counts it as malformed.
#[derive(Debug, thiserror::Error)]
#[error("undecodable gossip broadcast: {0}")]
pub struct BroadcastDecodeError(postcard::Error);

/// The foca `BroadcastHandler`: decodes, dedupes, witnesses clocks, queues new messages.
#[derive(Debug)]
pub struct Handler {
    inbox: Inbox,
    event_clock: Arc<LamportClock>,
    member_clock: Arc<LamportClock>,
    query_clock: Arc<LamportClock>,
    event_buffer: u64,
    /// User events below this ltime were delivered before a restart (serf `eventMinTime`).
    min_event_ltime: u64,
    seen_events: BTreeSet<(u64, String, String)>,
    seen_queries: BTreeSet<(u64, String, u64)>,
    /// The newest leave intent per member, as (incarnation bump, ltime).
    leave_ltimes: HashMap<String, (u64, u64)>,
    /// The newest tag broadcast per member (its bump).
    tag_bumps: HashMap<String, u64>,
}

/// The clocks a [`Handler`] witnesses.
#[derive(Debug, Clone, Default)]
pub struct Clocks {
    /// User events (serf's event clock).
    pub event: Arc<LamportClock>,
    /// Member intents (serf's member clock).
    pub member: Arc<LamportClock>,
    /// Queries (serf's query clock).
    pub query: Arc<LamportClock>,
}

impl Handler {
    /// A handler remembering the last `event_buffer` ltimes of user events.
    pub fn new(inbox: Inbox, clocks: &Clocks, event_buffer: u64) -> Self {
        Self {
            inbox,
            event_clock: Arc::clone(&clocks.event),
            member_clock: Arc::clone(&clocks.member),
            query_clock: Arc::clone(&clocks.query),
            event_buffer,
            min_event_ltime: 0,
            seen_events: BTreeSet::new(),
            seen_queries: BTreeSet::new(),
            leave_ltimes: HashMap::new(),
            tag_bumps: HashMap::new(),
        }
    }

    /// A tag broadcast is new when its bump is above the last one seen for the member.
    fn tags_are_new(&mut self, update: &TagsUpdate) -> bool {
        match self.tag_bumps.get(&update.name) {
            Some(&last) if last >= update.bump => false,
            _ => {
                self.tag_bumps.insert(update.name.clone(), update.bump);
                true
            }
        }
    }

    /// Queries are new once by (ltime, origin, id) within serf's query buffer (the same
    /// window as events), and advance the query clock.
    fn query_is_new(&mut self, q: &KeyQuery) -> bool {
        let floor = self.query_clock.time().saturating_sub(self.event_buffer);
        if q.ltime < floor {
            return false;
        }
        self.query_clock.witness(q.ltime);
        if !self.seen_queries.insert((q.ltime, q.origin.clone(), q.id)) {
            return false;
        }
        let floor = self.query_clock.time().saturating_sub(self.event_buffer);
        self.seen_queries = self.seen_queries.split_off(&(floor, String::new(), 0));
        true
    }

    /// Resumes after a restart: user events below `ltime` count as delivered.
    pub fn with_min_event_ltime(mut self, ltime: u64) -> Self {
        self.min_event_ltime = ltime;
        self
    }

    fn user_event_is_new(&mut self, ev: &UserEvent) -> bool {
        let now = self.event_clock.time();
        // serf: events older than the buffer are ignored, they may have been delivered.
        let floor = now.saturating_sub(self.event_buffer);
        if ev.ltime < floor || ev.ltime < self.min_event_ltime {
            return false;
        }
        self.event_clock.witness(ev.ltime);
        let key = (ev.ltime, ev.name.clone(), ev.origin.clone());
        if !self.seen_events.insert(key) {
            return false;
        }
        // Forget what fell out of the window.
        let floor = self.event_clock.time().saturating_sub(self.event_buffer);
        self.seen_events = self
            .seen_events
            .split_off(&(floor, String::new(), String::new()));
        true
    }

    /// Newer means a later incarnation, or a later ltime for the same one: a restarted
    /// member's clock starts over, so ltimes alone would call its next leave stale.
    fn leave_is_new(&mut self, intent: &LeaveIntent) -> bool {
        self.member_clock.witness(intent.ltime);
        let order = (intent.bump, intent.ltime);
        match self.leave_ltimes.get(&intent.name) {
            Some(&last) if last >= order => false,
            _ => {
                self.leave_ltimes.insert(intent.name.clone(), order);
                true
            }
        }
    }
}

impl foca::BroadcastHandler<NodeId> for Handler {
    type Key = BroadcastKey;
    type Error = BroadcastDecodeError;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&NodeId>,
    ) -> Result<Option<BroadcastKey>, BroadcastDecodeError> {
        let msg = GossipMessage::decode(data).map_err(BroadcastDecodeError)?;
        let key = match &msg {
            GossipMessage::User(ev) => {
                if !self.user_event_is_new(ev) {
                    return Ok(None);
                }
                BroadcastKey::User {
                    ltime: ev.ltime,
                    name: ev.name.clone(),
                    origin: ev.origin.clone(),
                }
            }
            GossipMessage::Leave(intent) => {
                if !self.leave_is_new(intent) {
                    return Ok(None);
                }
                BroadcastKey::Leave {
                    name: intent.name.clone(),
                    ltime: intent.ltime,
                }
            }
            GossipMessage::Query(q) => {
                if !self.query_is_new(q) {
                    return Ok(None);
                }
                BroadcastKey::Query {
                    origin: q.origin.clone(),
                    id: q.id,
                }
            }
            GossipMessage::Tags(update) => {
                if !self.tags_are_new(update) {
                    return Ok(None);
                }
                BroadcastKey::Tags {
                    name: update.name.clone(),
                    bump: update.bump,
                }
            }
        };
        self.inbox.lock().push_back(msg);
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use foca::{BroadcastHandler, Invalidates};

    use super::*;

    fn handler() -> (Handler, Inbox, Arc<LamportClock>) {
        let inbox = Inbox::default();
        let clocks = Clocks::default();
        let h = Handler::new(Arc::clone(&inbox), &clocks, 4);
        (h, inbox, clocks.event)
    }

    fn user(ltime: u64, name: &str) -> Vec<u8> {
        GossipMessage::User(UserEvent {
            ltime,
            name: name.into(),
            payload: b"p".to_vec(),
            origin: "n1".into(),
        })
        .encode()
        .expect("encodes")
    }

    #[test]
    fn user_events_are_new_once_and_advance_the_clock() {
        let (mut h, inbox, clock) = handler();
        assert!(
            h.receive_item(&user(7, "deploy"), None)
                .expect("ok")
                .is_some()
        );
        assert!(
            h.receive_item(&user(7, "deploy"), None)
                .expect("ok")
                .is_none()
        );
        assert!(
            h.receive_item(&user(7, "other"), None)
                .expect("ok")
                .is_some()
        );
        assert_eq!(clock.time(), 8);
        assert_eq!(inbox.lock().len(), 2);
        // Older than the 4-ltime buffer: ignored.
        assert!(
            h.receive_item(&user(2, "late"), None)
                .expect("ok")
                .is_none()
        );
        assert!(h.receive_item(b"\xff\xff\xff", None).is_err());
    }

    #[test]
    fn newer_leave_intents_replace_older_ones() {
        let (mut h, inbox, _) = handler();
        let leave = |ltime| {
            GossipMessage::Leave(LeaveIntent {
                name: "n2".into(),
                bump: 1,
                ltime,
                prune: false,
            })
            .encode()
            .expect("encodes")
        };
        assert!(h.receive_item(&leave(3), None).expect("ok").is_some());
        assert!(h.receive_item(&leave(3), None).expect("ok").is_none());
        assert!(h.receive_item(&leave(2), None).expect("ok").is_none());
        assert_eq!(inbox.lock().len(), 1);
        let k = |ltime| BroadcastKey::Leave {
            name: "n2".into(),
            ltime,
        };
        assert!(k(3).invalidates(&k(2)) && !k(2).invalidates(&k(3)));
    }

    #[test]
    fn newer_tags_replace_older_ones() {
        let (mut h, inbox, _) = handler();
        let tags = |bump| {
            GossipMessage::Tags(TagsUpdate {
                name: "n2".into(),
                bump,
                tags: crate::Tags::new(crate::Role::Server, "dc1"),
            })
            .encode()
            .expect("encodes")
        };
        assert!(h.receive_item(&tags(4), None).expect("ok").is_some());
        assert!(h.receive_item(&tags(4), None).expect("ok").is_none());
        assert!(h.receive_item(&tags(3), None).expect("ok").is_none());
        assert!(h.receive_item(&tags(5), None).expect("ok").is_some());
        assert_eq!(inbox.lock().len(), 2);
        let k = |bump| BroadcastKey::Tags {
            name: "n2".into(),
            bump,
        };
        assert!(k(5).invalidates(&k(4)) && !k(4).invalidates(&k(5)));
    }

    #[test]
    fn queries_are_new_once_per_origin_and_id() {
        let (mut h, inbox, _) = handler();
        let q = |ltime, id| {
            GossipMessage::Query(KeyQuery {
                ltime,
                id,
                origin: "n1".into(),
                reply_to: "127.0.0.1:1".parse().expect("addr"),
                op: crate::query::KeyOp::List,
            })
            .encode()
            .expect("encodes")
        };
        assert!(h.receive_item(&q(1, 10), None).expect("ok").is_some());
        assert!(h.receive_item(&q(1, 10), None).expect("ok").is_none());
        assert!(h.receive_item(&q(1, 11), None).expect("ok").is_some());
        assert_eq!(inbox.lock().len(), 2);
    }

    /// A member that left, restarted (new incarnation, member clock back at 0) and leaves
    /// again must be heard: its intent is newer by incarnation, whatever its ltime.
    #[test]
    fn a_restarted_members_leave_is_new_despite_a_reset_clock() {
        let (mut h, inbox, _) = handler();
        let leave = |bump, ltime| {
            GossipMessage::Leave(LeaveIntent {
                name: "n2".into(),
                bump,
                ltime,
                prune: false,
            })
            .encode()
            .expect("encodes")
        };
        assert!(h.receive_item(&leave(5, 3), None).expect("ok").is_some());
        assert!(h.receive_item(&leave(9, 0), None).expect("ok").is_some());
        // Intents about the replaced incarnation are stale, whatever their ltime.
        assert!(h.receive_item(&leave(5, 7), None).expect("ok").is_none());
        assert_eq!(inbox.lock().len(), 2);
    }

    #[test]
    fn a_restored_node_ignores_events_it_delivered_before_the_restart() {
        let (h, inbox, clock) = handler();
        clock.witness(9);
        let mut h = h.with_min_event_ltime(10);
        assert!(h.receive_item(&user(9, "old"), None).expect("ok").is_none());
        assert!(
            h.receive_item(&user(10, "new"), None)
                .expect("ok")
                .is_some()
        );
        assert_eq!(inbox.lock().len(), 1);
    }

    /// The shape before `prune` existed, as an older node encodes and decodes it.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum OldMessage {
        User(UserEvent),
        Leave { name: String, bump: u64, ltime: u64 },
    }

    #[test]
    fn leave_intents_without_prune_still_decode_both_ways() {
        let old = OldMessage::Leave {
            name: "n2".into(),
            bump: 4,
            ltime: 9,
        };
        let bytes = postcard::to_allocvec(&old).expect("encodes");
        let intent = LeaveIntent {
            name: "n2".into(),
            bump: 4,
            ltime: 9,
            prune: false,
        };
        assert_eq!(
            GossipMessage::decode(&bytes).expect("old intent decodes"),
            GossipMessage::Leave(intent.clone())
        );
        let pruning = GossipMessage::Leave(LeaveIntent {
            prune: true,
            ..intent
        })
        .encode()
        .expect("encodes");
        let seen_by_old: OldMessage = postcard::from_bytes(&pruning).expect("old node decodes");
        assert_eq!(seen_by_old, old, "an old node sees a plain force-leave");
        // A truncated user event is still an error, not padded into something else.
        let user = user(3, "deploy");
        assert!(GossipMessage::decode(&user[..user.len() - 1]).is_err());
    }
}
