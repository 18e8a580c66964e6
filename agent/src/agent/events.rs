//! Consul user events on top of gossip user events: the envelope (ID and filters travel in
//! the gossip payload, as Consul's `UserEvent` does inside serf's), the filters each agent
//! applies on receipt (Consul's `shouldProcessUserEvent`), and the agent's buffer of the last
//! 256 accepted events that `/v1/event/list` reads. The same reader feeds the event handler
//! scripts ([`super::handlers`]), so they see exactly the user events the list shows, in the
//! order gossip delivered them, interleaved with member events.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::handlers::{HandlerQueue, Job};
use crate::gossip::{Event, GossipHandle};
use crate::rpc::Consistency;
use crate::server::ServerHandle;

/// Events `/v1/event/list` remembers (Consul's `eventBuf`).
pub const EVENT_BUFFER: usize = 256;

pub use super::user_event::{ConsulEvent, EnvelopeError};

/// The last [`EVENT_BUFFER`] received events, oldest first, and a counter of pushes that
/// blocking readers wait on.
#[derive(Debug)]
pub struct EventLog {
    events: Mutex<VecDeque<ConsulEvent>>,
    pushed: watch::Sender<u64>,
}

impl Default for EventLog {
    fn default() -> Self {
        Self {
            events: Mutex::default(),
            pushed: watch::channel(0).0,
        }
    }
}

impl EventLog {
    /// Records a received event, dropping the oldest past the limit.
    pub fn push(&self, ev: ConsulEvent) {
        {
            let mut events = self.events.lock();
            if events.len() == EVENT_BUFFER {
                events.pop_front();
            }
            events.push_back(ev);
        }
        self.pushed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes on every push (subscribe before reading, then wait).
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.pushed.subscribe()
    }

    /// Events named `name` (all when `None`), oldest first.
    pub fn list(&self, name: Option<&str>) -> Vec<ConsulEvent> {
        self.events
            .lock()
            .iter()
            .filter(|e| name.is_none_or(|n| e.name == n))
            .cloned()
            .collect()
    }
}

/// Who this agent is, for the event filters.
pub(super) struct Scope {
    /// This node's name (the node filter).
    pub node: String,
    /// Where this node's services are read (the service and tag filters); client agents
    /// have no local catalog yet, so service-filtered events match nothing there.
    pub server: Option<ServerHandle>,
}

impl Scope {
    /// Consul's `shouldProcessUserEvent`: the node filter must match our name; the service
    /// filter must match one of our service IDs or names, and then the tag filter (if any)
    /// one of that service's tags. An invalid regex matches nothing.
    async fn accepts(&self, ev: &ConsulEvent) -> bool {
        let re = |s: &str| regex::Regex::new(s).ok();
        if !ev.node_filter.is_empty()
            && !re(&ev.node_filter).is_some_and(|r| r.is_match(&self.node))
        {
            return false;
        }
        if ev.service_filter.is_empty() {
            return true;
        }
        let Some(service_re) = re(&ev.service_filter) else {
            return false;
        };
        let tag_re = match ev.tag_filter.as_str() {
            "" => None,
            t => match re(t) {
                Some(r) => Some(r),
                None => return false,
            },
        };
        let Some(server) = &self.server else {
            return false;
        };
        let Ok(view) = server.read(Consistency::Stale).await else {
            return false;
        };
        view.state
            .node_services(&self.node)
            .filter(|s| s.id != "consul")
            .filter(|s| service_re.is_match(&s.id) || service_re.is_match(&s.service))
            .any(|s| {
                tag_re
                    .as_ref()
                    .is_none_or(|t| s.tags.iter().any(|tag| t.is_match(tag)))
            })
    }
}

/// serf's flap window: a member back within this long of failing flapped.
const FLAP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// serf's member counters (`consul.serf.member.join|left|failed|flap`) from the pool's
/// member events.
#[derive(Debug, Default)]
struct MemberMetrics {
    /// When each member last failed, for flaps.
    failed_at: std::collections::HashMap<String, std::time::Instant>,
}

impl MemberMetrics {
    fn count(&mut self, ev: &Event, now: std::time::Instant) {
        use crate::telemetry::incr;
        match ev {
            Event::MemberJoin(m) => {
                incr("consul.serf.member.join", &[]);
                if self
                    .failed_at
                    .remove(&m.name)
                    .is_some_and(|t| now.saturating_duration_since(t) < FLAP_TIMEOUT)
                {
                    incr("consul.serf.member.flap", &[]);
                }
            }
            Event::MemberLeave(m) => {
                incr("consul.serf.member.left", &[]);
                self.failed_at.remove(&m.name);
            }
            Event::MemberFailed(m) => {
                incr("consul.serf.member.failed", &[]);
                self.failed_at.insert(m.name.clone(), now);
            }
            Event::MemberReap(m) => {
                self.failed_at.remove(&m.name);
            }
            Event::MemberUpdate(_) | Event::User(_) => {}
        }
    }
}

/// Copies every received user event that passes its filters into `log`, and hands those and
/// every member event to the event handlers (if any), until `token` is cancelled or the pool
/// stops.
pub(super) async fn record(
    gossip: GossipHandle,
    scope: Scope,
    log: Arc<EventLog>,
    handlers: Option<HandlerQueue>,
    token: CancellationToken,
) {
    let mut rx = gossip.subscribe();
    drop(gossip);
    let mut members = MemberMetrics::default();
    loop {
        let ev = tokio::select! {
            _ = token.cancelled() => return,
            ev = rx.recv() => ev,
        };
        match ev {
            Ok(Event::User(u)) => match ConsulEvent::decode(&u) {
                Ok(ev) if scope.accepts(&ev).await => {
                    debug!(name = %ev.name, id = %ev.id, ltime = ev.ltime, "user event");
                    if let Some(h) = &handlers {
                        h.push(Job::user(&ev));
                    }
                    log.push(ev);
                }
                Ok(ev) => debug!(name = %ev.name, id = %ev.id, "user event filtered out"),
                Err(e) => warn!(name = %u.name, cause = %e, "dropping undecodable user event"),
            },
            Ok(member_event) => {
                members.count(&member_event, std::time::Instant::now());
                if let Some(h) = &handlers
                    && let Some(job) = Job::member(&member_event)
                {
                    h.push(job);
                }
            }
            Err(RecvError::Lagged(n)) => warn!(missed = n, "user event reader lagged"),
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::UserEvent;

    #[test]
    fn envelope_round_trips_and_index_is_consuls() {
        let mut ev = ConsulEvent::new("deploy".into(), Some(b"v2".to_vec()));
        ev.node_filter = "web.*".into();
        let bytes = ev.encode().expect("encode");
        let u = UserEvent {
            ltime: 7,
            name: "deploy".into(),
            payload: bytes,
            origin: "n1".into(),
        };
        let back = ConsulEvent::decode(&u).expect("decode");
        assert_eq!(back, ConsulEvent { ltime: 7, ..ev });
        let fixed = ConsulEvent {
            id: "00000000-0000-0001-0000-000000000003".into(),
            ..back
        };
        assert_eq!(fixed.index(), 1 ^ 3);
    }

    #[test]
    fn log_keeps_the_newest_256() {
        let log = EventLog::default();
        for i in 0..300 {
            log.push(ConsulEvent::new(format!("e{}", i % 2), None));
        }
        assert_eq!(log.list(None).len(), EVENT_BUFFER);
        assert_eq!(log.list(Some("e1")).len(), EVENT_BUFFER / 2);
    }
}
