//! The foca driver: the one task that owns `Foca`. Packets (from the transport), commands
//! (from `GossipHandle`) and its own timers come in; after every foca call the effects go
//! out: datagrams to the transport's bounded queue (`try_send`, drops counted), timers into
//! a deadline heap this task sleeps on, notifications and broadcasts into the member table,
//! whose snapshot is published on a `watch` and whose events on a `broadcast`. Beside SWIM
//! it answers and sends the `direct` messages: RTT pings (`rtt.rs`) and keyring query
//! replies (`query.rs`); tag requests and push-pull state sync live in `sync.rs`.
//!
//! Timers live in this task rather than a separate scheduler task: foca wants them fired in
//! deadline order (foca issues #26/#36), a heap here gives that without a channel that could
//! fill up and silently stop the probe cycle, and its size is bounded by foca's own state
//! (one probe, one suspicion timer per suspect, a few periodic ones).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use foca::{Foca, Notification, OwnedNotification, PostcardCodec, Timer};
use rand::rngs::StdRng;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::GossipError;
use super::broadcast::{Clocks, GossipMessage, Handler, Inbox, LeaveIntent, UserEvent};
use super::config::GossipConfig;
use super::direct::{self, Direct, Payload};
use super::identity::{NodeId, Tags, TagsUpdate};
use super::members::{Event, MemberStatus, MemberTable, MembersView};
use super::query::{KeyOp, KeyQuery, KeyReply, KeyStore};
use super::rtt::{Pinger, SharedCoordinates};
use super::transport::Counters;

mod sync;

type FocaT = Foca<NodeId, PostcardCodec, StdRng, Handler>;
type Reply<T> = oneshot::Sender<Result<T, GossipError>>;

/// What the handle asks of the foca task (style §4's `Input`, minus `Data` and `Timer`,
/// which arrive on the inbound queue and the in-task heap).
#[derive(Debug)]
pub(crate) enum Command {
    /// Announce ourselves to these addresses (join / retry-join).
    Announce(Vec<SocketAddr>),
    /// First half of a graceful leave: gossip the intent.
    LeaveIntent(Reply<()>),
    /// Second half: declare ourselves down and stop taking part.
    Leave(Reply<()>),
    /// Move a failed member to `left`; with `prune`, remove it from every member list.
    ForceLeave {
        name: String,
        prune: bool,
        reply: Reply<()>,
    },
    /// Replace our tags.
    UpdateTags { tags: Tags, reply: Reply<()> },
    /// Fire a user event.
    UserEvent {
        name: String,
        payload: Vec<u8>,
        reply: Reply<()>,
    },
    /// Start a keyring query whose replies go to `replies`.
    KeyQuery {
        id: u64,
        op: KeyOp,
        replies: mpsc::Sender<KeyReply>,
        reply: Reply<()>,
    },
}

/// Everything the task owns.
pub(crate) struct Runtime {
    foca: FocaT,
    config: GossipConfig,
    timers: TimerQueue,
    notes: Vec<OwnedNotification<NodeId>>,
    outbound_tx: mpsc::Sender<(SocketAddr, Bytes)>,
    counters: Arc<Counters>,
    inbox: Inbox,
    clocks: Clocks,
    keys: Arc<KeyStore>,
    pinger: Pinger,
    /// Our open keyring queries: ID → where their replies go.
    queries: std::collections::HashMap<u64, mpsc::Sender<KeyReply>>,
    table: MemberTable,
    events_tx: broadcast::Sender<Event>,
    members_tx: watch::Sender<MembersView>,
    sized_for: usize,
    left: bool,
    /// When to refute a leave intent about us (someone force-left this running node).
    refute_at: Option<Instant>,
    /// When we last asked each member for its tags (asks are repeated at most once per
    /// probe interval).
    asked_tags: std::collections::HashMap<String, Instant>,
    /// When to sync state with a random peer next (`None`: push-pull disabled).
    next_push_pull: Option<Instant>,
}

/// The channels the task is wired to.
pub(crate) struct Wiring {
    pub(crate) outbound_tx: mpsc::Sender<(SocketAddr, Bytes)>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) events_tx: broadcast::Sender<Event>,
    pub(crate) members_tx: watch::Sender<MembersView>,
    pub(crate) keys: Arc<KeyStore>,
    pub(crate) coordinates: SharedCoordinates,
}

