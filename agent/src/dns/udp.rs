//! DNS over UDP: `SO_REUSEPORT` sockets on one address, one per CPU this process may run
//! on, each drained by its own thread (the kernel spreads clients over them by hash).
//!
//! ```text
//!   thread per socket:  recvfrom (blocking, 200 ms timeout to notice shutdown)
//!                       + recvfrom(MSG_DONTWAIT) until empty or BATCH datagrams
//!        │ per datagram: AnswerCache::answer_into ── hit ──▶ reply bytes in the batch arena
//!        │                               └─ miss ──▶ tokio task: ConsulDns::answer_raw,
//!        │                                           send_to, cache the reply if allowed
//!        ▼
//!   sendmmsg: every hit of the batch in one system call
//! ```
//!
//! A hit allocates nothing: the arena, address list and buffers are reused from batch to
//! batch. The generation ([`super::source::Source::cache_generation`]) is read once per batch.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_server::net::xfer::Protocol;
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, MMsgHdr, RecvFlags, SendAncillaryBuffer, SendFlags, SocketAddrAny, SocketFlags,
    SocketType,
};
use tokio_util::sync::CancellationToken;

use super::cache::{Rng, Wire};
use super::handler::ConsulDns;

/// Datagrams read before the replies go out together.
const BATCH: usize = 32;
/// Largest datagram read (hickory's too); a longer one is cut and answered FORMERR.
const MAX_DATAGRAM: usize = 4096;
/// How often a blocked receive looks whether the server is shutting down.
const POLL: Duration = Duration::from_millis(200);

/// Binds `count` UDP sockets sharing `addr` with `SO_REUSEPORT` (port 0: the first picks).
pub(super) fn bind_reuseport(addr: SocketAddr, count: usize) -> std::io::Result<Vec<UdpSocket>> {
    let mut out = Vec::with_capacity(count.max(1));
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let family = if addr.is_ipv4() {
            AddressFamily::INET
        } else {
            AddressFamily::INET6
        };
        let fd = rustix::net::socket_with(family, SocketType::DGRAM, SocketFlags::CLOEXEC, None)?;
        if addr.is_ipv6() {
            rustix::net::sockopt::set_ipv6_v6only(&fd, true)?;
        }
        rustix::net::sockopt::set_socket_reuseport(&fd, true)?;
        rustix::net::bind(&fd, &addr)?;
        let sock = UdpSocket::from(fd);
        addr = sock.local_addr()?;
        out.push(sock);
    }
    Ok(out)
}

/// How many sockets (and threads): the CPUs this process may run on.
pub(super) fn sockets_per_address() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Serves `sock` on a thread of its own until `token` is cancelled.
pub(super) fn spawn(
    sock: UdpSocket,
    dns: ConsulDns,
    token: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    sock.set_read_timeout(Some(POLL))?;
    let rt = tokio::runtime::Handle::current();
    let sock = Arc::new(sock);
    Ok(tokio::task::spawn_blocking(move || {
        Loop::new(sock, dns, rt).run(&token);
    }))
}

/// One socket's receive loop and its reused buffers.
struct Loop {
    sock: Arc<UdpSocket>,
    dns: ConsulDns,
    rt: tokio::runtime::Handle,
    rng: Rng,
    /// Received datagrams: buffer, length, sender.
    rx: Vec<(Box<[u8]>, usize, Option<SocketAddrAny>)>,
    /// Replies of the batch, back to back.
    arena: Vec<u8>,
    /// (start, end in `arena`, index into `rx` of the sender) per reply.
    out: Vec<(usize, usize, usize)>,
}

impl Loop {
    fn new(sock: Arc<UdpSocket>, dns: ConsulDns, rt: tokio::runtime::Handle) -> Self {
        Self {
            sock,
            dns,
            rt,
            rng: Rng::new(),
            rx: (0..BATCH)
                .map(|_| (vec![0u8; MAX_DATAGRAM].into_boxed_slice(), 0, None))
                .collect(),
            arena: Vec::with_capacity(BATCH * 512),
            out: Vec::with_capacity(BATCH),
        }
    }

    fn run(mut self, token: &CancellationToken) {
        while !token.is_cancelled() {
            let n = self.receive();
            if n > 0 {
                self.answer(n);
            }
        }
    }

