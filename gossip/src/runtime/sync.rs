//! The runtime's state sync: push-pull exchanges (on join and every push-pull interval,
//! see `pushpull.rs`) and member tags, which travel apart from foca's identity (see
//! `identity.rs`): answered and learned here, and asked of a member whose identity is newer
//! than the tags we hold, at most once per probe interval until they arrive.

use std::collections::HashSet;
use std::net::SocketAddr;

use foca::{Member, State};
use rand::seq::IndexedRandom;
use tokio::time::Instant;
use tracing::debug;

use super::Runtime;
use crate::direct::Direct;
use crate::identity::TagsUpdate;
use crate::pushpull::{self, PushPull, SyncEntry};

/// Names answered per tag request at most (a request normally names one member).
const MAX_NAMES_PER_REQUEST: usize = 64;

impl Runtime {
    /// A join: foca's announce, plus a push-pull that asks for every member and its tags.
    pub(super) fn join_announce(&mut self, addrs: &[SocketAddr]) {
        self.announce(addrs);
        let own = self.foca.identity().addr;
        for &addr in addrs.iter().filter(|a| **a != own) {
            self.send_push_pull(addr, true, true);
        }
    }

    /// Syncs with one random active member and schedules the next sync.
    pub(super) fn periodic_push_pull(&mut self) {
        let interval =
            pushpull::push_pull_interval(self.config.push_pull_interval, self.table.num_active());
        self.next_push_pull = Some(Instant::now() + interval);
        if self.left {
            return;
        }
        let peers: Vec<SocketAddr> = self.foca.iter_members().map(|m| m.id().addr).collect();
        if let Some(&to) = peers.choose(&mut rand::rng()) {
            self.send_push_pull(to, true, false);
        }
    }

    /// Sends our active membership to `to`: ourselves with our tags, everyone else with
    /// theirs when `want_tags`.
    fn send_push_pull(&mut self, to: SocketAddr, reply: bool, want_tags: bool) {
        let own = self.foca.identity().clone();
        let tags_of = |name: &str| self.table.tags_of(name).map(|(b, t)| (b, t.clone()));
        let mut entries = vec![SyncEntry {
            tags: tags_of(&own.name),
            member: Member::new(own, 0, State::Alive),
        }];
        entries.extend(self.foca.iter_members().map(|m| SyncEntry {
            tags: want_tags.then(|| tags_of(&m.id().name)).flatten(),
            member: m.clone(),
        }));
        let parts = pushpull::pack(reply, want_tags, entries, self.config.max_packet_size());
        for part in parts {
            self.send_direct(to, &Direct::PushPull(part));
        }
    }

    /// Merges a peer's state (tags first, so members it reveals are shown with theirs) and
    /// answers with ours when asked.
    pub(super) fn receive_push_pull(&mut self, from: SocketAddr, state: PushPull) {
        let now = Instant::now();
        let mut events = Vec::new();
        for e in &state.entries {
            if let Some((bump, tags)) = &e.tags {
                events.extend(self.table.learn_tags(&e.member.id().name, *bump, tags, now));
            }
        }
        if !events.is_empty() {
            self.publish(events);
        }
        let members = state.entries.into_iter().map(|e| e.member);
        if let Err(err) = self.with_foca(|f, fx| f.apply_many(members, true, fx)) {
            debug!(%from, cause = %err, "foca refused a push-pull state");
        }
        if state.reply {
            self.send_push_pull(from, false, state.want_tags);
        }
    }

    /// Answers a tag request with the tags we hold for the names asked.
    pub(super) fn answer_tags_request(&mut self, from: SocketAddr, names: &[String]) {
        let updates = names.iter().take(MAX_NAMES_PER_REQUEST).filter_map(|name| {
            self.table.tags_of(name).map(|(bump, tags)| TagsUpdate {
                name: name.clone(),
                bump,
                tags: tags.clone(),
            })
        });
        // One datagram per member: a member's tags fit one, several might not.
        for update in updates.collect::<Vec<_>>() {
            self.send_direct(from, &Direct::Tags(vec![update]));
        }
    }

    /// Tags from a reply.
    pub(super) fn learn_tags(&mut self, updates: &[TagsUpdate]) {
        let now = Instant::now();
        let mut events = Vec::new();
        for u in updates {
            events.extend(self.table.learn_tags(&u.name, u.bump, &u.tags, now));
        }
        self.publish(events);
        self.request_tags();
    }

    /// Asks each member whose tags we lack (or hold for an older identity) for them; a
    /// member asked less than a probe interval ago is not asked again yet.
    pub(super) fn request_tags(&mut self) {
        if self.left {
            return;
        }
        let now = Instant::now();
        let wanted = self.table.tags_wanted();
        let names: HashSet<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
        self.asked_tags
            .retain(|name, _| names.contains(name.as_str()));
        let retry = self.config.probe_interval;
        for (name, addr) in wanted {
            if self
                .asked_tags
                .get(&name)
                .is_some_and(|at| now.saturating_duration_since(*at) < retry)
            {
                continue;
            }
            self.asked_tags.insert(name.clone(), now);
            self.send_direct(addr, &Direct::TagsRequest { names: vec![name] });
        }
    }
}