enum Branch {
    Timers,
    Command(Command),
    Data(SocketAddr, Bytes),
    Ping,
    Reap,
    PushPull,
}

impl Runtime {
    /// Builds foca and the member table for `identity` with `tags`; publishes the first view.
    pub(crate) fn new(identity: NodeId, tags: &Tags, config: GossipConfig, wiring: Wiring) -> Self {
        let inbox = Inbox::default();
        let clocks = Clocks::default();
        let mut handler = Handler::new(Arc::clone(&inbox), &clocks, config.event_buffer);
        if let Some(last) = config.restored_event_ltime {
            clocks.event.witness(last);
            handler = handler.with_min_event_ltime(last.saturating_add(1));
        }
        let sized_for = usize::try_from(config.expected_cluster_size).unwrap_or(usize::MAX);
        let foca = Foca::with_custom_broadcast(
            identity.clone(),
            config.foca_config(sized_for),
            rand::make_rng::<StdRng>(),
            PostcardCodec,
            handler,
        );
        let (table, events) = MemberTable::new(&identity, tags, Instant::now());
        let next_push_pull = (!config.push_pull_interval.is_zero())
            .then(|| Instant::now() + config.push_pull_interval);
        let mut rt = Self {
            foca,
            config,
            timers: TimerQueue::default(),
            notes: Vec::new(),
            outbound_tx: wiring.outbound_tx,
            counters: wiring.counters,
            inbox,
            clocks,
            keys: wiring.keys,
            pinger: Pinger::new(wiring.coordinates),
            queries: std::collections::HashMap::new(),
            table,
            events_tx: wiring.events_tx,
            members_tx: wiring.members_tx,
            sized_for,
            left: false,
            refute_at: None,
            asked_tags: std::collections::HashMap::new(),
            next_push_pull,
        };
        rt.publish(events);
        rt
    }

