//! Shared pieces of the fuzz targets: the gossip receive pipeline after the envelope is
//! opened, exactly as the agent runs it (`gossip::direct::parse`, then foca or a direct
//! message), minus the socket and the runtime task.

use std::sync::OnceLock;

use foca::{AccumulatingRuntime, Foca, PostcardCodec};
use meridian_agent::gossip::broadcast::{Clocks, GossipMessage, Handler, Inbox};
use meridian_agent::gossip::config::GossipConfig;
use meridian_agent::gossip::direct::{self, Payload};
use meridian_agent::gossip::{NodeId, Role, Tags};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The receiving member's identity and foca settings, built once.
fn receiver() -> &'static (NodeId, foca::Config) {
    static RECEIVER: OnceLock<(NodeId, foca::Config)> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let addr = "127.0.0.1:8301".parse().expect("literal address");
        let id = NodeId {
            name: "fuzz-receiver".into(),
            addr,
            bump: 1,
            tags: Tags::new(Role::Server, "dc1"),
        };
        let config = GossipConfig::lan("fuzz-receiver", addr).foca_config(3);
        (id, config)
    })
}

/// Feeds an opened payload (kind byte + body) to a fresh foca (seeded, so runs replay) and
/// the direct-message decoder, as `Runtime::handle_data` does; then, since foca hands
/// custom broadcasts to the handler only from well-formed packets, decodes the body as a
/// broadcast too. Errors are fine; panics are the bug.
pub fn handle_opened(payload: &[u8]) {
    let data = match direct::parse(payload) {
        Ok(Payload::Foca(data)) => data,
        Ok(Payload::Direct(_)) | Err(_) => return,
    };
    let (id, config) = receiver();
    let inbox = Inbox::default();
    let handler = Handler::new(inbox.clone(), &Clocks::default(), 64);
    let mut foca = Foca::with_custom_broadcast(
        id.clone(),
        config.clone(),
        StdRng::seed_from_u64(0),
        PostcardCodec,
        handler,
    );
    let mut runtime = AccumulatingRuntime::new();
    let _ = foca.handle_data(data, &mut runtime);
    if let Ok(msg) = GossipMessage::decode(data) {
        // What decodes must encode again (the runtime re-broadcasts it).
        let again = msg.encode().expect("a decoded broadcast encodes");
        assert_eq!(GossipMessage::decode(&again).ok(), Some(msg));
    }
}
