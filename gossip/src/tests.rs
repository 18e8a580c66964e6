//! In-process gossip cluster tests: real UDP sockets on 127.0.0.1:0, `dev()` timings, waits
//! on conditions with deadlines (never a fixed sleep).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::*;

const DEADLINE: Duration = Duration::from_secs(15);

fn key(byte: u8) -> GossipKey {
    GossipKey::from_bytes(&[byte; 32]).expect("32-byte key")
}

fn ring(byte: u8) -> Keyring {
    Keyring::new(key(byte)).expect("keyring")
}

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn start_with(
    name: &str,
    keyring: Keyring,
    tweak: impl FnOnce(&mut GossipConfig),
) -> GossipHandle {
    let mut cfg = GossipConfig::dev(name, localhost());
    tweak(&mut cfg);
    BoundGossip::bind(cfg, keyring)
        .await
        .expect("bind")
        .spawn(CancellationToken::new())
}

async fn start(name: &str, keyring: Keyring) -> GossipHandle {
    start_with(name, keyring, |_| {}).await
}

/// `n` nodes sharing `key_byte`, all joined through node 0, converged.
async fn cluster(n: usize, key_byte: u8) -> Vec<GossipHandle> {
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(start(&format!("n{i}"), ring(key_byte)).await);
    }
    let seed = nodes[0].advertise_addr();
    for node in &nodes[1..] {
        assert_eq!(node.join(&[seed]).await.expect("join"), 1);
    }
    wait_until(&format!("{n} nodes see {n} alive"), || {
        nodes.iter().all(|h| alive(h) == n)
    })
    .await;
    nodes
}

fn alive(h: &GossipHandle) -> usize {
    h.members()
        .iter()
        .filter(|m| m.status == MemberStatus::Alive)
        .count()
}

fn status_of(h: &GossipHandle, name: &str) -> Option<MemberStatus> {
    h.members()
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.status)
}

/// Polls `cond` until it holds; panics with `what` after [`DEADLINE`].
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Drains what a subscriber has received so far.
fn drain(rx: &mut broadcast::Receiver<Event>, into: &mut Vec<Event>) {
    while let Ok(ev) = rx.try_recv() {
        into.push(ev);
    }
}

async fn shutdown_all(nodes: &[GossipHandle]) {
    for n in nodes {
        n.shutdown().await;
    }
}

/// Five nodes with one key converge: everyone sees five alive members with status 1.
#[tokio::test]
async fn five_nodes_with_one_key_converge() {
    let nodes = cluster(5, 1).await;
    for n in &nodes {
        let members = n.members();
        assert_eq!(members.len(), 5);
        assert!(members.iter().all(|m| m.status.as_serf() == 1));
        assert_eq!(n.stats().dropped_undecryptable, 0);
    }
    shutdown_all(&nodes).await;
}

/// A node stopped without leaving (a crash) is seen `failed` by every other node.
#[tokio::test]
async fn crashed_node_is_seen_failed_by_all_others() {
    let nodes = cluster(4, 1).await;
    nodes[3].shutdown().await;
    wait_until("n3 failed everywhere", || {
        nodes[..3]
            .iter()
            .all(|h| status_of(h, "n3") == Some(MemberStatus::Failed))
    })
    .await;
    assert!(nodes[..3].iter().all(|h| alive(h) == 3));
    shutdown_all(&nodes[..3]).await;
}

/// A failed member is reaped (`member-reap`) once `reconnect_timeout` passes.
#[tokio::test]
async fn failed_member_is_reaped_after_reconnect_timeout() {
    let short = |c: &mut GossipConfig| c.reconnect_timeout = Duration::from_millis(500);
    let a = start_with("a", ring(1), short).await;
    let b = start_with("b", ring(1), short).await;
    b.join(&[a.advertise_addr()]).await.expect("join");
    wait_until("a sees b", || alive(&a) == 2).await;
    let mut events = a.subscribe();
    b.shutdown().await;
    let mut seen = Vec::new();
    wait_until("b reaped", || {
        drain(&mut events, &mut seen);
        seen.iter()
            .any(|e| matches!(e, Event::MemberReap(m) if m.name == "b"))
    })
    .await;
    let kinds: Vec<_> = seen.iter().map(Event::kind).collect();
    assert_eq!(kinds, ["member-failed", "member-reap"]);
    assert_eq!(a.members().len(), 1);
    a.shutdown().await;
}

