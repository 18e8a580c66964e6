//! The failure matrix's vocabulary and its expectations: the operations, the faults, the
//! outcomes, and — the point of this file — what each cell must do and why. The scenario
//! measures every cell and asserts the measurement equals [`expected`]; the document is
//! rendered from the measurements, never from this table alone.
//!
//! Pure data: no I/O.

use std::time::Duration;

/// `CROSS_DC_TIMEOUT` in agent/src/cluster/federation.rs: a cross-DC HTTP request's bound.
pub(super) const CROSS_DC_TIMEOUT: Duration = Duration::from_secs(7);
/// `CROSS_DC_DNS_TIMEOUT` in agent/src/dns/source.rs: a cross-DC DNS question's bound.
pub(super) const CROSS_DC_DNS_TIMEOUT: Duration = Duration::from_secs(3);
/// The most `rpc_hold_timeout` can be (agent/src/agent/server_role.rs clamps two maximal election
/// timeouts to 1–7 s): how long a local request waits for a leader.
pub(super) const RPC_HOLD_MAX: Duration = Duration::from_secs(7);
/// Added to every bound for the request's own way (helper start, local hops, dig).
pub(super) const SLACK: Duration = Duration::from_secs(1);
/// A key written in dc1 must be in dc2 within this for replication to "work" (issue #16's
/// acceptance: 2 s at 50 ms WAN delay).
pub(super) const REPLICATION_WITHIN: Duration = Duration::from_secs(2);

/// How soon a replicated key must be in dc2 under `fault` for replication to work: 2 s,
/// except on the degraded link, where nothing promises 2 s and one replication round is a
/// relayed cross-DC request bounded by `CROSS_DC_TIMEOUT` (measured: 0.4–0.6 s, with
/// stalls of 3–3.5 s between rounds when packets are lost).
pub(super) fn replication_within(fault: Fault) -> Duration {
    match fault {
        Fault::WanDegraded => CROSS_DC_TIMEOUT,
        _ => REPLICATION_WITHIN,
    }
}

/// An operation, always asked from dc1's client (`dc1-c1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Op {
    LocalRead,
    LocalStaleRead,
    LocalWrite,
    RemoteRead,
    RemoteStaleRead,
    RemoteWrite,
    DnsLocal,
    DnsRemote,
    DnsAny,
    AllDcs,
    Replication,
}

impl Op {
    /// Every operation, in the document's order.
    pub(super) const ALL: [Op; 11] = [
        Op::LocalRead,
        Op::LocalStaleRead,
        Op::LocalWrite,
        Op::RemoteRead,
        Op::RemoteStaleRead,
        Op::RemoteWrite,
        Op::DnsLocal,
        Op::DnsRemote,
        Op::DnsAny,
        Op::AllDcs,
        Op::Replication,
    ];

    /// Short name (check names, JSON).
    pub(super) fn key(self) -> &'static str {
        match self {
            Op::LocalRead => "local_read",
            Op::LocalStaleRead => "local_stale_read",
            Op::LocalWrite => "local_write",
            Op::RemoteRead => "remote_read",
            Op::RemoteStaleRead => "remote_stale_read",
            Op::RemoteWrite => "remote_write",
            Op::DnsLocal => "dns_local",
            Op::DnsRemote => "dns_remote",
            Op::DnsAny => "dns_any",
            Op::AllDcs => "all_dcs",
            Op::Replication => "kv_replication",
        }
    }

    /// What is asked, for the document.
    pub(super) fn what(self) -> &'static str {
        match self {
            Op::LocalRead => "`GET /v1/kv/<key>` (default consistency: the leader confirms)",
            Op::LocalStaleRead => "`GET /v1/kv/<key>?stale` (any server answers)",
            Op::LocalWrite => "`PUT /v1/kv/<key>`",
            Op::RemoteRead => "`GET /v1/kv/<key>?dc=dc2` (dc2's leader answers)",
            Op::RemoteStaleRead => "`GET /v1/catalog/service/web?dc=dc2&stale`",
            Op::RemoteWrite => "`PUT /v1/kv/<key>?dc=dc2`",
            Op::DnsLocal => "`dig api.service.consul` (dc1's instance)",
            Op::DnsRemote => "`dig web.service.dc2.consul`",
            Op::DnsAny => "`dig web.service.any.consul` (dc2's or dc3's instance)",
            Op::AllDcs => "`GET /v1/catalog/services?dc=*` (all three DCs)",
            Op::Replication => "`PUT /v1/kv/config/...` in dc1, polled in dc2 (`replication`)",
        }
    }

    /// How long a failure of this operation may take.
    pub(super) fn bound(self) -> Duration {
        match self {
            Op::LocalRead | Op::LocalStaleRead | Op::LocalWrite | Op::Replication => RPC_HOLD_MAX,
            Op::RemoteRead | Op::RemoteStaleRead | Op::RemoteWrite | Op::AllDcs => CROSS_DC_TIMEOUT,
            // dc1-c1 asks its server, which asks the other DCs under the DNS bound.
            Op::DnsLocal | Op::DnsRemote | Op::DnsAny => CROSS_DC_DNS_TIMEOUT,
        }
    }
}