    /// The loop: one branch at a time, timers first so a packet flood cannot starve probes.
    pub(crate) async fn run(
        mut self,
        token: CancellationToken,
        mut commands_rx: mpsc::Receiver<Command>,
        mut inbound_rx: mpsc::Receiver<(SocketAddr, Bytes)>,
    ) {
        let mut reap = tokio::time::interval(self.config.reap_interval);
        reap.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut ping = tokio::time::interval(self.config.probe_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            let deadline = match (self.timers.next_deadline(), self.refute_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let far = Instant::now() + Duration::from_secs(3600);
            let push_pull = self.next_push_pull;
            let branch = tokio::select! {
                biased;
                _ = token.cancelled() => break,
                _ = sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => Branch::Timers,
                cmd = commands_rx.recv() => match cmd {
                    Some(cmd) => Branch::Command(cmd),
                    None => break, // every handle is gone
                },
                Some((from, data)) = inbound_rx.recv() => Branch::Data(from, data),
                _ = ping.tick() => Branch::Ping,
                _ = reap.tick() => Branch::Reap,
                _ = sleep_until(push_pull.unwrap_or(far)), if push_pull.is_some() => Branch::PushPull,
            };
            match branch {
                Branch::Timers => self.handle_timers(),
                Branch::Command(cmd) => self.handle_command(cmd),
                Branch::Data(from, data) => self.handle_data(from, &data),
                Branch::Ping => self.handle_ping(),
                Branch::Reap => self.handle_reap(),
                Branch::PushPull => self.periodic_push_pull(),
            }
        }
        debug!("gossip runtime stopped");
    }

    /// Runs one foca call with this task's effects sink, then applies what it produced.
    fn with_foca<R>(&mut self, call: impl FnOnce(&mut FocaT, &mut Effects<'_>) -> R) -> R {
        let mut fx = Effects {
            outbound_tx: &self.outbound_tx,
            counters: &self.counters,
            timers: &mut self.timers,
            notes: &mut self.notes,
        };
        let result = call(&mut self.foca, &mut fx);
        self.absorb();
        result
    }

    fn handle_timers(&mut self) {
        let now = Instant::now();
        while let Some(timer) = self.timers.pop_due(now) {
            if let Err(err) = self.with_foca(|f, fx| f.handle_timer(timer, fx)) {
                debug!(cause = %err, "foca timer error");
            }
        }
        if self.refute_at.is_some_and(|at| at <= now) {
            self.refute_at = None;
            let events = self.refute();
            self.publish(events);
        }
    }

    fn handle_data(&mut self, from: SocketAddr, payload: &[u8]) {
        let data = match direct::parse(payload) {
            Ok(Payload::Foca(data)) => data,
            Ok(Payload::Direct(msg)) => return self.handle_direct(from, msg),
            Err(_) => return self.counters.count_malformed(),
        };
        match self.with_foca(|f, fx| f.handle_data(data, fx)) {
            Ok(()) => {}
            Err(
                foca::Error::Decode(_)
                | foca::Error::MalformedPacket
                | foca::Error::DataTooBig
                | foca::Error::CustomBroadcast(_),
            ) => self.counters.count_malformed(),
            Err(err) => debug!(cause = %err, "foca ignored a packet"),
        }
    }

    fn handle_direct(&mut self, from: SocketAddr, msg: Direct) {
        if self.left {
            return;
        }
        match msg {
            Direct::Ping { seq } => {
                let pong = Direct::Pong {
                    seq,
                    coord: self.pinger.coordinate().into(),
                };
                self.send_direct(from, &pong);
            }
            Direct::Pong { seq, coord } => {
                if !self
                    .pinger
                    .pong(seq, from, &(&coord).into(), Instant::now())
                {
                    debug!(%from, seq, "ignored pong");
                }
            }
            Direct::KeyReply(reply) => self.deliver_key_reply(reply),
            Direct::TagsRequest { names } => self.answer_tags_request(from, &names),
            Direct::Tags(updates) => self.learn_tags(&updates),
            Direct::PushPull(state) => self.receive_push_pull(from, state),
        }
    }

    /// Pings the next member for an RTT sample; asks again for tags still missing; drops
    /// replies channels nobody reads.
    fn handle_ping(&mut self) {
        self.queries.retain(|_, tx| !tx.is_closed());
        if self.left {
            return;
        }
        self.request_tags();
        let table = &self.table;
        let own = self.foca.identity().name.clone();
        let alive = || {
            table
                .view()
                .members
                .into_iter()
                .filter(|m| m.status == MemberStatus::Alive && m.name != own)
                .map(|m| (m.name, m.addr))
                .collect()
        };
        if let Some((to, ping)) = self.pinger.tick(alive, Instant::now()) {
            self.send_direct(to, &ping);
        }
    }

    fn send_direct(&self, to: SocketAddr, msg: &Direct) {
        let data = match direct::frame_direct(msg) {
            Ok(d) => d,
            Err(err) => return warn!(cause = %err, "encoding a direct gossip message"),
        };
        match self.outbound_tx.try_send((to, data)) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => self.counters.count_outbound_full(),
        }
    }

    fn deliver_key_reply(&mut self, reply: KeyReply) {
        let Some(tx) = self.queries.get(&reply.id) else {
            return debug!(id = reply.id, node = %reply.node, "reply to an unknown key query");
        };
        // Full means more replies than members: someone is replaying; drop the excess.
        if let Err(TrySendError::Closed(_)) = tx.try_send(reply) {
            self.queries.retain(|_, tx| !tx.is_closed());
        }
    }

    /// Runs a keyring query's operation here and answers its origin.
    fn answer_key_query(&mut self, q: &KeyQuery) {
        let me = self.foca.identity();
        let (name, addr) = (me.name.clone(), me.addr);
        let reply = self.keys.execute(&q.op, q.id, &name);
        if let Some(err) = &reply.error {
            warn!(op = q.op.name(), origin = %q.origin, cause = %err, "keyring query failed here");
        } else if q.op != KeyOp::List {
            info!(op = q.op.name(), origin = %q.origin, "keyring changed by query");
        }
        if q.origin == name && q.reply_to == addr {
            self.deliver_key_reply(reply);
        } else {
            self.send_direct(q.reply_to, &Direct::KeyReply(reply));
        }
    }

    fn key_query(
        &mut self,
        id: u64,
        op: KeyOp,
        replies: mpsc::Sender<KeyReply>,
    ) -> Result<(), GossipError> {
        self.ensure_active()?;
        let me = self.foca.identity();
        let query = KeyQuery {
            ltime: self.clocks.query.increment(),
            id,
            origin: me.name.clone(),
            reply_to: me.addr,
            op,
        };
        self.queries.insert(id, replies);
        // Our own handler sees the broadcast first, so `absorb` answers it here too.
        self.add_broadcast(&GossipMessage::Query(query))
    }

    fn handle_reap(&mut self) {
        let (reconnect, tombstone) = (self.config.reconnect_timeout, self.config.tombstone_timeout);
        let events = self.table.reap(Instant::now(), reconnect, tombstone);
        self.publish(events);
    }

    fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Announce(addrs) => self.join_announce(&addrs),
            Command::LeaveIntent(reply) => {
                let _ = reply.send(self.leave_intent());
            }
            Command::Leave(reply) => {
                let _ = reply.send(self.leave());
            }
            Command::ForceLeave { name, prune, reply } => {
                let _ = reply.send(self.force_leave(&name, prune));
            }
            Command::UpdateTags { tags, reply } => {
                let _ = reply.send(self.update_tags(tags));
            }
            Command::UserEvent {
                name,
                payload,
                reply,
            } => {
                let _ = reply.send(self.user_event(name, payload));
            }
            Command::KeyQuery {
                id,
                op,
                replies,
                reply,
            } => {
                let _ = reply.send(self.key_query(id, op, replies));
            }
        }
    }

    fn announce(&mut self, addrs: &[SocketAddr]) {
        let own = self.foca.identity().addr;
        for &addr in addrs.iter().filter(|a| **a != own) {
            let target = NodeId::probe_target(addr);
            if let Err(err) = self.with_foca(|f, fx| f.announce(target, fx)) {
                debug!(%addr, cause = %err, "announce failed");
            }
        }
    }

    fn ensure_active(&self) -> Result<(), GossipError> {
        if self.left {
            Err(GossipError::Left)
        } else {
            Ok(())
        }
    }

    /// Adds a broadcast (our own handler sees it first, so it is delivered locally too) and
    /// pushes it to a few members right away instead of waiting for the next gossip round.
    fn add_broadcast(&mut self, msg: &GossipMessage) -> Result<(), GossipError> {
        let data = msg
            .encode()
            .map_err(|e| GossipError::Foca(format!("encoding broadcast: {e}")))?;
        self.with_foca(|f, fx| {
            f.add_broadcast(&data)?;
            f.broadcast(fx)
        })
        .map_err(|e| GossipError::Foca(e.to_string()))
    }

    fn leave_intent(&mut self) -> Result<(), GossipError> {
        self.ensure_active()?;
        let id = self.foca.identity().clone();
        let intent = LeaveIntent {
            name: id.name,
            bump: id.bump,
            ltime: self.clocks.member.increment(),
            prune: false,
        };
        // Leaving before the broadcast: foca hands it straight back to us (absorb), and our
        // own intent must not be refuted as a stranger's would be.
        self.table
            .set_local_status(MemberStatus::Leaving, Instant::now());
        if let Err(e) = self.add_broadcast(&GossipMessage::Leave(intent)) {
            self.table
                .set_local_status(MemberStatus::Alive, Instant::now());
            return Err(e);
        }
        self.publish(Vec::new());
        Ok(())
    }

    fn leave(&mut self) -> Result<(), GossipError> {
        self.ensure_active()?;
        self.with_foca(|f, fx| f.leave_cluster(fx))
            .map_err(|e| GossipError::Foca(e.to_string()))?;
        self.left = true;
        self.table
            .set_local_status(MemberStatus::Left, Instant::now());
        self.publish(Vec::new());
        Ok(())
    }

    /// serf's `RemoveFailedNode`: gossips a leave intent for any known member. A failed member
    /// becomes left, an alive one leaving (and refutes it if it is still running, see
    /// [`Self::refute`]); `prune` also erases a left member. A left member without `prune`
    /// needs nothing.
    fn force_leave(&mut self, name: &str, prune: bool) -> Result<(), GossipError> {
        self.ensure_active()?;
        match self.table.status(name) {
            None => Err(GossipError::UnknownMember(name.to_owned())),
            Some(MemberStatus::Left) if !prune => Ok(()),
            Some(_) => {
                let intent = LeaveIntent {
                    name: name.to_owned(),
                    bump: self.table.bump(name).unwrap_or(0),
                    ltime: self.clocks.member.increment(),
                    prune,
                };
                self.add_broadcast(&GossipMessage::Leave(intent))
            }
        }
    }

    fn update_tags(&mut self, tags: Tags) -> Result<(), GossipError> {
        self.ensure_active()?;
        let current = self.foca.identity().clone();
        if self.own_tags() == tags {
            return Ok(());
        }
        let mut events = self.switch_identity(current.bumped())?;
        events.extend(self.publish_own_tags(tags));
        self.publish(events);
        Ok(())
    }

    /// The tags we publish.
    fn own_tags(&self) -> Tags {
        let own = &self.foca.identity().name;
        self.table
            .tags_of(own)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    }

    /// Records `tags` under our current identity and broadcasts them, so members that see
    /// the new identity need not ask. Returns our own `member-update`, if any.
    fn publish_own_tags(&mut self, tags: Tags) -> Vec<Event> {
        let id = self.foca.identity().clone();
        let events = self
            .table
            .learn_tags(&id.name, id.bump, &tags, Instant::now());
        let update = TagsUpdate {
            name: id.name,
            bump: id.bump,
            tags,
        };
        if let Err(e) = self.add_broadcast(&GossipMessage::Tags(update)) {
            warn!(cause = %e, "could not broadcast our tags; members will ask for them");
        }
        events
    }

    /// Moves to `new_id` (a higher bump) and tells a few members at once.
    fn switch_identity(&mut self, new_id: NodeId) -> Result<Vec<Event>, GossipError> {
        self.with_foca(|f, fx| f.change_identity(new_id.clone(), fx))
            .map_err(|e| GossipError::Foca(e.to_string()))?;
        // change_identity leaves foca disconnected until someone addresses the new identity;
        // announcing to a few members gets a reply to it right away.
        let peers: Vec<SocketAddr> = self
            .foca
            .iter_members()
            .take(self.config.gossip_nodes)
            .map(|m| m.id().addr)
            .collect();
        self.announce(&peers);
        Ok(self.table.local_changed(&new_id, Instant::now()))
    }

    /// A leave intent about us while we are running and not leaving (someone force-left us):
    /// serf refutes it by rejoining with a newer incarnation, which supersedes the intent on
    /// every member (`members.rs` `refresh`). Our own graceful leave's echo is not refuted.
    /// Serf's refutation rides its broadcast queue, so the others show the node `leaving`
    /// for about a gossip round before it is alive again (Consul clients poll for that
    /// state after a force-leave); the refutation waits one gossip interval likewise.
    fn schedule_refute(&mut self, intent: &LeaveIntent) {
        let current = self.foca.identity();
        let ours = intent.name == current.name && intent.bump >= current.bump;
        if ours && !self.left && self.table.status(&current.name) == Some(MemberStatus::Alive) {
            let at = Instant::now() + self.config.gossip_interval;
            self.refute_at.get_or_insert(at);
        }
    }

    /// Rejoins with a newer incarnation, unless we left meanwhile.
    fn refute(&mut self) -> Vec<Event> {
        let current = self.foca.identity().clone();
        if self.left || self.table.status(&current.name) != Some(MemberStatus::Alive) {
            return Vec::new();
        }
        debug!(
            bump = current.bump,
            "refuting a leave intent about this node"
        );
        let mut events = self.switch_identity(current.bumped()).unwrap_or_else(|e| {
            warn!(cause = %e, "could not refute a leave intent");
            Vec::new()
        });
        let tags = self.own_tags();
        events.extend(self.publish_own_tags(tags));
        events
    }

    fn user_event(&mut self, name: String, payload: Vec<u8>) -> Result<(), GossipError> {
        self.ensure_active()?;
        let event = UserEvent {
            ltime: self.clocks.event.increment(),
            name,
            payload,
            origin: self.foca.identity().name.clone(),
        };
        self.add_broadcast(&GossipMessage::User(event))
    }

    /// Applies new broadcasts (leave intents before membership changes, since foca decodes
    /// a packet's member updates before its broadcasts), then notifications; publishes.
    fn absorb(&mut self) {
        let now = Instant::now();
        let mut events = Vec::new();
        let messages: Vec<GossipMessage> = self.inbox.lock().drain(..).collect();
        let mut intents = false;
        for msg in messages {
            match msg {
                GossipMessage::User(ev) => events.push(Event::User(ev)),
                GossipMessage::Leave(intent) => {
                    // alive → leaving raises no event but changes the members view.
                    intents = true;
                    self.schedule_refute(&intent);
                    events.extend(self.table.leave_intent(&intent, now));
                }
                GossipMessage::Query(q) => self.answer_key_query(&q),
                GossipMessage::Tags(u) => {
                    events.extend(self.table.learn_tags(&u.name, u.bump, &u.tags, now));
                }
            }
        }
        let mut dirty = intents || !events.is_empty();
        let mut rejoined = false;
        for note in std::mem::take(&mut self.notes) {
            dirty = true;
            match note {
                OwnedNotification::MemberUp(id) => events.extend(self.table.member_up(&id, now)),
                OwnedNotification::MemberDown(id) => {
                    self.pinger.forget(&id.name);
                    events.extend(self.table.member_down(&id, now));
                }
                OwnedNotification::Rename(_, new) => events.extend(self.table.renamed(&new, now)),
                OwnedNotification::Rejoin(new) => {
                    warn!(bump = new.bump, "declared down by the cluster; rejoined");
                    self.table.set_local_status(MemberStatus::Alive, now);
                    events.extend(self.table.local_changed(&new, now));
                    rejoined = true;
                }
                other => debug!(notification = ?other, "foca"),
            }
        }
        if rejoined {
            let tags = self.own_tags();
            events.extend(self.publish_own_tags(tags));
        }
        if dirty {
            self.resize();
            self.publish(events);
            self.request_tags();
        }
    }

    /// foca's suspicion timeout and retransmit limit grow with the pool (log10 N).
    fn resize(&mut self) {
        let active = self.table.num_active();
        if active > self.sized_for {
            self.sized_for = active.next_power_of_two();
            if let Err(err) = self
                .foca
                .set_config(self.config.foca_config(self.sized_for))
            {
                warn!(cause = %err, "foca refused the resized config");
            }
        }
    }

    fn publish(&mut self, events: Vec<Event>) {
        self.members_tx.send_replace(self.table.view());
        for event in events {
            // Err only means nobody subscribes right now.
            let _ = self.events_tx.send(event);
        }
    }
}

