//! `testbed _wan-emulator`: the link emulator process, run inside the WAN router's
//! namespace. It attaches to the TUN device `emu` (made persistent by `router`), and for
//! every IPv4 packet the kernel routes into it decides, by the link the addresses name,
//! whether to drop it (loss, blackhole) and when to write it back (delay ± jitter).
//!
//! Three blocking threads, no async runtime (like the other helpers):
//!
//! - the reader (the main thread) reads packets and queues them with a release time;
//! - the writer sleeps until the earliest release time and writes due packets back;
//! - the control thread answers `reload` / `stats` on a Unix socket (see `control`).
//!
//! Packets of one direction of one link leave in the order they came (a later packet is
//! never released before an earlier one), as on a real path where jitter comes from
//! queueing. No `unsafe` here: `tun-rs` does the `TUNSETIFF` ioctl.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::control::{Counters, LinkStats, Request, Stats};
use super::{LinkParams, LinksFile, WanLink};

/// Packets held at once; more are dropped and counted as `overflow` (a bound on memory:
/// at 1500 bytes each, about 30 MB).
const MAX_QUEUED: usize = 20_000;
/// The largest packet read from the TUN device (its MTU is 1500; room for more).
const MAX_PACKET: usize = 65_536;

/// The two ends of an IPv4 packet, if it is one.
pub fn ipv4_endpoints(packet: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let first = *packet.first()?;
    if first >> 4 != 4 || usize::from(first & 0x0f) * 4 < 20 || packet.len() < 20 {
        return None;
    }
    let addr =
        |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
    Some((addr(12), addr(16)))
}

/// The DC index of a WAN address (10.202.*d*.x), if it is one.
pub fn wan_dc(ip: Ipv4Addr) -> Option<u8> {
    match ip.octets() {
        [10, 202, d, _] => Some(d),
        _ => None,
    }
}

/// When a packet sent `now` on a link with `params` is released, never before `after`
/// (the previous packet of its direction); `unit` in [0, 1) picks the jitter.
pub fn release_time(
    now: Instant,
    params: &LinkParams,
    unit: f64,
    after: Option<Instant>,
) -> Instant {
    // unit ∈ [0,1) → offset ∈ [-jitter, +jitter); the delay never goes below zero.
    let jitter = params.jitter_us as f64 * (2.0 * unit - 1.0);
    let us = (params.delay_us as f64 + jitter).max(0.0);
    let at = now + Duration::from_micros(us as u64);
    after.map_or(at, |a| at.max(a))
}

/// What happens to one packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Dropped by the blackhole.
    Blackholed,
    /// Dropped by random loss.
    Lost,
    /// Held until the given time.
    Release(Instant),
}

/// One link's parameters and counters, per direction (0: a → b, 1: b → a).
struct LinkState {
    link: WanLink,
    counters: [Counters; 2],
    last_release: [Option<Instant>; 2],
}

/// A held packet, ordered by release time, then arrival.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    release: Instant,
    seq: u64,
    packet: Vec<u8>,
}

/// What the threads share.
struct Shared {
    links: Mutex<HashMap<(u8, u8), LinkState>>,
    queue: Mutex<BinaryHeap<Reverse<Held>>>,
    ready: Condvar,
    unrouted: AtomicU64,
    overflow: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking thread ends the process anyway; the data is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// === impl Shared ===

impl Shared {
    fn new(file: LinksFile) -> Shared {
        let shared = Shared {
            links: Mutex::new(HashMap::new()),
            queue: Mutex::new(BinaryHeap::new()),
            ready: Condvar::new(),
            unrouted: AtomicU64::new(0),
            overflow: AtomicU64::new(0),
        };
        shared.replace_links(file);
        shared
    }

    /// New parameters; counters of links that stay are kept.
    fn replace_links(&self, file: LinksFile) {
        let mut links = lock(&self.links);
        let mut next = HashMap::new();
        for link in file.links {
            let key = (
                link.a_index.min(link.b_index),
                link.a_index.max(link.b_index),
            );
            let old = links.remove(&key);
            next.insert(
                key,
                LinkState {
                    counters: old.as_ref().map(|o| o.counters.clone()).unwrap_or_default(),
                    last_release: old.map(|o| o.last_release).unwrap_or_default(),
                    link,
                },
            );
        }
        *links = next;
    }

