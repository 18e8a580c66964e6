//! Starting a gossip pool and talking to it: [`BoundGossip`] binds the socket (so the address
//! is known before anything runs), [`BoundGossip::spawn`] starts the transport and foca tasks
//! and returns a [`GossipHandle`], a cheap-clone front to the running pool. The handle holds
//! no protocol state: it sends commands and reads published snapshots.

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info_span};

use super::GossipError;
use super::config::{GossipConfig, GossipConfigError};
use super::coordinate::Coordinate;
use super::identity::{NodeId, Tags};
use super::keyring::{GossipKey, Keyring};
use super::members::{Event, Member, MemberStatus, MembersView};
use super::query::{KeyOp, KeyStore, KeyringSummary, SharedKeyring, query_timeout};
use super::rtt::SharedCoordinates;
use super::runtime::{Command, Runtime, Wiring};
use super::transport::{Counters, GossipStats, Transport};

/// A pool whose socket is bound but whose tasks are not running yet.
#[derive(Debug)]
pub struct BoundGossip {
    config: GossipConfig,
    transport: Transport,
    advertise: SocketAddr,
    keyring: SharedKeyring,
    counters: Arc<Counters>,
}

impl BoundGossip {
    /// Validates the config and binds the UDP socket. An empty keyring means plaintext
    /// gossip (Consul without `encrypt`).
    pub async fn bind(config: GossipConfig, keyring: Keyring) -> Result<Self, GossipError> {
        config.validate()?;
        let keyring: SharedKeyring = Arc::new(RwLock::new(keyring));
        let counters = Arc::new(Counters::default());
        let bind_err = |source| GossipError::Bind {
            addr: config.bind_addr,
            source,
        };
        let transport = Transport::bind(
            config.bind_addr,
            Arc::clone(&keyring),
            Arc::clone(&counters),
            config.verify_incoming,
            config.verify_outgoing,
        )
        .await
        .map_err(bind_err)?;
        let local = transport.local_addr().map_err(bind_err)?;
        let advertise = config.advertise_addr.unwrap_or(local);
        if advertise.ip().is_unspecified() {
            return Err(GossipConfigError::Invalid {
                field: "advertise_addr",
                reason: format!("required when binding {}", config.bind_addr.ip()),
            }
            .into());
        }
        Ok(Self {
            config,
            transport,
            advertise,
            keyring,
            counters,
        })
    }

    /// The address other members use for us (the bound port when bound to port 0).
    pub fn advertise_addr(&self) -> SocketAddr {
        self.advertise
    }

    /// Starts the transport and foca tasks. They stop on `token`, on
    /// [`GossipHandle::shutdown`], or when the last handle is dropped.
    pub fn spawn(self, token: CancellationToken) -> GossipHandle {
        // A child, so dropping the last handle (which cancels) never cancels the caller's.
        let token = token.child_token();
        let cfg = &self.config;
        let tracker = TaskTracker::new();
        let (inbound_tx, inbound_rx) = mpsc::channel(cfg.inbound_queue); // gossip.inbound
        let (outbound_tx, outbound_rx) = mpsc::channel(cfg.outbound_queue); // gossip.outbound
        let (commands_tx, commands_rx) = mpsc::channel(cfg.command_queue); // gossip.commands
        let (events_tx, _) = broadcast::channel(cfg.event_queue); // gossip.events
        let (members_tx, members_rx) = watch::channel(MembersView::default());
        let identity = NodeId::new(cfg.node_name.clone(), self.advertise);

        self.transport
            .spawn(&tracker, token.clone(), inbound_tx, outbound_rx);
        let keys = Arc::new(KeyStore::new(
            self.keyring,
            self.config.keyring_file.clone(),
        ));
        let coordinates = SharedCoordinates::default();
        let wiring = Wiring {
            outbound_tx,
            counters: Arc::clone(&self.counters),
            events_tx: events_tx.clone(),
            members_tx,
            keys: Arc::clone(&keys),
            coordinates: Arc::clone(&coordinates),
        };
        let runtime = Runtime::new(identity, &self.config.tags, self.config.clone(), wiring);
        let span = info_span!("gossip", node = %self.config.node_name);
        tracker.spawn(
            runtime
                .run(token.clone(), commands_rx, inbound_rx)
                .instrument(span),
        );
        tracker.close();
        GossipHandle(Arc::new(Inner {
            config: self.config,
            advertise: self.advertise,
            commands_tx,
            events_tx,
            members_rx,
            counters: self.counters,
            keys,
            coordinates,
            tracker,
            token,
        }))
    }
}