/// A graceful leave is seen as `left` (member-leave), not `failed`.
#[tokio::test]
async fn graceful_leave_is_seen_left() {
    let nodes = cluster(4, 1).await;
    let mut subs: Vec<_> = nodes[..3].iter().map(GossipHandle::subscribe).collect();
    nodes[3].leave().await.expect("leave");
    nodes[3].shutdown().await;
    wait_until("n3 left everywhere", || {
        nodes[..3]
            .iter()
            .all(|h| status_of(h, "n3") == Some(MemberStatus::Left))
    })
    .await;
    for rx in &mut subs {
        let mut seen = Vec::new();
        drain(rx, &mut seen);
        assert!(
            seen.iter()
                .any(|e| matches!(e, Event::MemberLeave(m) if m.name == "n3"))
        );
        assert!(
            !seen.iter().any(|e| matches!(e, Event::MemberFailed(_))),
            "{seen:?}"
        );
    }
    assert!(matches!(
        nodes[3].fire_user_event("x", b"").await,
        Err(e) if e.is_stopped()
    ));
    shutdown_all(&nodes[..3]).await;
}

/// Force-leaving a live member (serf's `RemoveFailedNode` on an alive node): it shows
/// `leaving`, the intent reaches it, it refutes with a newer incarnation and is alive again
/// everywhere; an unknown name is an error.
#[tokio::test]
async fn force_leave_of_a_live_member_is_refuted() {
    let nodes = cluster(3, 1).await;
    let incarnation = |h: &GossipHandle| {
        h.members()
            .into_iter()
            .find(|m| m.name == "n2")
            .map(|m| m.incarnation)
    };
    let before = incarnation(&nodes[0]).expect("n2 known");
    nodes[0].force_leave("n2").await.expect("force-leave");
    // As with serf, the member shows `leaving` until its refutation arrives a gossip round
    // later (Consul clients poll /v1/agent/members for that state).
    assert_eq!(status_of(&nodes[0], "n2"), Some(MemberStatus::Leaving));
    wait_until("n2 refuted: newer incarnation, alive on all", || {
        nodes.iter().all(|h| {
            incarnation(h).is_some_and(|i| i > before)
                && status_of(h, "n2") == Some(MemberStatus::Alive)
        })
    })
    .await;
    assert!(matches!(
        nodes[0].force_leave("nobody").await,
        Err(GossipError::UnknownMember(n)) if n == "nobody"
    ));
    shutdown_all(&nodes).await;
}

/// A node with the wrong key never joins, and the others count its packets as undecryptable.
#[tokio::test]
async fn wrong_key_never_joins_and_drops_are_counted() {
    let nodes = cluster(3, 1).await;
    let intruder = start_with("x", ring(2), |c| c.join_timeout = Duration::from_secs(1)).await;
    let err = intruder
        .join(&[nodes[0].advertise_addr()])
        .await
        .expect_err("wrong key cannot join");
    assert!(
        matches!(err, GossipError::JoinFailed { attempted: 1 }),
        "{err}"
    );
    assert!(nodes[0].stats().dropped_undecryptable > 0);
    assert_eq!(alive(&intruder), 1);
    assert!(
        nodes
            .iter()
            .all(|h| status_of(h, "x").is_none() && alive(h) == 3)
    );
    intruder.shutdown().await;
    shutdown_all(&nodes).await;
}

