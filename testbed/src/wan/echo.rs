//! Helpers that measure a WAN link with real traffic, run inside gateway namespaces:
//!
//! - `_echo --bind IP --port P`: echoes UDP datagrams and TCP streams on IP:P until its
//!   stdin closes (the parent's way of stopping it); prints `{"ready":true}` once bound;
//! - `_ping --target IP:P --proto udp|tcp`: UDP sends `count` numbered datagrams at a fixed
//!   pace and times each echo; TCP times the handshake, then `count` request/echo round
//!   trips on one connection. One JSON `PingReport` line on stdout.
//!
//! Blocking code for short-lived processes, like the other helpers. Every wait is bounded.

use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Size of a UDP probe datagram (sequence number, send time, padding).
const UDP_SIZE: usize = 64;
/// Size of a TCP probe message.
const TCP_SIZE: usize = 16;

/// Round-trip times of the answered probes, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rtt {
    /// Fastest.
    pub min: f64,
    /// Mean.
    pub avg: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Slowest.
    pub max: f64,
}

impl Rtt {
    /// The summary of `samples` (ms); `None` when empty.
    pub fn of(samples: &[f64]) -> Option<Rtt> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
        Some(Rtt {
            min: s[0],
            avg: s.iter().sum::<f64>() / s.len() as f64,
            p50: at(0.5),
            p95: at(0.95),
            max: s[s.len() - 1],
        })
    }
}

/// What `_ping` measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PingReport {
    /// `udp` or `tcp`.
    pub proto: String,
    /// The echo server.
    pub target: String,
    /// Probes sent.
    pub sent: u64,
    /// Probes answered.
    pub received: u64,
    /// Unanswered probes, in percent of those sent.
    pub loss_percent: f64,
    /// Round-trip times of the answered ones.
    pub rtt_ms: Option<Rtt>,
    /// TCP: how long the handshake took (one round trip plus the SYN's delay).
    pub connect_ms: Option<f64>,
    /// Why probing stopped early (TCP), if it did.
    pub error: Option<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print<T: Serialize>(value: &T) -> i32 {
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string(value).unwrap_or_default();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// `_echo`: serves until stdin closes. Exit code 1 when it cannot bind.
pub fn echo(bind: Ipv4Addr, port: u16) -> i32 {
    let addr = SocketAddrV4::new(bind, port);
    let (udp, tcp) = match (UdpSocket::bind(addr), TcpListener::bind(addr)) {
        (Ok(u), Ok(t)) => (u, t),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(cause = %e, %addr, "cannot bind the echo server");
            return 1;
        }
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, peer)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(&buf[..n], peer);
        }
    });
    std::thread::spawn(move || {
        for conn in tcp.incoming().flatten() {
            std::thread::spawn(move || echo_stream(conn));
        }
    });
    if print(&serde_json::json!({ "ready": true })) != 0 {
        return 1;
    }
    let mut sink = String::new();
    while std::io::stdin()
        .lock()
        .read_line(&mut sink)
        .is_ok_and(|n| n > 0)
    {
        sink.clear();
    }
    0
}