    /// Fills `rx` with up to BATCH datagrams: waits for the first, takes what is queued.
    fn receive(&mut self) -> usize {
        let mut n = 0;
        while n < BATCH {
            let flags = if n == 0 {
                RecvFlags::empty()
            } else {
                RecvFlags::DONTWAIT
            };
            let slot = &mut self.rx[n];
            match rustix::net::recvfrom(&*self.sock, &mut slot.0[..], flags) {
                Ok((_, len, from)) => {
                    slot.1 = len.min(MAX_DATAGRAM);
                    slot.2 = from;
                    n += 1;
                }
                Err(Errno::AGAIN | Errno::INTR) => break,
                Err(e) => {
                    tracing::debug!(cause = %e, "DNS UDP receive failed");
                    break;
                }
            }
        }
        n
    }

    /// Answers `rx[..n]`: hits into the arena and out in one `sendmmsg`, misses to tasks.
    fn answer(&mut self, n: usize) {
        let generation = self.dns.generation();
        let now = Instant::now();
        self.arena.clear();
        self.out.clear();
        let cache = Arc::clone(self.dns.cache());
        for i in 0..n {
            let (buf, len, from) = &self.rx[i];
            let query = &buf[..*len];
            let Some(from) = from else { continue };
            let start = self.arena.len();
            let hit = generation.is_some_and(|g| {
                cache.answer_into(Wire::Udp, query, g, now, &mut self.rng, &mut self.arena)
            });
            if hit {
                if tracing::enabled!(tracing::Level::DEBUG)
                    && let Ok(src) = SocketAddr::try_from(from.clone())
                {
                    super::raw::served_cached(query, src, Protocol::Udp, now);
                }
                self.out.push((start, self.arena.len(), i));
            } else if let Ok(src) = SocketAddr::try_from(from.clone()) {
                self.miss(query.to_vec(), src);
            }
        }
        if self.out.is_empty() {
            return;
        }
        self.send_hits();
        self.dns.count_cached(self.out.len() as u64, now);
    }

    fn send_hits(&mut self) {
        let slices: Vec<[std::io::IoSlice<'_>; 1]> = self
            .out
            .iter()
            .map(|&(s, e, _)| [std::io::IoSlice::new(&self.arena[s..e])])
            .collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
            (0..self.out.len()).map(|_| Default::default()).collect();
        let mut msgs: Vec<MMsgHdr<'_>> = Vec::with_capacity(self.out.len());
        for ((iov, control), &(_, _, i)) in slices.iter().zip(controls.iter_mut()).zip(&self.out) {
            if let Some(addr) = &self.rx[i].2 {
                msgs.push(MMsgHdr::new_with_addr(addr, iov, control));
            }
        }
        let mut sent = 0;
        while sent < msgs.len() {
            match rustix::net::sendmmsg(&*self.sock, &mut msgs[sent..], SendFlags::empty()) {
                Ok(0) => break,
                Ok(k) => sent += k,
                Err(Errno::INTR) => {}
                Err(e) => {
                    // One bad destination fails the call: skip it, send the rest.
                    tracing::debug!(cause = %e, "DNS UDP reply not sent");
                    sent += 1;
                }
            }
        }
    }

    /// The full handler for one datagram, on the runtime; its reply is sent from there.
    fn miss(&self, query: Vec<u8>, src: SocketAddr) {
        if src.port() == 0 || src.ip().is_unspecified() {
            return; // nowhere to answer (hickory drops these too)
        }
        let dns = self.dns.clone();
        let sock = Arc::clone(&self.sock);
        self.rt.spawn(async move {
            let Some(a) = dns.answer_raw(query.clone(), src, Protocol::Udp).await else {
                return;
            };
            // Cached before it is sent: a client asking again as soon as it has the reply
            // (dig in a loop, a resolver retrying) must find it.
            if let Some(g) = a.cacheable {
                dns.cache().insert(Wire::Udp, &query, g, &a.bytes);
            }
            if let Err(e) = sock.send_to(&a.bytes, src) {
                tracing::debug!(cause = %e, "DNS UDP reply not sent");
            }
        });
    }
}
