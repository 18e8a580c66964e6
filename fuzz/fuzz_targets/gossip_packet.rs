//! A gossip datagram off the wire, through the receive path: the envelope
//! (`gossip::transport::unwrap`: plaintext tag 0, or sealed tag 1 opened with the keyring),
//! then the opened payload's kind byte, foca's postcard decoder and the direct-message and
//! custom-broadcast decoders (`meridian_fuzz::handle_opened`).
//!
//! Runs each datagram twice: through a pool without encryption (plaintext accepted) and
//! through an encrypted one with `verify_incoming` (plaintext refused; sealed packets must
//! open with its key). Asserts: nothing panics; plaintext is refused exactly when the
//! encrypted pool should refuse it; an opened packet is shorter than what was received.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use meridian_agent::gossip::keyring::{GossipKey, Keyring, SEAL_OVERHEAD};
use meridian_agent::gossip::transport::{PLAINTEXT_TAG, Rejected, unwrap};
use meridian_fuzz::handle_opened;

fn keyed() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        let key = GossipKey::from_bytes(&[7; 32]).expect("32-byte key");
        Keyring::new(key).expect("keyring")
    })
}

fuzz_target!(|packet: &[u8]| {
    let open = Keyring::default();
    if let Ok(payload) = unwrap(&open, true, packet) {
        assert_eq!(packet.first(), Some(&PLAINTEXT_TAG));
        assert_eq!(payload.len() + 1, packet.len());
        handle_opened(&payload);
    }
    match unwrap(keyed(), true, packet) {
        Ok(payload) => {
            assert!(payload.len() + SEAL_OVERHEAD == packet.len());
            handle_opened(&payload);
        }
        Err(Rejected::Plaintext) => assert_eq!(packet.first(), Some(&PLAINTEXT_TAG)),
        Err(Rejected::Malformed | Rejected::Undecryptable) => {}
    }
});
