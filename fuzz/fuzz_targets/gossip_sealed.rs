//! The sealed gossip path with inputs the fuzzer cannot forge by itself: a fuzzed key and
//! plaintext are sealed (`Keyring::seal`, memberlist's AES-GCM envelope), and the datagram
//! goes through `gossip::transport::unwrap` as the receiver does, so the decoders behind
//! encryption (`meridian_fuzz::handle_opened`) see arbitrary plaintext.
//!
//! Asserts: `open(seal(x)) == x` for 16- and 32-byte keys; the envelope is exactly
//! `SEAL_OVERHEAD` longer; flipping any one byte, truncating, or opening with another key
//! is refused (never a panic, never other plaintext); a key rotation (`install` + `use_key`)
//! still opens packets sealed with the old primary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian_agent::gossip::keyring::{GossipKey, Keyring, OpenError, SEAL_OVERHEAD};
use meridian_agent::gossip::transport::{Rejected, unwrap};
use meridian_fuzz::handle_opened;

fuzz_target!(|data: &[u8]| {
    // [len selector][flip index: 2 bytes][key bytes][plaintext]
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let key_len = if sel & 1 == 0 { 16 } else { 32 };
    if rest.len() < 2 + key_len {
        return;
    }
    let flip = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
    let (key_bytes, plaintext) = rest[2..].split_at(key_len);
    let key = GossipKey::from_bytes(key_bytes).expect("16 or 32 bytes");
    let mut ring = Keyring::new(key.clone()).expect("keyring");

    let sealed = ring.seal(plaintext).expect("a keyring with a key seals");
    assert_eq!(sealed.len(), plaintext.len() + SEAL_OVERHEAD);
    assert_eq!(ring.open(&sealed).as_deref(), Ok(plaintext));
    let opened = unwrap(&ring, true, &sealed).expect("the receiver opens it");
    assert_eq!(opened, plaintext);
    handle_opened(&opened);

    let mut tampered = sealed.clone();
    let at = flip % tampered.len();
    tampered[at] ^= 0x80;
    let refused = unwrap(&ring, true, &tampered);
    if at == 0 {
        assert_eq!(
            refused,
            Err(Rejected::Malformed),
            "tag byte 0x81 is no envelope"
        );
    } else {
        assert_eq!(refused, Err(Rejected::Undecryptable));
    }
    assert!(ring.open(&sealed[..sealed.len() - 1]).is_err());

    let mut other_bytes = key_bytes.to_vec();
    other_bytes[0] ^= 1;
    let other = GossipKey::from_bytes(&other_bytes).expect("same length");
    let stranger = Keyring::new(other.clone()).expect("keyring");
    assert_eq!(stranger.open(&sealed), Err(OpenError::NoKeyMatched));

    ring.install(other.clone()).expect("install");
    ring.use_key(&other).expect("use");
    assert_eq!(ring.open(&sealed).as_deref(), Ok(plaintext));
});
