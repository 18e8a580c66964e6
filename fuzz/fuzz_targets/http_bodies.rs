//! JSON request bodies of the main write endpoints, through each handler's decode step
//! (`meridian_agent::fuzzing::decode_body`): catalog register/deregister, agent service and
//! check register, txn, session create, prepared query create, config entries, coordinate
//! update. The first byte picks the endpoint; the rest is the body.
//!
//! Asserts: nothing panics; a refused body is an `Err` the client is told about as a 4xx
//! (400 or 413), except session create's TTL range error, which Consul answers 500.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian_agent::fuzzing::{Endpoint, decode_body};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let endpoint = Endpoint::ALL[usize::from(pick) % Endpoint::ALL.len()];
    if let Err(e) = decode_body(endpoint, body) {
        let status = e.status();
        let ttl_range = endpoint == Endpoint::SessionCreate && e.to_string().contains("TTL");
        assert!(
            status.is_client_error() || ttl_range,
            "{endpoint:?}: {status} for a bad body: {e}"
        );
    }
});