    /// Decides a packet from DC `from` to DC `to`; `None` when no link joins them.
    fn decide(&self, from: u8, to: u8, now: Instant) -> Option<Verdict> {
        let mut links = lock(&self.links);
        let state = links.get_mut(&(from.min(to), from.max(to)))?;
        let dir = usize::from(from != state.link.a_index);
        let params = state.link.params;
        let counters = &mut state.counters[dir];
        if params.blackhole {
            counters.blackholed += 1;
            return Some(Verdict::Blackholed);
        }
        if params.loss_percent > 0.0 && rand::random::<f64>() * 100.0 < params.loss_percent {
            counters.lost += 1;
            return Some(Verdict::Lost);
        }
        counters.forwarded += 1;
        let at = release_time(now, &params, rand::random(), state.last_release[dir]);
        state.last_release[dir] = Some(at);
        Some(Verdict::Release(at))
    }

    fn hold(&self, release: Instant, seq: u64, packet: Vec<u8>) {
        let mut queue = lock(&self.queue);
        if queue.len() >= MAX_QUEUED {
            self.overflow.fetch_add(1, Ordering::Relaxed);
            return;
        }
        queue.push(Reverse(Held {
            release,
            seq,
            packet,
        }));
        drop(queue);
        self.ready.notify_one();
    }

    fn stats(&self) -> Stats {
        let links = lock(&self.links);
        let mut out: Vec<LinkStats> = links
            .values()
            .map(|s| LinkStats {
                link: s.link.clone(),
                a_to_b: s.counters[0].clone(),
                b_to_a: s.counters[1].clone(),
            })
            .collect();
        out.sort_by_key(|s| (s.link.a_index, s.link.b_index));
        Stats {
            links: out,
            unrouted: self.unrouted.load(Ordering::Relaxed),
            overflow: self.overflow.load(Ordering::Relaxed),
            queued: lock(&self.queue).len() as u64,
            error: None,
        }
    }
}

/// Reads the links file.
fn read_links(path: &Path) -> Result<LinksFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `_wan-emulator`: runs until the TUN device goes away (the namespace is deleted) or the
/// process is killed. Exit code 1 when it cannot start.
pub fn run(tun: &str, links: &Path, control: &Path) -> i32 {
    let file = match read_links(links) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(cause = %e, "cannot read the links");
            return 1;
        }
    };
    let device = match tun_rs::DeviceBuilder::new().name(tun).build_sync() {
        Ok(d) => Arc::new(d),
        Err(e) => {
            tracing::error!(cause = %e, tun, "cannot attach to the TUN device");
            return 1;
        }
    };
    // A socket file left by an earlier emulator of this run would make bind fail.
    let _ = std::fs::remove_file(control);
    let listener = match UnixListener::bind(control) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(cause = %e, path = %control.display(), "cannot listen for control");
            return 1;
        }
    };
    let shared = Arc::new(Shared::new(file));
    let (s, d) = (shared.clone(), device.clone());
    std::thread::spawn(move || write_loop(&s, &d));
    let (s, path) = (shared.clone(), links.to_path_buf());
    std::thread::spawn(move || control_loop(&s, &listener, &path));
    tracing::info!(tun, "link emulator running");
    read_loop(&shared, &device)
}