/// Garbage, tampered, plaintext and empty datagrams are dropped and counted; the node keeps
/// working.
#[tokio::test]
async fn bad_datagrams_are_dropped_and_counted() {
    let node = start("a", ring(1)).await;
    let to = node.advertise_addr();
    let sock = UdpSocket::bind(localhost()).await.expect("bind");
    let mut tampered = ring(1).seal(b"anything").expect("sealed");
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    let sealed_junk = ring(1).seal(b"\xff\xff\xff\xff").expect("sealed");
    let packets: [&[u8]; 6] = [
        b"\x07garbage",                       // unknown envelope → malformed
        b"",                                  // empty → malformed
        &tampered,                            // → undecryptable
        &ring(9).seal(b"x").expect("sealed"), // other key → undecryptable
        b"\x00plaintext swim",                // plaintext with verify_incoming → plaintext
        &sealed_junk,                         // opens, but foca cannot decode → malformed
    ];
    for p in packets {
        sock.send_to(p, to).await.expect("send");
    }
    wait_until("all six counted", || {
        let s = node.stats();
        s.received == 6
            && s.dropped_malformed == 3
            && s.dropped_undecryptable == 2
            && s.dropped_plaintext == 1
    })
    .await;
    // Still alive and useful.
    let b = start("b", ring(1)).await;
    assert_eq!(b.join(&[to]).await.expect("join after garbage"), 1);
    b.shutdown().await;
    node.shutdown().await;
}

/// A user event reaches every node (the sender too) exactly once; oversized events are
/// refused with an error that names the limit.
#[tokio::test]
async fn user_event_reaches_every_node_exactly_once() {
    let nodes = cluster(5, 1).await;
    let mut subs: Vec<_> = nodes.iter().map(GossipHandle::subscribe).collect();
    nodes[2]
        .fire_user_event("deploy", b"v1")
        .await
        .expect("fire");
    nodes[4].fire_user_event("marker", b"").await.expect("fire");
    let mut seen: Vec<Vec<Event>> = vec![Vec::new(); nodes.len()];
    wait_until("both events everywhere", || {
        subs.iter_mut().zip(seen.iter_mut()).all(|(rx, seen)| {
            drain(rx, seen);
            seen.iter()
                .any(|e| matches!(e, Event::User(u) if u.name == "marker"))
                && seen
                    .iter()
                    .any(|e| matches!(e, Event::User(u) if u.name == "deploy"))
        })
    })
    .await;
    // Let a few more gossip rounds pass (condition: traffic flowed), then count.
    let received: Vec<u64> = nodes.iter().map(|n| n.stats().received).collect();
    wait_until("more gossip rounds", || {
        nodes
            .iter()
            .zip(&received)
            .all(|(n, r)| n.stats().received > r + 20)
    })
    .await;
    for (rx, seen) in subs.iter_mut().zip(seen.iter_mut()) {
        drain(rx, seen);
        let deploys: Vec<_> = seen
            .iter()
            .filter_map(|e| match e {
                Event::User(u) if u.name == "deploy" => Some(u),
                _ => None,
            })
            .collect();
        assert_eq!(deploys.len(), 1, "{seen:?}");
        assert_eq!(deploys[0].payload, b"v1");
        assert_eq!(deploys[0].origin, "n2");
    }
    let err = nodes[0]
        .fire_user_event("big", &[0u8; 600])
        .await
        .expect_err("too big");
    assert!(matches!(
        err,
        GossipError::UserEventTooLarge {
            size: 603,
            limit: 512
        }
    ));
    assert!(err.to_string().contains("512"), "{err}");
    shutdown_all(&nodes).await;
}

