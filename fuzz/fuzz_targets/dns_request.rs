//! A DNS request off the wire, through the agent's real handling path: hickory's request
//! parser (`Request::from_bytes`, which the server runs before any handler; what it refuses
//! is answered FORMERR by hickory or dropped) and then `dns::ConsulDns::handle_request`,
//! with the real `ResponseHandle` encoding the reply as the UDP or TCP server would.
//!
//! The handler answers from a real single-server agent catalog built once per process: a
//! raft node on SQLite in a temp dir, its server handle (which registers itself as `consul`)
//! and a few nodes and services (IPv4, IPv6, service addresses, tags, node meta, a critical
//! instance). No recursors, so names outside the domains are refused without I/O. Bit 0 of
//! the request ID picks UDP or TCP.
//!
//! Asserts: nothing panics; every query gets exactly one reply, a well-formed DNS message
//! with the request's ID; it is never SERVFAIL (the catalog is always reachable here, so a
//! SERVFAIL would mean the reply could not be encoded, e.g. untrimmed for UDP); a UDP reply
//! fits the client's buffer (512 bytes, or its EDNS size).
#![no_main]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use hickory_server::net::BufDnsStreamHandle;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Message, MessageType, ResponseCode};
use hickory_server::server::{Request, RequestHandler, ResponseHandle};
use libfuzzer_sys::fuzz_target;
use meridian_agent::catalog::{Check, Command, HealthStatus, Node, RegisterOp, Service};
use meridian_agent::dns::{ConsulDns, Recursors, Settings, Source};
use meridian_agent::raft::{RaftConfig, RaftNode, ServerNode};
use meridian_agent::rpc::Router;
use meridian_agent::server::{ClusterParts, SelfInfo, ServerHandle};
use meridian_config::DnsConfig;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

struct Fixture {
    rt: Runtime,
    dns: ConsulDns,
    _dir: tempfile::TempDir,
}

fn register(
    node: &str,
    addr: &str,
    meta: &[(&str, &str)],
    svc: Option<Service>,
    status: HealthStatus,
) -> Command {
    let checks = svc
        .iter()
        .map(|s| Check {
            node: node.into(),
            check_id: format!("service:{}", s.id),
            name: "svc".into(),
            status,
            service_id: s.id.clone(),
            service_name: s.service.clone(),
            ..Check::default()
        })
        .collect();
    Command::Register(Box::new(RegisterOp {
        node: Node {
            node: node.into(),
            address: addr.into(),
            datacenter: "dc1".into(),
            meta: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            ..Node::default()
        },
        skip_node_update: false,
        service: svc,
        checks,
    }))
}

fn service(id: &str, name: &str, addr: &str, port: u16, tags: &[&str]) -> Service {
    Service {
        id: id.into(),
        service: name.into(),
        address: addr.into(),
        port,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Service::default()
    }
}

async fn build() -> (ConsulDns, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = ServerNode {
        rpc_addr: "127.0.0.1:8300".into(),
        name: "s1".into(),
        node_id: "6e4f8f4a-0000-4000-8000-000000000001".into(),
    };
    let cfg = RaftConfig {
        heartbeat_interval: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(150),
        election_timeout_max: Duration::from_millis(300),
        ..RaftConfig::default()
    };
    let raft = RaftNode::open(dir.path(), 1, node, cfg)
        .await
        .expect("raft");
    raft.bootstrap_single().await.expect("bootstrap");
    raft.wait_for_leader(Duration::from_secs(10))
        .await
        .expect("leader");
    let me = SelfInfo {
        node: "s1".into(),
        node_id: "6e4f8f4a-0000-4000-8000-000000000001".into(),
        datacenter: "dc1".into(),
        address: "127.0.0.1".into(),
        rpc_port: 8300,
        meta: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
    };
    let cluster = ClusterParts {
        hold: Duration::from_secs(2),
        ..ClusterParts::default()
    };
    // Never cancelled: the server lives as long as the fuzzing process.
    let (tracker, token) = (TaskTracker::new(), CancellationToken::new());
    let server = ServerHandle::start(raft, me, cluster, &tracker, token);
    assert!(server.ready().await, "server registers itself");
    let many: Vec<String> = (0..40).map(|i| format!("10.1.0.{i}")).collect();
    let mut cmds = vec![
        register(
            "web-1",
            "10.0.0.1",
            &[("rack", "r1")],
            Some(service("web-1", "web", "", 80, &["v1", "primary"])),
            HealthStatus::Passing,
        ),
        register(
            "web-2",
            "10.0.0.2",
            &[],
            Some(service("web-2", "web", "192.0.2.10", 8080, &["v2"])),
            HealthStatus::Warning,
        ),
        register(
            "web-3",
            "10.0.0.3",
            &[],
            Some(service("web-3", "web", "", 80, &["v1"])),
            HealthStatus::Critical,
        ),
        register(
            "db-1",
            "2001:db8::1",
            &[("a", "b"), ("long", &"x".repeat(200))],
            Some(service("db-1", "db", "", 5432, &[])),
            HealthStatus::Passing,
        ),
        register(
            "named",
            "host.example.com",
            &[],
            Some(service("named", "named", "", 1, &[])),
            HealthStatus::Passing,
        ),
    ];
    for (i, addr) in many.iter().enumerate() {
        let name = format!("big-{i}");
        cmds.push(register(
            &name,
            addr,
            &[("i", &i.to_string())],
            Some(service(&name, "big", "", 9000, &["t"])),
            HealthStatus::Passing,
        ));
    }
    for cmd in cmds {
        server.apply(cmd).await.expect("register");
    }
    let router = Router::new("dc1".into(), server);
    let source = Source::new(router, "s1".into(), true, Duration::from_secs(86_400 * 365));
    let dns = DnsConfig {
        enable_additional_node_meta_txt: true,
        ..DnsConfig::default()
    };
    let settings = Settings {
        domains: vec!["consul.".into(), "alt.example.".into()],
        dns,
    };
    let recursors = Recursors::new(&[], "sequential", Duration::from_secs(1));
    (ConsulDns::new(source, settings, recursors), dir)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (dns, dir) = rt.block_on(build());
        Fixture { rt, dns, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let src: SocketAddr = "192.0.2.99:53000".parse().expect("literal address");
    let protocol = match data.get(1) {
        Some(b) if b & 1 == 1 => Protocol::Tcp,
        _ => Protocol::Udp,
    };
    // hickory's server parses first; what it cannot parse never reaches the handler.
    let Ok(req) = Request::from_bytes(data.to_vec(), src, protocol) else {
        return;
    };
    if req.metadata.message_type == MessageType::Response {
        return; // hickory drops responses (reflection)
    }
    let (stream, mut replies) = BufDnsStreamHandle::new(src);
    let handle = ResponseHandle::new(src, stream, protocol);
    fx.rt
        .block_on(fx.dns.handle_request::<_, TokioTime>(&req, handle));
    let reply = futures::executor::block_on(replies.next()).expect("one reply per query");
    let bytes = reply.bytes();
    let msg = Message::from_vec(bytes).expect("the reply parses");
    assert_eq!(msg.metadata.id, req.metadata.id);
    assert_eq!(msg.metadata.message_type, MessageType::Response);
    assert_ne!(
        msg.metadata.response_code,
        ResponseCode::ServFail,
        "{msg:?}"
    );
    if protocol == Protocol::Udp {
        let limit = req
            .edns
            .as_ref()
            .map_or(512, |e| usize::from(e.max_payload().max(512)));
        assert!(
            bytes.len() <= limit,
            "{} bytes for a {limit}-byte buffer",
            bytes.len()
        );
    }
});
