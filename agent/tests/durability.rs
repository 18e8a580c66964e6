//! Durable means durable: every acknowledged write survives `kill -9` of the server, with the
//! same indexes, and a graceful stop exits cleanly and keeps everything too.

mod common;

use common::Agent;
use serde_json::Value;
use std::collections::BTreeMap;

fn indexes(a: &Agent, prefix: &str) -> BTreeMap<String, (u64, u64, String)> {
    let v = a.get_json(&format!("/v1/kv/{prefix}?recurse"));
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let key = e["Key"].as_str().unwrap().to_string();
            let val = e["Value"].as_str().unwrap_or("").to_string();
            (
                key,
                (
                    e["CreateIndex"].as_u64().unwrap(),
                    e["ModifyIndex"].as_u64().unwrap(),
                    val,
                ),
            )
        })
        .collect()
}

#[test]
fn acknowledged_writes_survive_kill_9_with_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::durable(dir.path());
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 40;
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let url = agent.url.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                for i in 0..PER_WRITER {
                    let r = client
                        .put(format!("{url}/v1/kv/d/{w}/{i}"))
                        .body(format!("v{w}-{i}"))
                        .send()
                        .unwrap();
                    assert_eq!(r.text().unwrap(), "true", "write acknowledged");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let before = indexes(&agent, "d/");
    assert_eq!(before.len(), WRITERS * PER_WRITER);
    // A session and its lock are durable state too.
    let (_, body) = agent.put("/v1/session/create", r#"{"Name":"keep"}"#);
    let sid = serde_json::from_str::<Value>(&body).unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        agent.put(&format!("/v1/kv/d/lock?acquire={sid}"), "x").1,
        "true"
    );

    agent.kill9();

    let agent = Agent::durable(dir.path());
    let after = indexes(&agent, "d/");
    let lock = after.get("d/lock").cloned();
    let mut after = after;
    after.remove("d/lock");
    assert_eq!(
        after, before,
        "every acknowledged write is back with the same indexes"
    );
    assert!(lock.is_some());
    let session = agent.get_json(&format!("/v1/session/info/{sid}"));
    assert_eq!(session[0]["ID"], sid.as_str());
    assert_eq!(agent.get_json("/v1/kv/d/lock")[0]["Session"], sid.as_str());
}

#[test]
fn graceful_stop_exits_zero_and_restart_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::durable(dir.path());
    assert_eq!(agent.put("/v1/kv/keep/me", "1").1, "true");
    let before = indexes(&agent, "keep/");
    let status = agent.terminate();
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");
    let agent = Agent::durable(dir.path());
    assert_eq!(indexes(&agent, "keep/"), before);
}