/// Tag changes propagate as `member-update` with the new tags.
#[tokio::test]
async fn tag_updates_propagate() {
    let nodes = cluster(3, 1).await;
    let mut subs: Vec<_> = nodes.iter().map(GossipHandle::subscribe).collect();
    let rpc = SocketAddr::from(([127, 0, 0, 1], 8300));
    let tags = Tags::new(Role::Server, "dc1")
        .with_rpc_addr(rpc)
        .with_raft_id(7);
    nodes[1].update_tags(tags.clone()).await.expect("update");
    wait_until("tags everywhere", || {
        nodes.iter().all(|h| {
            h.members()
                .iter()
                .any(|m| m.name == "n1" && m.tags == tags && m.status == MemberStatus::Alive)
        })
    })
    .await;
    for rx in &mut subs {
        let mut seen = Vec::new();
        drain(rx, &mut seen);
        assert!(
            seen.iter()
                .any(|e| matches!(e, Event::MemberUpdate(m) if m.name == "n1")),
            "{seen:?}"
        );
        assert!(
            !seen.iter().any(|e| matches!(e, Event::MemberFailed(_))),
            "{seen:?}"
        );
    }
    assert!(nodes.iter().all(|h| alive(h) == 3));
    shutdown_all(&nodes).await;
}

/// Key rotation (install new everywhere, use it, remove the old) while the cluster runs
/// loses no member and no packet.
#[tokio::test]
async fn key_rotation_while_running_loses_no_member() {
    let nodes = cluster(4, 1).await;
    let (old, new) = (key(1), key(2));
    type KeyOp<'a> = &'a dyn Fn(&GossipHandle) -> Result<(), GossipError>;
    let steps: [(&str, KeyOp<'_>); 3] = [
        ("install", &|h| h.install_key(new.clone())),
        ("use", &|h| h.use_key(&new)),
        ("remove", &|h| h.remove_key(&old)),
    ];
    for (step, apply) in steps {
        for n in &nodes {
            apply(n).unwrap_or_else(|e| panic!("{step}: {e}"));
        }
        let received: Vec<u64> = nodes.iter().map(|n| n.stats().received).collect();
        wait_until(&format!("traffic after {step}"), || {
            nodes
                .iter()
                .zip(&received)
                .all(|(n, r)| n.stats().received > r + 20)
        })
        .await;
        assert!(nodes.iter().all(|h| alive(h) == 4), "after {step}");
    }
    for n in &nodes {
        assert_eq!(n.list_keys(), vec![new.clone()]);
        assert_eq!(n.stats().dropped_undecryptable, 0);
    }
    // A node that only has the old key is now locked out.
    let stale = start_with("stale", ring(1), |c| {
        c.join_timeout = Duration::from_secs(1)
    })
    .await;
    assert!(stale.join(&[nodes[0].advertise_addr()]).await.is_err());
    stale.shutdown().await;
    shutdown_all(&nodes).await;
}

/// Rolling enable: a keyed node with both verify flags off talks to a keyless node, and a
/// keyed node with verify_incoming on refuses the keyless one's plaintext.
#[tokio::test]
async fn rolling_enable_accepts_plaintext_only_when_told_to() {
    let plain = start("plain", Keyring::default()).await;
    let relaxed = start_with("relaxed", ring(1), |c| {
        c.verify_incoming = false;
        c.verify_outgoing = false;
    })
    .await;
    assert_eq!(
        relaxed.join(&[plain.advertise_addr()]).await.expect("join"),
        1
    );
    wait_until("plain sees relaxed", || alive(&plain) == 2).await;

    let strict = start_with("strict", ring(1), |c| {
        c.join_timeout = Duration::from_secs(1)
    })
    .await;
    assert!(strict.join(&[plain.advertise_addr()]).await.is_err());
    assert!(strict.stats().dropped_plaintext > 0 || plain.stats().dropped_undecryptable > 0);
    shutdown_all(&[plain, relaxed, strict]).await;
}

/// Keyring changes are persisted atomically when a keyring file is configured.
#[tokio::test]
async fn key_operations_persist_the_keyring_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = keyring::local_keyring_path(dir.path());
    let p = path.clone();
    let node = start_with("a", ring(1), move |c| c.keyring_file = Some(p)).await;
    node.install_key(key(2)).expect("install");
    let err = node.remove_key(&key(1)).expect_err("primary");
    assert!(matches!(err, GossipError::Key(KeyError::RemovePrimary)));
    let on_disk = Keyring::load(&path).expect("load").expect("exists");
    assert_eq!(on_disk.keys(), vec![key(1), key(2)]);
    node.shutdown().await;
}