/// A fault, injected while every operation is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Fault {
    None,
    LocalLeaderLost,
    LocalQuorumLost,
    OneGatewayLost,
    AllGatewaysLost,
    RemoteDcLost,
    WanCut,
    WanDegraded,
}

impl Fault {
    /// Every fault, in the document's order.
    pub(super) const ALL: [Fault; 8] = [
        Fault::None,
        Fault::LocalLeaderLost,
        Fault::LocalQuorumLost,
        Fault::OneGatewayLost,
        Fault::AllGatewaysLost,
        Fault::RemoteDcLost,
        Fault::WanCut,
        Fault::WanDegraded,
    ];

    /// Short name (check names, JSON).
    pub(super) fn key(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::LocalLeaderLost => "local_leader_lost",
            Fault::LocalQuorumLost => "local_quorum_lost",
            Fault::OneGatewayLost => "one_gateway_lost",
            Fault::AllGatewaysLost => "all_gateways_lost",
            Fault::RemoteDcLost => "remote_dc_lost",
            Fault::WanCut => "wan_cut",
            Fault::WanDegraded => "wan_300ms_5pct_loss",
        }
    }

    /// Column heading.
    pub(super) fn title(self) -> &'static str {
        match self {
            Fault::None => "no fault",
            Fault::LocalLeaderLost => "local leader lost",
            Fault::LocalQuorumLost => "local quorum lost",
            Fault::OneGatewayLost => "one gateway lost",
            Fault::AllGatewaysLost => "all gateways lost",
            Fault::RemoteDcLost => "remote DC lost",
            Fault::WanCut => "WAN cut",
            Fault::WanDegraded => "WAN 300 ms, 5% loss",
        }
    }

    /// What is done, for the document.
    pub(super) fn what(self) -> &'static str {
        match self {
            Fault::None => "nothing (the baseline)",
            Fault::LocalLeaderLost => {
                "dc1's leader SIGKILLed; measured from the kill on (the election runs meanwhile)"
            }
            Fault::LocalQuorumLost => {
                "2 of dc1's 3 servers SIGKILLed (the leader first); measured once the survivor knows no leader"
            }
            Fault::OneGatewayLost => "dc1-g1 SIGKILLed (dc1-g2 stays)",
            Fault::AllGatewaysLost => "both of dc1's gateways SIGKILLed: dc1 has no way out",
            Fault::RemoteDcLost => "all 3 of dc2's servers SIGKILLed (its gateway stays)",
            Fault::WanCut => "the dc1–dc2 WAN link blackholed in the emulator (dc3 reachable)",
            Fault::WanDegraded => {
                "the dc1–dc2 WAN link at 300 ms one way (600 ms round trip) and 5% loss each way"
            }
        }
    }
}

/// What a cell does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Outcome {
    /// The right answer, current.
    Works,
    /// The right answer, marked not current (`X-Consul-KnownLeader: false`, or from the
    /// gateways' copy: `X-Meridian-Copy`); for replication: acknowledged, copied only
    /// after the repair.
    Stale,
    /// `?dc=*` only: an answer in time without some DCs, named in
    /// `X-Meridian-Datacenters-Missing`.
    Partial,
    /// An error (HTTP status, SERVFAIL/NXDOMAIN) within the operation's bound.
    FailsFast,
    /// An error after the bound, or no answer: never expected.
    Hangs,
    /// An answer that is wrong (another DC's data, a lost key): never expected.
    Wrong,
}

impl Outcome {
    /// How it is written in the document.
    pub(super) fn word(self) -> &'static str {
        match self {
            Outcome::Works => "works",
            Outcome::Stale => "stale",
            Outcome::Partial => "partial",
            Outcome::FailsFast => "fails fast",
            Outcome::Hangs => "HANGS",
            Outcome::Wrong => "WRONG",
        }
    }
}

