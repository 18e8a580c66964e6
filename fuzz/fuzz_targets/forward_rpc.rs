//! Server-to-server RPC on 8300 as the receiving server decodes it: the protobuf envelopes
//! (`ForwardRequest`/`ForwardResponse`, `RaftRequest`) with prost, then their payloads
//! (`meridian_agent::fuzzing`): a forwarded write's `[len][JSON header][body]` frame and its
//! catalog `Command`, a forward reply, raft `AppendEntries` and `Vote`, and an
//! `InstallSnapshot` down to its postcard rows and the state rebuilt from them.
//!
//! A forwarded write's command, and every normal entry of an `AppendEntries`, is then
//! applied to a fresh catalog `State` twice (the second apply hits the update paths), as the
//! leader's state machine would: `State::apply` must never panic on a command that decodes,
//! because every server applies the same log and would fail together.
//!
//! The first byte picks the message; the rest is tried both as the protobuf envelope and as
//! the bare payload, so the fuzzer need not learn protobuf framing to reach the payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian_agent::catalog::{Command, Request, State};
use meridian_agent::fuzzing;
use meridian_proto::v1::{ForwardRequest, ForwardResponse, RaftRequest};
use prost::Message;

/// The leader's clock in every applied request: fixed, so runs replay.
const NOW_MS: u64 = 1_700_000_000_000;

fn apply_twice(cmd: Command, id: Option<meridian_agent::catalog::RequestId>) {
    let mut state = State::new();
    let mut req = Request::new(NOW_MS, cmd);
    req.request_id = id;
    state.apply(1, &req);
    req.request_id = None;
    req.now_ms += 1000;
    state.apply(2, &req);
}

fn forward_request(payload: &[u8]) {
    if let Ok(Some((cmd, id))) = fuzzing::forward_request(payload) {
        apply_twice(cmd, id);
    }
}

fn append_entries(payload: &[u8]) {
    let Ok(requests) = fuzzing::append_entries(payload) else {
        return;
    };
    for req in requests {
        apply_twice(req.cmd, req.request_id);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    match pick % 5 {
        0 => {
            if let Ok(req) = ForwardRequest::decode(rest) {
                forward_request(&req.payload);
            }
            forward_request(rest);
        }
        1 => {
            if let Ok(resp) = ForwardResponse::decode(rest) {
                let _ = fuzzing::forward_reply(&resp.payload);
            }
            let _ = fuzzing::forward_reply(rest);
        }
        2 => {
            if let Ok(req) = RaftRequest::decode(rest) {
                append_entries(&req.payload);
            }
            append_entries(rest);
        }
        3 => {
            let _ = fuzzing::vote(rest);
        }
        _ => {
            let _ = fuzzing::install_snapshot(rest);
        }
    }
});