/// A crashed node restarted on the same address rejoins with a higher incarnation and is
/// alive again everywhere (`member-join`).
#[tokio::test]
async fn restarted_node_rejoins_with_a_higher_incarnation() {
    let nodes = cluster(3, 1).await;
    let addr = nodes[2].advertise_addr();
    let before = nodes[0].members().into_iter().find(|m| m.name == "n2");
    let before = before.expect("n2 known").incarnation;
    nodes[2].shutdown().await;
    wait_until("n2 failed", || {
        nodes[..2]
            .iter()
            .all(|h| status_of(h, "n2") == Some(MemberStatus::Failed))
    })
    .await;
    let mut events = nodes[0].subscribe();
    let again = start_with("n2", ring(1), |c| c.bind_addr = addr).await;
    again
        .join(&[nodes[0].advertise_addr()])
        .await
        .expect("rejoin");
    wait_until("n2 alive again everywhere", || {
        nodes[..2].iter().all(|h| {
            h.members().iter().any(|m| {
                m.name == "n2" && m.status == MemberStatus::Alive && m.incarnation > before
            })
        })
    })
    .await;
    let mut seen = Vec::new();
    drain(&mut events, &mut seen);
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::MemberJoin(m) if m.name == "n2")),
        "{seen:?}"
    );
    again.shutdown().await;
    shutdown_all(&nodes[..2]).await;
}