/// Reads packets until the device fails; returns the exit code.
fn read_loop(shared: &Shared, device: &tun_rs::SyncDevice) -> i32 {
    let mut buf = vec![0u8; MAX_PACKET];
    let mut seq = 0u64;
    loop {
        let n = match device.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!(cause = %e, "reading the TUN device; exiting");
                return 1;
            }
        };
        let now = Instant::now();
        let packet = &buf[..n];
        let link = ipv4_endpoints(packet).and_then(|(src, dst)| Some((wan_dc(src)?, wan_dc(dst)?)));
        let verdict = link.and_then(|(from, to)| shared.decide(from, to, now));
        match verdict {
            Some(Verdict::Release(at)) => {
                seq += 1;
                shared.hold(at, seq, packet.to_vec());
            }
            Some(Verdict::Lost | Verdict::Blackholed) => {}
            // Not WAN traffic between two linked DCs (IPv6 chatter, say): dropped.
            None => {
                shared.unrouted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Writes held packets back into the device when they are due.
fn write_loop(shared: &Shared, device: &tun_rs::SyncDevice) {
    let mut queue = lock(&shared.queue);
    loop {
        let now = Instant::now();
        let next = queue.peek().map(|Reverse(h)| h.release);
        match next {
            None => {
                queue = shared
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            Some(at) if at > now => {
                queue = shared
                    .ready
                    .wait_timeout(queue, at - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            Some(_) => {
                let mut due = Vec::new();
                while let Some(Reverse(h)) = queue.peek() {
                    if h.release > now {
                        break;
                    }
                    if let Some(Reverse(h)) = queue.pop() {
                        due.push(h.packet);
                    }
                }
                drop(queue);
                for p in due {
                    if let Err(e) = device.send(&p) {
                        tracing::warn!(cause = %e, "writing a packet back");
                    }
                }
                queue = lock(&shared.queue);
            }
        }
    }
}

/// Answers one request per connection.
fn control_loop(shared: &Shared, listener: &UnixListener, links: &Path) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                if let Err(e) = answer(shared, stream, links) {
                    tracing::warn!(cause = %e, "control connection");
                }
            }
            Err(e) => tracing::warn!(cause = %e, "accepting a control connection"),
        }
    }
}

fn answer(shared: &Shared, stream: UnixStream, links: &Path) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(Request::Stats) => shared.stats(),
        Ok(Request::Reload) => match read_links(links) {
            Ok(file) => {
                shared.replace_links(file);
                shared.stats()
            }
            Err(e) => Stats {
                error: Some(e),
                ..shared.stats()
            },
        },
        Err(e) => Stats {
            error: Some(format!("bad request: {e}")),
            ..Stats::default()
        },
    };
    let mut text = serde_json::to_string(&reply).unwrap_or_default();
    text.push('\n');
    (&stream).write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    use super::{LinksFile, Shared, Verdict, ipv4_endpoints, release_time, wan_dc};
    use crate::wan::{LinkParams, WanLink};

    fn packet(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p
    }

    #[test]
    fn reads_ipv4_endpoints_and_wan_dcs() {
        let p = packet([10, 202, 1, 1], [10, 202, 3, 2]);
        let (src, dst) = ipv4_endpoints(&p).expect("ipv4");
        assert_eq!((wan_dc(src), wan_dc(dst)), (Some(1), Some(3)));
        assert_eq!(wan_dc(Ipv4Addr::new(10, 201, 1, 11)), None);
        let mut v6 = p.clone();
        v6[0] = 0x60;
        assert_eq!(ipv4_endpoints(&v6), None);
        assert_eq!(ipv4_endpoints(&p[..10]), None);
    }

    #[test]
    fn release_adds_delay_within_jitter_and_keeps_order() {
        let now = Instant::now();
        let p = LinkParams {
            delay_us: 40_000,
            jitter_us: 10_000,
            ..LinkParams::default()
        };
        let ms = Duration::from_millis;
        assert_eq!(release_time(now, &p, 0.5, None), now + ms(40));
        assert_eq!(release_time(now, &p, 0.0, None), now + ms(30));
        let late = now + ms(45);
        assert_eq!(
            release_time(now, &p, 0.0, Some(late)),
            late,
            "never before the previous"
        );
        let big = LinkParams {
            delay_us: 1_000,
            jitter_us: 5_000,
            ..LinkParams::default()
        };
        assert_eq!(release_time(now, &big, 0.0, None), now, "never negative");
    }

    #[test]
    fn blackhole_and_loss_drop_and_count_per_direction() {
        let link = |params| WanLink {
            a: "dc1".into(),
            b: "dc2".into(),
            a_index: 1,
            b_index: 2,
            params,
        };
        let all_lost = LinkParams {
            loss_percent: 100.0,
            ..LinkParams::default()
        };
        let shared = Shared::new(LinksFile {
            links: vec![link(all_lost)],
        });
        let now = Instant::now();
        assert_eq!(shared.decide(2, 1, now), Some(Verdict::Lost));
        assert_eq!(shared.decide(1, 3, now), None, "no link 1–3");
        shared.replace_links(LinksFile {
            links: vec![link(LinkParams {
                blackhole: true,
                ..LinkParams::default()
            })],
        });
        assert_eq!(shared.decide(1, 2, now), Some(Verdict::Blackholed));
        shared.replace_links(LinksFile {
            links: vec![link(LinkParams::default())],
        });
        assert_eq!(shared.decide(1, 2, now), Some(Verdict::Release(now)));
        let stats = shared.stats();
        let s = &stats.links[0];
        assert_eq!((s.a_to_b.blackholed, s.a_to_b.forwarded), (1, 1));
        assert_eq!(s.b_to_a.lost, 1, "counters survive a reload");
    }
}