/// A running gossip pool. Clones share it; dropping the last clone stops it without a leave.
#[derive(Debug, Clone)]
pub struct GossipHandle(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: GossipConfig,
    advertise: SocketAddr,
    commands_tx: mpsc::Sender<Command>,
    events_tx: broadcast::Sender<Event>,
    members_rx: watch::Receiver<MembersView>,
    counters: Arc<Counters>,
    keys: Arc<KeyStore>,
    coordinates: SharedCoordinates,
    tracker: TaskTracker,
    token: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl GossipHandle {
    /// Our node name.
    pub fn name(&self) -> &str {
        &self.0.config.node_name
    }

    /// The address other members use for us.
    pub fn advertise_addr(&self) -> SocketAddr {
        self.0.advertise
    }

    /// Every known member (including us) with serf's status and tags, sorted by name.
    pub fn members(&self) -> Vec<Member> {
        self.0.members_rx.borrow().members.clone()
    }

    /// A receiver of member snapshots, for readers that wait on changes.
    pub fn members_watch(&self) -> watch::Receiver<MembersView> {
        self.0.members_rx.clone()
    }

    /// serf's events from now on. A subscriber that falls `event_queue` behind gets
    /// `RecvError::Lagged` and misses events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.events_tx.subscribe()
    }

    /// Counter snapshot.
    pub fn stats(&self) -> GossipStats {
        self.0.counters.snapshot()
    }

    /// Announces us to `addrs` and waits (up to `join_timeout`, re-announcing every probe
    /// interval) until each shows up alive. Returns how many did; an error if none did.
    pub async fn join(&self, addrs: &[SocketAddr]) -> Result<usize, GossipError> {
        let mut targets: Vec<SocketAddr> = addrs
            .iter()
            .copied()
            .filter(|a| *a != self.0.advertise)
            .collect();
        targets.sort_unstable();
        targets.dedup();
        if targets.is_empty() {
            return Err(GossipError::JoinFailed { attempted: 0 });
        }
        let mut rx = self.members_watch();
        let deadline = Instant::now() + self.0.config.join_timeout;
        let retry = self
            .0
            .config
            .probe_interval
            .max(self.0.config.gossip_interval);
        let mut next_announce = Instant::now();
        loop {
            let pending: Vec<SocketAddr> = {
                let view = rx.borrow_and_update();
                let alive = |a: &SocketAddr| {
                    view.members
                        .iter()
                        .any(|m| m.addr == *a && m.status == MemberStatus::Alive)
                };
                targets.iter().copied().filter(|a| !alive(a)).collect()
            };
            let now = Instant::now();
            if pending.is_empty() || now >= deadline {
                let joined = targets.len() - pending.len();
                if joined == 0 {
                    return Err(GossipError::JoinFailed {
                        attempted: targets.len(),
                    });
                }
                return Ok(joined);
            }
            if now >= next_announce {
                self.send(Command::Announce(pending)).await?;
                next_announce = now + retry;
            }
            let wake = deadline.min(next_announce);
            if let Ok(Err(_)) = tokio::time::timeout_at(wake, rx.changed()).await {
                return Err(GossipError::Shutdown);
            }
        }
    }

    /// Graceful leave: gossips the intent, waits `leave_propagate_delay` so it spreads, then
    /// declares us down. Others see us `left`, not `failed`. Call [`Self::shutdown`] after.
    pub async fn leave(&self) -> Result<(), GossipError> {
        self.request(Command::LeaveIntent).await?;
        tokio::time::sleep(self.0.config.leave_propagate_delay).await;
        self.request(Command::Leave).await
    }

    /// Moves a failed member to `left` cluster-wide (Consul's `force-leave`).
    pub async fn force_leave(&self, name: &str) -> Result<(), GossipError> {
        self.force_leave_with(name, false).await
    }

    /// Moves a failed or left member to `left` and removes it from every member's list
    /// (`member-reap`; Consul's `force-leave -prune`).
    pub async fn force_leave_prune(&self, name: &str) -> Result<(), GossipError> {
        self.force_leave_with(name, true).await
    }

    async fn force_leave_with(&self, name: &str, prune: bool) -> Result<(), GossipError> {
        let name = name.to_owned();
        self.request(|reply| Command::ForceLeave { name, prune, reply })
            .await
    }

    /// Replaces our tags; others see `member-update`.
    pub async fn update_tags(&self, tags: Tags) -> Result<(), GossipError> {
        self.request(|reply| Command::UpdateTags { tags, reply })
            .await
    }

    /// Fires a user event to every member (including us), each delivering it once.
    /// `name` + `payload` must fit `user_event_size_limit` (512 bytes by default).
    pub async fn fire_user_event(&self, name: &str, payload: &[u8]) -> Result<(), GossipError> {
        let size = name.len() + payload.len();
        let limit = self.0.config.user_event_size_limit;
        if name.is_empty() {
            return Err(GossipError::EmptyEventName);
        }
        if size > limit {
            return Err(GossipError::UserEventTooLarge { size, limit });
        }
        let (name, payload) = (name.to_owned(), payload.to_vec());
        self.request(|reply| Command::UserEvent {
            name,
            payload,
            reply,
        })
        .await
    }

    /// The installed keys, primary first.
    pub fn list_keys(&self) -> Vec<GossipKey> {
        self.0.keys.keys()
    }

    /// Installs a key here only (it opens packets at once; [`Self::use_key`] makes it seal).
    /// [`Self::key_query`] does it pool-wide.
    pub fn install_key(&self, key: GossipKey) -> Result<(), GossipError> {
        self.0.keys.change(|ring| ring.install(key))
    }

    /// Makes an installed key the primary, here only.
    pub fn use_key(&self, key: &GossipKey) -> Result<(), GossipError> {
        self.0.keys.change(|ring| ring.use_key(key))
    }

    /// Removes a non-primary key, here only.
    pub fn remove_key(&self, key: &GossipKey) -> Result<(), GossipError> {
        self.0.keys.change(|ring| ring.remove(key))
    }

    /// Runs a keyring operation on every alive member (serf's key queries) and sums the
    /// answers. Waits until every member alive at the start answered, or serf's query
    /// timeout. Refused when gossip is not encrypted (the key would travel in clear) and,
    /// before any member is asked, when removing our primary key.
    pub async fn key_query(&self, op: KeyOp) -> Result<KeyringSummary, GossipError> {
        if self.0.keys.is_empty() {
            return Err(GossipError::EncryptionDisabled);
        }
        if let KeyOp::Remove(k) = &op {
            let key = GossipKey::from_bytes(k)?;
            if self.0.keys.keys().first() == Some(&key) {
                return Err(super::KeyError::RemovePrimary.into());
            }
        }
        let expected = self
            .members()
            .iter()
            .filter(|m| m.status == MemberStatus::Alive)
            .count()
            .max(1);
        let deadline = Instant::now() + query_timeout(self.0.config.gossip_interval, expected);
        let (replies_tx, mut replies_rx) = mpsc::channel(expected + 16);
        let id = rand::random::<u64>();
        self.request(|reply| Command::KeyQuery {
            id,
            op,
            replies: replies_tx,
            reply,
        })
        .await?;
        let mut seen = std::collections::HashSet::new();
        let mut summary = KeyringSummary {
            num_nodes: expected,
            ..Default::default()
        };
        while summary.num_resp < expected {
            match tokio::time::timeout_at(deadline, replies_rx.recv()).await {
                Ok(Some(reply)) => {
                    if seen.insert(reply.node.clone()) {
                        summary.add(reply);
                    }
                }
                Ok(None) => return Err(GossipError::Shutdown),
                Err(_) => break,
            }
        }
        Ok(summary)
    }

    /// Our network coordinate.
    pub fn coordinate(&self) -> Option<Coordinate> {
        self.0.coordinates.read().local.clone()
    }

    /// The last coordinate heard from a member.
    pub fn coordinate_of(&self, name: &str) -> Option<Coordinate> {
        if name == self.name() {
            return self.coordinate();
        }
        self.0.coordinates.read().peers.get(name).cloned()
    }

    /// Stops the pool without leaving (others will see us `failed`) and waits for its tasks.
    pub async fn shutdown(&self) {
        self.0.token.cancel();
        self.0.tracker.wait().await;
    }

    async fn send(&self, cmd: Command) -> Result<(), GossipError> {
        self.0
            .commands_tx
            .send(cmd)
            .await
            .map_err(|_| GossipError::Shutdown)
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, GossipError>>) -> Command,
    ) -> Result<T, GossipError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.send(make(reply_tx)).await?;
        reply_rx.await.map_err(|_| GossipError::Shutdown)?
    }
}