/// A full rotation through pool-wide key queries (install → use → remove) while user events
/// flow: every step is acknowledged by all five members, nobody is seen failed, and removing
/// the primary is refused before any member is asked.
#[tokio::test]
async fn key_queries_rotate_the_pool_under_traffic() {
    let nodes = cluster(5, 1).await;
    let (old, new) = (key(1), key(2));
    let mut subs: Vec<_> = nodes.iter().map(GossipHandle::subscribe).collect();
    let token = CancellationToken::new();
    let traffic = {
        let (n, token) = (nodes[4].clone(), token.clone());
        tokio::spawn(async move {
            let mut fired = 0u32;
            while !token.is_cancelled() {
                n.fire_user_event("tick", &fired.to_be_bytes())
                    .await
                    .expect("fire");
                fired += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            fired
        })
    };
    let list = nodes[1].key_query(KeyOp::List).await.expect("list");
    assert_eq!(list.error(), None);
    assert_eq!(list.num_nodes, 5);
    assert_eq!(list.keys.get(&old.to_base64()), Some(&5));
    let steps = [
        ("install", KeyOp::Install(new.as_bytes().to_vec())),
        ("use", KeyOp::Use(new.as_bytes().to_vec())),
        ("remove", KeyOp::Remove(old.as_bytes().to_vec())),
    ];
    for (step, op) in steps {
        let sum = nodes[0].key_query(op).await.expect(step);
        assert_eq!(sum.error(), None, "{step}: {sum:?}");
        assert_eq!((sum.num_resp, sum.num_nodes), (5, 5), "{step}");
    }
    let sum = nodes[2].key_query(KeyOp::List).await.expect("list");
    assert_eq!(sum.keys.len(), 1, "{sum:?}");
    assert_eq!(sum.primary_keys.get(&new.to_base64()), Some(&5));
    for n in &nodes {
        assert_eq!(n.list_keys(), vec![new.clone()]);
    }
    let err = nodes[3]
        .key_query(KeyOp::Remove(new.as_bytes().to_vec()))
        .await
        .expect_err("primary");
    assert!(matches!(err, GossipError::Key(KeyError::RemovePrimary)));
    token.cancel();
    assert!(traffic.await.expect("traffic task") > 0);
    for (i, rx) in subs.iter_mut().enumerate() {
        let mut seen = Vec::new();
        drain(rx, &mut seen);
        assert!(
            !seen.iter().any(|e| matches!(e, Event::MemberFailed(_))),
            "n{i} saw a false failure: {seen:?}"
        );
        assert_eq!(alive(&nodes[i]), 5);
    }
    shutdown_all(&nodes).await;
}

/// Keyring queries on a plaintext pool are refused: the key would travel in clear.
#[tokio::test]
async fn key_queries_need_encryption() {
    let node = start("plain", Keyring::default()).await;
    let err = node
        .key_query(KeyOp::Install(key(2).as_bytes().to_vec()))
        .await
        .expect_err("refused");
    assert!(matches!(err, GossipError::EncryptionDisabled));
    node.shutdown().await;
}

/// Two nodes on loopback learn coordinates from their own pings, and the estimated RTT
/// between them is of loopback's order (tens of microseconds to a few milliseconds).
#[tokio::test]
async fn coordinates_estimate_loopback_rtt() {
    let nodes = cluster(2, 1).await;
    let estimate = |a: &GossipHandle, b: &str| {
        let mine = a.coordinate()?;
        let theirs = a.coordinate_of(b)?;
        (mine.error < 1.0).then(|| mine.distance_to(&theirs))
    };
    wait_until("both nodes have settled coordinates", || {
        estimate(&nodes[0], "n1").is_some() && estimate(&nodes[1], "n0").is_some()
    })
    .await;
    for (a, b) in [(&nodes[0], "n1"), (&nodes[1], "n0")] {
        let rtt = estimate(a, b).expect("estimate");
        eprintln!("estimated rtt {} -> {b}: {rtt:?}", a.name());
        assert!(
            rtt >= Duration::from_micros(10) && rtt <= Duration::from_millis(10),
            "{} -> {b}: {rtt:?}",
            a.name()
        );
    }
    shutdown_all(&nodes).await;
}

/// The snapshot task records live peers and the event clock as they change, and the leave;
/// a node restored from it resumes its event clock past the recorded time.
#[tokio::test]
async fn snapshot_tracks_peers_events_and_leave_and_restores_the_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = snapshot::local_snapshot_path(dir.path());
    let nodes = cluster(2, 1).await;
    let task = tokio::spawn(snapshot::run(
        path.clone(),
        Snapshot::default(),
        Duration::from_millis(50),
        nodes[0].members_watch(),
        nodes[0].subscribe(),
    ));
    for i in 0..3 {
        nodes[1]
            .fire_user_event(&format!("e{i}"), b"")
            .await
            .expect("fire");
    }
    let n1 = nodes[1].advertise_addr();
    let read = || Snapshot::load(&path).ok().flatten().unwrap_or_default();
    wait_until("n1 and ltime 2 in the snapshot", || {
        let s = read();
        s.alive.get("n1") == Some(&n1) && s.event_ltime == Some(2) && !s.left
    })
    .await;
    nodes[0].leave().await.expect("leave");
    nodes[0].shutdown().await;
    task.await.expect("snapshot task ends with the pool");
    let s = read();
    assert!(s.left && s.alive.contains_key("n1"), "{s:?}");
    assert!(s.rejoin_targets(false).is_empty());
    assert_eq!(s.rejoin_targets(true), [n1]);

    let restored = start_with("n9", ring(1), |c| c.restored_event_ltime = s.event_ltime).await;
    let mut rx = restored.subscribe();
    restored.fire_user_event("after", b"").await.expect("fire");
    let mut seen = Vec::new();
    wait_until("the restored node's own event", || {
        drain(&mut rx, &mut seen);
        !seen.is_empty()
    })
    .await;
    assert!(
        matches!(&seen[0], Event::User(u) if u.name == "after" && u.ltime == 3),
        "{seen:?}"
    );
    restored.shutdown().await;
    nodes[1].shutdown().await;
}