fn echo_stream(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut buf = [0u8; 2048];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 || conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// `_ping --proto udp|tcp`: prints one `PingReport`.
pub fn ping(
    target: SocketAddrV4,
    tcp: bool,
    count: u64,
    interval: Duration,
    wait: Duration,
) -> i32 {
    let report = if tcp {
        ping_tcp(target, count, wait)
    } else {
        ping_udp(target, count, interval, wait)
    };
    print(&report)
}

fn report(proto: &str, target: SocketAddrV4, sent: u64, rtts: &[f64]) -> PingReport {
    let received = rtts.len() as u64;
    PingReport {
        proto: proto.into(),
        target: target.to_string(),
        sent,
        received,
        loss_percent: if sent == 0 {
            0.0
        } else {
            100.0 * (sent - received) as f64 / sent as f64
        },
        rtt_ms: Rtt::of(rtts),
        ..PingReport::default()
    }
}

/// Sends `count` datagrams `interval` apart; waits up to `wait` after the last for echoes.
fn ping_udp(target: SocketAddrV4, count: u64, interval: Duration, wait: Duration) -> PingReport {
    let fail = |e: std::io::Error| PingReport {
        proto: "udp".into(),
        target: target.to_string(),
        error: Some(e.to_string()),
        ..PingReport::default()
    };
    let socket = match UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.connect(SocketAddr::V4(target)).map(|()| s))
        .and_then(|s| {
            s.set_read_timeout(Some(Duration::from_millis(20)))
                .map(|()| s)
        }) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let receiver = match socket.try_clone() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let start = Instant::now();
    let len = usize::try_from(count).unwrap_or(usize::MAX);
    let rtts: Arc<Mutex<Vec<Option<f64>>>> = Arc::new(Mutex::new(vec![None; len]));
    let done = Arc::new(AtomicBool::new(false));
    let (sink, stop) = (rtts.clone(), done.clone());
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; UDP_SIZE];
        while !stop.load(Ordering::Relaxed) {
            let Ok(n) = receiver.recv(&mut buf) else {
                continue;
            };
            let now = start.elapsed();
            if n < 16 {
                continue;
            }
            let field = |at: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[at..at + 8]);
                u64::from_le_bytes(b)
            };
            let (seq, sent_us) = (field(0), field(8));
            let rtt = ms(now.saturating_sub(Duration::from_micros(sent_us)));
            let mut v = sink.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = usize::try_from(seq).ok().and_then(|i| v.get_mut(i)) {
                slot.get_or_insert(rtt);
            }
        }
    });
    let mut sent = 0;
    for seq in 0..count {
        let mut packet = [0u8; UDP_SIZE];
        packet[..8].copy_from_slice(&seq.to_le_bytes());
        let now = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        packet[8..16].copy_from_slice(&now.to_le_bytes());
        // A send can fail (no route while a link is cut on our side); it counts as sent.
        let _ = socket.send(&packet);
        sent += 1;
        let next = start + interval.saturating_mul(u32::try_from(seq + 1).unwrap_or(u32::MAX));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let deadline = Instant::now() + wait;
    let answered = || {
        let v = rtts.lock().unwrap_or_else(PoisonError::into_inner);
        v.iter().flatten().count() as u64
    };
    while answered() < sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    done.store(true, Ordering::Relaxed);
    let _ = reader.join();
    let v = rtts.lock().unwrap_or_else(PoisonError::into_inner);
    let samples: Vec<f64> = v.iter().flatten().copied().collect();
    report("udp", target, sent, &samples)
}

/// Times the handshake, then `count` sequential request/echo round trips (each bounded by
/// `wait`; the first that times out ends the run, so `sent` counts the round trips tried:
/// TCP retransmits, so a lossy link shows as slow round trips, not as lost ones).
fn ping_tcp(target: SocketAddrV4, count: u64, wait: Duration) -> PingReport {
    let started = Instant::now();
    let mut conn = match TcpStream::connect_timeout(&SocketAddr::V4(target), wait) {
        Ok(c) => c,
        Err(e) => {
            return PingReport {
                error: Some(format!("connect: {e}")),
                ..report("tcp", target, count, &[])
            };
        }
    };
    let connect_ms = ms(started.elapsed());
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(wait));
    let mut rtts = Vec::new();
    let mut error = None;
    let mut attempted = 0;
    for seq in 0..count {
        attempted += 1;
        let mut msg = [0u8; TCP_SIZE];
        msg[..8].copy_from_slice(&seq.to_le_bytes());
        let t = Instant::now();
        let mut back = [0u8; TCP_SIZE];
        match conn
            .write_all(&msg)
            .and_then(|()| conn.read_exact(&mut back))
        {
            Ok(()) if back == msg => rtts.push(ms(t.elapsed())),
            Ok(()) => {
                error = Some(format!("echo {seq} came back changed"));
                break;
            }
            Err(e) => {
                error = Some(format!("round trip {seq}: {e}"));
                break;
            }
        }
    }
    PingReport {
        connect_ms: Some(connect_ms),
        error,
        ..report("tcp", target, attempted, &rtts)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
    use std::time::Duration;

    use super::{Rtt, ping_tcp, ping_udp};

    #[test]
    fn rtt_summary() {
        let r = Rtt::of(&[3.0, 1.0, 2.0, 10.0]).expect("samples");
        assert_eq!((r.min, r.max, r.avg), (1.0, 10.0, 4.0));
        assert_eq!(r.p50, 3.0);
        assert!(Rtt::of(&[]).is_none());
    }

    /// The pingers against nothing listening: answers are counted as lost, not invented.
    #[test]
    fn pings_to_a_closed_port_are_not_answered() {
        let free = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = free.local_addr().expect("addr").port();
        drop(free);
        let target = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        let udp = ping_udp(
            target,
            3,
            Duration::from_millis(1),
            Duration::from_millis(100),
        );
        assert_eq!((udp.sent, udp.received, udp.loss_percent), (3, 0, 100.0));
        let tcp = ping_tcp(target, 3, Duration::from_millis(500));
        assert_eq!(tcp.received, 0);
        assert!(tcp.error.is_some_and(|e| e.starts_with("connect")));
    }
}
