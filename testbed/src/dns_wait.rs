//! `testbed _dns-wait`: inside a host's namespace, ask the agent's DNS server for a name
//! (A records over UDP) every few milliseconds until an answer holds the expected address,
//! or a deadline passes. It prints `{"ready":true}` after its first answered query (the
//! scenario starts its clock only when every host's waiter runs), then one `DnsSeen` line.
//!
//! Blocking code for a short-lived process, like the other helpers; messages are built and
//! parsed with hickory-proto (the agent's own DNS library), sent with a std UDP socket.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::{Deserialize, Serialize};

/// Pause between queries.
const EVERY: Duration = Duration::from_millis(10);
/// How long one query waits for its answer.
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);

/// What `_dns-wait` found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DnsSeen {
    /// An answer held the expected address.
    pub seen: bool,
    /// Queries sent.
    pub queries: u64,
    /// The A records of the last answer.
    pub answers: Vec<Ipv4Addr>,
    /// The last error (timeout, bad answer), if any.
    pub error: Option<String>,
}

/// One A query to `server`; the addresses answered.
pub fn query_a(
    socket: &UdpSocket,
    server: SocketAddr,
    name: &Name,
) -> Result<Vec<Ipv4Addr>, String> {
    let id: u16 = rand::random();
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), RecordType::A));
    let bytes = msg.to_vec().map_err(|e| e.to_string())?;
    socket.send_to(&bytes, server).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + QUERY_TIMEOUT;
    // Skip stale answers to earlier queries (their ids differ).
    loop {
        if Instant::now() >= deadline {
            return Err("no answer".into());
        }
        let n = socket.recv(&mut buf).map_err(|e| e.to_string())?;
        let reply = Message::from_vec(&buf[..n]).map_err(|e| e.to_string())?;
        if reply.metadata.id != id {
            continue;
        }
        return Ok(reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect());
    }
}

fn print<T: Serialize>(value: &T) -> bool {
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string(value).unwrap_or_default();
    writeln!(out, "{text}").and_then(|()| out.flush()).is_ok()
}

/// `_dns-wait`: exit code 0 when seen, 1 when not (or on bad arguments).
pub fn wait(server: SocketAddr, name: &str, expect: Ipv4Addr, timeout: Duration) -> i32 {
    let mut seen = DnsSeen::default();
    let parsed = Name::from_ascii(name).map_err(|e| e.to_string());
    let socket = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.set_read_timeout(Some(QUERY_TIMEOUT)).map(|()| s))
        .map_err(|e| e.to_string());
    let (name, socket) = match (parsed, socket) {
        (Ok(n), Ok(s)) => (n, s),
        (Err(e), _) | (_, Err(e)) => {
            seen.error = Some(e);
            print(&seen);
            return 1;
        }
    };
    let deadline = Instant::now() + timeout;
    let mut ready = false;
    while Instant::now() < deadline {
        seen.queries += 1;
        match query_a(&socket, server, &name) {
            Ok(answers) => {
                seen.error = None;
                if !ready {
                    ready = print(&serde_json::json!({ "ready": true }));
                }
                seen.seen = answers.contains(&expect);
                seen.answers = answers;
                if seen.seen {
                    break;
                }
            }
            Err(e) => seen.error = Some(e),
        }
        std::thread::sleep(EVERY);
    }
    print(&seen);
    i32::from(!seen.seen)
}