/// A node joining a 20-member pool learns every member, with its tags, from the push-pull
/// exchange of its join. The pool probes and gossips once a minute, and the names are long
/// enough that foca's one-packet announce reply cannot carry them all, so nothing but the
/// push-pull can deliver the whole pool within the deadline.
#[tokio::test]
async fn joiner_learns_a_20_member_pool_through_push_pull() {
    let slow = |cfg: &mut GossipConfig| {
        cfg.probe_interval = Duration::from_secs(60);
        cfg.probe_timeout = Duration::from_secs(1);
        cfg.gossip_interval = Duration::from_secs(60);
        cfg.push_pull_interval = Duration::ZERO;
    };
    let long = |i: usize| format!("member-{i:02}-{}", "x".repeat(70));
    let mut pool = Vec::new();
    for i in 0..20 {
        let mut tags = Tags::new(Role::Client, "dc1");
        tags.set("idx", i.to_string());
        pool.push(
            start_with(&long(i), ring(1), |c| {
                slow(c);
                c.tags = tags;
            })
            .await,
        );
    }
    let seed = pool[0].advertise_addr();
    for node in &pool[1..] {
        assert_eq!(node.join(&[seed]).await.expect("join"), 1);
    }
    wait_until("the seed sees 20 alive", || alive(&pool[0]) == 20).await;
    let joiner = start_with("joiner", ring(1), slow).await;
    assert_eq!(joiner.join(&[seed]).await.expect("join"), 1);
    wait_until("the joiner sees all 21 alive with their tags", || {
        let members = joiner.members();
        let tagged = (0..20).all(|i| {
            members.iter().any(|m| {
                m.name == long(i)
                    && m.status == MemberStatus::Alive
                    && m.tags.get("idx") == Some(i.to_string().as_str())
                    && m.tags.datacenter() == Some("dc1")
            })
        });
        tagged && alive(&joiner) == 21
    })
    .await;
    // No member was ever shown without its tags.
    assert!(
        joiner
            .members()
            .iter()
            .all(|m| m.tags.datacenter() == Some("dc1") || m.name == "joiner")
    );
    joiner.shutdown().await;
    shutdown_all(&pool).await;
}

/// Tags changed after the join (twice, quickly) reach every member: each ends with the
/// newest tags and saw `member-update`, and nobody saw the member fail or leave.
#[tokio::test]
async fn tags_changed_after_join_reach_every_member() {
    let nodes = cluster(6, 1).await;
    let mut subs: Vec<_> = nodes.iter().map(GossipHandle::subscribe).collect();
    let mut first = Tags::new(Role::Client, "dc1");
    first.set("stage", "one");
    let mut second = first.clone();
    second.set("stage", "two");
    nodes[2].update_tags(first).await.expect("first update");
    nodes[2]
        .update_tags(second.clone())
        .await
        .expect("second update");
    wait_until("the newest tags everywhere", || {
        nodes.iter().all(|h| {
            h.members()
                .iter()
                .any(|m| m.name == "n2" && m.tags == second && m.status == MemberStatus::Alive)
        })
    })
    .await;
    for (i, rx) in subs.iter_mut().enumerate() {
        let mut seen = Vec::new();
        drain(rx, &mut seen);
        assert!(
            seen.iter()
                .any(|e| matches!(e, Event::MemberUpdate(m) if m.name == "n2")),
            "n{i}: {seen:?}"
        );
        assert!(
            !seen.iter().any(|e| matches!(
                e,
                Event::MemberFailed(_) | Event::MemberLeave(_) | Event::MemberJoin(_)
            )),
            "n{i}: {seen:?}"
        );
    }
    assert!(nodes.iter().all(|h| alive(h) == 6));
    shutdown_all(&nodes).await;
}