/// The expected outcome of `op` under `fault`, and why that is the right behaviour.
pub(super) fn expected(op: Op, fault: Fault) -> (Outcome, &'static str) {
    use Fault as F;
    use Op as O;
    use Outcome::{FailsFast, Partial, Stale, Works};
    match (fault, op) {
        (F::None, _) => (Works, "the baseline"),
        (F::OneGatewayLost, _) => (
            Works,
            "a relay tries dc1's next gateway; nothing local needs a gateway",
        ),
        (F::LocalLeaderLost, O::LocalRead | O::LocalWrite | O::Replication) => (
            Works,
            "a request needing dc1's leader waits for the new one (rpc_hold_timeout, as Consul); the election takes 1–2 s",
        ),
        (F::LocalLeaderLost, _) => (
            Works,
            "needs no dc1 leader: stale reads and DNS answer from a server's state, cross-DC requests are relayed by any server",
        ),
        (F::LocalQuorumLost, O::LocalRead | O::LocalWrite) => (
            FailsFast,
            "no leader can be elected: `No cluster leader` after the hold, as Consul",
        ),
        (F::LocalQuorumLost, O::Replication) => (
            FailsFast,
            "the write in dc1 is refused: there is nothing to copy",
        ),
        (F::LocalQuorumLost, O::LocalStaleRead) => (
            Stale,
            "the surviving server answers from its state, `X-Consul-KnownLeader: false`",
        ),
        (F::LocalQuorumLost, O::AllDcs) => (
            Partial,
            "dc1's own part needs its leader; dc2 and dc3 answer, dc1 is named missing",
        ),
        (F::LocalQuorumLost, _) => (
            Works,
            "cross-DC requests and DNS go from the surviving server through the gateways; no local leader needed",
        ),
        (F::AllGatewaysLost, O::LocalRead | O::LocalStaleRead | O::LocalWrite | O::DnsLocal) => {
            (Works, "local requests never touch a gateway")
        }
        (F::AllGatewaysLost, O::AllDcs) => (Partial, "dc1 answers; dc2 and dc3 are named missing"),
        (F::AllGatewaysLost, O::Replication) => (
            Stale,
            "dc1 acknowledges; dc2 keeps its copy and catches up when dc1's gateways return",
        ),
        (F::AllGatewaysLost, _) => (
            FailsFast,
            "no way out of dc1 and the copies live on dc1's gateways: an error within the bound",
        ),
        (
            F::RemoteDcLost | F::WanCut,
            O::LocalRead | O::LocalStaleRead | O::LocalWrite | O::DnsLocal,
        ) => (Works, "dc1 itself is whole"),
        (F::RemoteDcLost | F::WanCut, O::RemoteRead | O::RemoteWrite) => (
            FailsFast,
            "only dc2's leader can answer a consistent read or take a write: an error within 7 s (at once once the breaker opened)",
        ),
        (F::RemoteDcLost | F::WanCut, O::RemoteStaleRead | O::DnsRemote) => (
            Stale,
            "dc1's gateways answer from their copy of dc2's catalog (`X-Meridian-Copy`)",
        ),
        (F::RemoteDcLost | F::WanCut, O::DnsAny) => (
            Works,
            "dc2 cannot answer, so dc3, the next nearest, does (issue #16: `any` fails over; an instance in dc2's copy cannot be reached)",
        ),
        (F::RemoteDcLost | F::WanCut, O::AllDcs) => {
            (Partial, "dc1 and dc3 answer; dc2 is named missing")
        }
        (F::RemoteDcLost | F::WanCut, O::Replication) => (
            Stale,
            "dc1 acknowledges; dc2 catches up when it is back (the follower resumes from its index)",
        ),
        (F::WanDegraded, O::Replication) => (
            Works,
            "copied within one relayed round's bound (7 s; the 2 s of the acceptance is for 50 ms): a lost packet stalls a round, it does not lose a key",
        ),
        (F::WanDegraded, _) => (
            Works,
            "slower, but every bound holds: 600 ms round trips and TCP retransmits fit in 3 s and 7 s",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_has_an_expectation_that_is_not_a_failure_mode() {
        for f in Fault::ALL {
            for o in Op::ALL {
                let (e, why) = expected(o, f);
                assert!(!matches!(e, Outcome::Hangs | Outcome::Wrong), "{f:?} {o:?}");
                assert!(!why.is_empty());
                // Partial is what only ?dc=* can do.
                assert!(e != Outcome::Partial || o == Op::AllDcs, "{f:?} {o:?}");
            }
        }
    }

    #[test]
    fn the_deadlines_are_the_agents() {
        let fed = include_str!("../../../../agent/src/cluster/federation.rs");
        assert!(fed.contains("pub const CROSS_DC_TIMEOUT: Duration = Duration::from_secs(7);"));
        let dns = include_str!("../../../../agent/src/dns/source.rs");
        assert!(dns.contains(
            "CROSS_DC_DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);"
        ));
        let agent = include_str!("../../../../agent/src/agent/server_role.rs");
        assert!(agent.contains(".clamp(Duration::from_secs(1), Duration::from_secs(7))"));
        assert_eq!(CROSS_DC_TIMEOUT.as_secs(), 7);
        assert_eq!(CROSS_DC_DNS_TIMEOUT.as_secs(), 3);
        assert_eq!(RPC_HOLD_MAX.as_secs(), 7);
    }
}