// === impl Effects ===

/// foca's `Runtime`: the sync sink foca calls into during one call.
struct Effects<'a> {
    outbound_tx: &'a mpsc::Sender<(SocketAddr, Bytes)>,
    counters: &'a Counters,
    timers: &'a mut TimerQueue,
    notes: &'a mut Vec<OwnedNotification<NodeId>>,
}

impl foca::Runtime<NodeId> for Effects<'_> {
    fn notify(&mut self, notification: Notification<'_, NodeId>) {
        self.notes.push(notification.to_owned());
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        match self
            .outbound_tx
            .try_send((to.addr, direct::frame_foca(data)))
        {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.counters.count_outbound_full(),
            // The sender task is gone: the pool is shutting down.
            Err(TrySendError::Closed(_)) => {}
        }
    }

    fn submit_after(&mut self, event: Timer<NodeId>, after: Duration) {
        self.timers.push(Instant::now() + after, event);
    }
}

// === impl TimerQueue ===

/// foca timers by deadline; the sequence number keeps same-instant timers in submit order.
#[derive(Default)]
struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, u64, Timer<NodeId>)>>,
    seq: u64,
}

impl TimerQueue {
    fn push(&mut self, at: Instant, timer: Timer<NodeId>) {
        self.seq = self.seq.wrapping_add(1);
        self.heap.push(Reverse((at, self.seq, timer)));
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<Timer<NodeId>> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                self.heap.pop().map(|Reverse((_, _, timer))| timer)
            }
            _ => None,
        }
    }
}
