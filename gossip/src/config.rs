//! Gossip pool configuration: addresses, identity, SWIM timings (Consul's LAN / WAN / dev
//! profiles), serf-layer timeouts, encryption switches and queue sizes. Pure data: nothing
//! here binds or spawns. [`GossipConfig::foca_config`] maps it onto foca's `Config`.

use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use super::identity::Tags;
use super::keyring::SEAL_OVERHEAD;

/// serf's hard cap on a user event (name + payload), whatever the configured limit.
pub const USER_EVENT_HARD_LIMIT: usize = 9 * 1024;

/// One gossip pool's settings. Build with [`GossipConfig::lan`], [`GossipConfig::wan`] or
/// [`GossipConfig::dev`], then adjust fields.
#[derive(Debug, Clone)]
pub struct GossipConfig {
    /// Node name: unique in the pool (Consul's `node_name`).
    pub node_name: String,
    /// UDP address to bind (port 0 picks one).
    pub bind_addr: SocketAddr,
    /// Address others use to reach us; `None` = the bound address.
    pub advertise_addr: Option<SocketAddr>,
    /// Tags carried in our identity.
    pub tags: Tags,
    /// Time between probes of a random member (`probe_interval`).
    pub probe_interval: Duration,
    /// Wait for an ack before indirect probes (`probe_timeout`).
    pub probe_timeout: Duration,
    /// Suspicion timeout = mult × max(1, log10(N)) × probe_interval (`suspicion_mult`).
    pub suspicion_mult: u32,
    /// Non-piggyback gossip period (`gossip_interval`).
    pub gossip_interval: Duration,
    /// Members per gossip round (`gossip_nodes`).
    pub gossip_nodes: usize,
    /// Indirect probes when a direct probe fails (`IndirectChecks`).
    pub indirect_checks: usize,
    /// Retransmit limit = mult × ceil(log10(N+1)) (`retransmit_mult`).
    pub retransmit_mult: u32,
    /// How often each member syncs its full state with one random peer, for pools of up to
    /// 32 members (scaled up past that, see `pushpull`); zero disables it. memberlist's
    /// `PushPullInterval`.
    pub push_pull_interval: Duration,
    /// Cluster size the derived values are computed for until the pool grows past it.
    pub expected_cluster_size: u32,
    /// How long a failed member is kept (and retried) before it is reaped.
    pub reconnect_timeout: Duration,
    /// How long a left member is remembered before it is reaped.
    pub tombstone_timeout: Duration,
    /// How often failed/left members are checked for reaping (serf `ReapInterval`).
    pub reap_interval: Duration,
    /// How long a graceful leave lets its intent spread before going down
    /// (Consul's `LeavePropagateDelay`).
    pub leave_propagate_delay: Duration,
    /// How long `join` waits for an answer from each address.
    pub join_timeout: Duration,
    /// Reject plaintext packets when a keyring is installed (`encrypt_verify_incoming`).
    pub verify_incoming: bool,
    /// Seal outgoing packets when a keyring is installed (`encrypt_verify_outgoing`).
    pub verify_outgoing: bool,
    /// Where keyring changes are persisted (`serf/local.keyring`); `None` = memory only.
    pub keyring_file: Option<PathBuf>,
    /// Max user event size, name + payload (serf `UserEventSizeLimit`).
    pub user_event_size_limit: usize,
    /// User-event ltimes remembered for dedupe (serf `EventBuffer`).
    pub event_buffer: u64,
    /// The highest user-event Lamport time delivered before a restart (from the snapshot):
    /// the clock resumes past it and events at or below it are ignored, as already
    /// delivered (serf's `eventMinTime`). `None` for a fresh node.
    pub restored_event_ltime: Option<u64>,
    /// UDP payload budget before encryption (memberlist `UDPBufferSize`).
    pub udp_buffer_size: usize,
    /// Bound of the socket → foca queue (`gossip.inbound`).
    pub inbound_queue: usize,
    /// Bound of the foca → socket queue (`gossip.outbound`).
    pub outbound_queue: usize,
    /// Bound of the handle → foca command queue (`gossip.commands`).
    pub command_queue: usize,
    /// Capacity of the event broadcast channel (`gossip.events`); slow subscribers lag.
    pub event_queue: usize,
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GossipConfigError {
    /// A field has an unusable value.
    #[error("gossip config {field}: {reason}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> GossipConfigError {
    GossipConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl GossipConfig {
    /// Consul's LAN profile (`gossip_lan`): probe 1s / 500ms, suspicion ×4, gossip 200ms to 3.
    pub fn lan(node_name: impl Into<String>, bind_addr: SocketAddr) -> Self {
        Self {
            node_name: node_name.into(),
            bind_addr,
            advertise_addr: None,
            tags: Tags::default(),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            suspicion_mult: 4,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            indirect_checks: 3,
            retransmit_mult: 4,
            push_pull_interval: Duration::from_secs(30),
            expected_cluster_size: 10,
            reconnect_timeout: Duration::from_secs(72 * 3600),
            tombstone_timeout: Duration::from_secs(24 * 3600),
            reap_interval: Duration::from_secs(15),
            leave_propagate_delay: Duration::from_secs(3),
            join_timeout: Duration::from_secs(10),
            verify_incoming: true,
            verify_outgoing: true,
            keyring_file: None,
            user_event_size_limit: 512,
            event_buffer: 512,
            restored_event_ltime: None,
            udp_buffer_size: 1400,
            inbound_queue: 4096,
            outbound_queue: 4096,
            command_queue: 256,
            event_queue: 1024,
        }
    }

    /// Consul's WAN profile (`gossip_wan`): probe 5s / 3s, suspicion ×6, gossip 500ms to 4.
    pub fn wan(node_name: impl Into<String>, bind_addr: SocketAddr) -> Self {
        Self {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            suspicion_mult: 6,
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: 4,
            push_pull_interval: Duration::from_secs(60),
            join_timeout: Duration::from_secs(30),
            ..Self::lan(node_name, bind_addr)
        }
    }

    /// Consul's `-dev` timings: 100ms probe and gossip, suspicion ×3; short serf timeouts so
    /// tests and a dev agent see failures and reaps quickly.
    pub fn dev(node_name: impl Into<String>, bind_addr: SocketAddr) -> Self {
        Self {
            probe_interval: Duration::from_millis(100),
            probe_timeout: Duration::from_millis(100),
            suspicion_mult: 3,
            gossip_interval: Duration::from_millis(100),
            reap_interval: Duration::from_millis(200),
            leave_propagate_delay: Duration::from_millis(300),
            join_timeout: Duration::from_secs(5),
            ..Self::lan(node_name, bind_addr)
        }
    }

    /// Checks values that would make foca misbehave or user events undeliverable.
    pub fn validate(&self) -> Result<(), GossipConfigError> {
        if self.node_name.is_empty() {
            return Err(invalid("node_name", "must not be empty"));
        }
        if self.probe_timeout > self.probe_interval {
            return Err(invalid("probe_timeout", "must not exceed probe_interval"));
        }
        if self.suspicion_mult == 0 || self.gossip_nodes == 0 || self.indirect_checks == 0 {
            return Err(invalid(
                "suspicion_mult/gossip_nodes/indirect_checks",
                "must be at least 1",
            ));
        }
        if self.udp_buffer_size < 512 + SEAL_OVERHEAD {
            return Err(invalid("udp_buffer_size", "must be at least 541 bytes"));
        }
        if self.user_event_size_limit > USER_EVENT_HARD_LIMIT {
            return Err(invalid(
                "user_event_size_limit",
                format!("must not exceed {USER_EVENT_HARD_LIMIT} bytes"),
            ));
        }
        // An event must fit one datagram next to foca's header and our identity.
        if self.user_event_size_limit + 256 > self.max_packet_size() {
            return Err(invalid(
                "user_event_size_limit",
                format!(
                    "{} bytes does not fit a {}-byte gossip packet",
                    self.user_event_size_limit,
                    self.max_packet_size()
                ),
            ));
        }
        for (field, size) in [
            ("inbound_queue", self.inbound_queue),
            ("outbound_queue", self.outbound_queue),
            ("command_queue", self.command_queue),
            ("event_queue", self.event_queue),
        ] {
            if size == 0 {
                return Err(invalid(field, "must be at least 1"));
            }
        }
        Ok(())
    }

    /// Bytes foca may put in one packet: the UDP budget less the encryption envelope.
    pub fn max_packet_size(&self) -> usize {
        self.udp_buffer_size.saturating_sub(SEAL_OVERHEAD)
    }

    /// foca's `Config` for a pool of `cluster_size` members.
    pub fn foca_config(&self, cluster_size: usize) -> foca::Config {
        let n = u32::try_from(cluster_size)
            .unwrap_or(u32::MAX)
            .max(self.expected_cluster_size)
            .max(1);
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let mut cfg = foca::Config::new_lan(n);
        cfg.probe_period = self.probe_interval;
        cfg.probe_rtt = self.probe_timeout;
        cfg.num_indirect_probes =
            NonZeroUsize::new(self.indirect_checks).unwrap_or(NonZeroUsize::MIN);
        let log_n = f64::from(n.get()).log10().max(1.0);
        cfg.suspect_to_down_after = self
            .probe_interval
            .mul_f64(f64::from(self.suspicion_mult) * log_n);
        let tx = (f64::from(self.retransmit_mult) * f64::from(n.get() + 1).log10().ceil())
            .clamp(1.0, 255.0);
        // Clamped to 1..=255 above, so the cast is exact.
        cfg.max_transmissions = NonZeroU8::new(tx as u8).unwrap_or(NonZeroU8::MIN);
        // foca forgets down members after this; failed members must outlive it in serf's
        // view, and foca keeps announcing to them until then (partition healing).
        cfg.remove_down_after = Some(self.reconnect_timeout);
        cfg.max_packet_size =
            NonZeroUsize::new(self.max_packet_size()).unwrap_or(NonZeroUsize::MIN);
        if let Some(p) = cfg.periodic_gossip.as_mut() {
            p.frequency = self.gossip_interval;
            p.num_members = NonZeroUsize::new(self.gossip_nodes).unwrap_or(NonZeroUsize::MIN);
        }
        // Push-pull (`pushpull.rs`) replaces foca's periodic announce: a full state in
        // several datagrams rather than one packet's worth of members.
        cfg.periodic_announce = None;
        if let Some(p) = cfg.periodic_announce_to_down_members.as_mut() {
            p.frequency = p.frequency.min(self.probe_interval * 30);
        }
        cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[test]
    fn profiles_carry_consuls_timings() {
        let lan = GossipConfig::lan("a", addr());
        assert_eq!(lan.probe_interval, Duration::from_secs(1));
        assert_eq!(lan.probe_timeout, Duration::from_millis(500));
        assert_eq!((lan.suspicion_mult, lan.gossip_nodes), (4, 3));
        assert_eq!(lan.gossip_interval, Duration::from_millis(200));
        assert_eq!(lan.user_event_size_limit, 512);
        assert!(lan.verify_incoming && lan.verify_outgoing);
        let wan = GossipConfig::wan("a", addr());
        assert_eq!(wan.probe_interval, Duration::from_secs(5));
        assert_eq!(wan.probe_timeout, Duration::from_secs(3));
        assert_eq!((wan.suspicion_mult, wan.gossip_nodes), (6, 4));
        let dev = GossipConfig::dev("a", addr());
        assert_eq!(dev.probe_interval, Duration::from_millis(100));
        assert_eq!(dev.suspicion_mult, 3);
        for c in [lan, wan, dev] {
            c.validate().expect("profile is valid");
        }
    }

    #[test]
    fn foca_config_follows_the_profile() {
        let lan = GossipConfig::lan("a", addr()).foca_config(10);
        assert_eq!(lan.suspect_to_down_after, Duration::from_secs(4));
        assert_eq!(lan.max_packet_size.get(), 1400 - 29);
        assert_eq!(lan.max_transmissions.get(), 8);
        assert!(lan.periodic_announce.is_none(), "push-pull replaces it");
        let big = GossipConfig::lan("a", addr()).foca_config(1000);
        assert_eq!(big.suspect_to_down_after, Duration::from_secs(12));
    }

    #[test]
    fn validate_names_the_field() {
        let mut c = GossipConfig::lan("a", addr());
        c.user_event_size_limit = 10_000;
        let e = c.validate().expect_err("too big");
        assert!(e.to_string().contains("user_event_size_limit"), "{e}");
        let mut c = GossipConfig::lan("", addr());
        c.node_name.clear();
        assert!(c.validate().is_err());
    }
}
