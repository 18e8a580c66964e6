//! Durable means durable: every acknowledged write survives `kill -9` of the server, with the
//! same indexes, and a graceful stop exits cleanly and keeps everything too; a three-server
//! datacenter killed all at once under write load, again and again, keeps every
//! acknowledged write with its value.

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

/// What one writer knows about one key: the last value acknowledged, and the values sent
/// after it whose outcome is unknown (error answer or the server died mid-request).
#[derive(Default, Clone, Debug)]
struct KeyHistory {
    acked: Option<String>,
    unknown: Vec<String>,
}

impl KeyHistory {
    /// Whether `found` (None: key absent) is a value this history allows.
    fn allows(&self, found: Option<&str>) -> bool {
        match found {
            None => self.acked.is_none(),
            Some(v) => self.acked.as_deref() == Some(v) || self.unknown.iter().any(|u| u == v),
        }
    }
}

/// Writer `w` puts rounds of values on its keys through `url` until `stop`; returns its
/// keys' histories and how many writes were acknowledged.
fn write_until(
    url: &str,
    w: usize,
    cycle: usize,
    mut hist: BTreeMap<String, KeyHistory>,
    acked: &std::sync::atomic::AtomicUsize,
    stop: &std::sync::atomic::AtomicBool,
) -> BTreeMap<String, KeyHistory> {
    use std::sync::atomic::Ordering;
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("crash/{w}/{}", seq % 4);
        let value = format!("c{cycle}-w{w}-{seq}");
        seq += 1;
        let ok = client
            .put(format!("{url}/v1/kv/{key}"))
            .body(value.clone())
            .send()
            .ok()
            .filter(|r| r.status() == 200)
            .and_then(|r| r.text().ok())
            .is_some_and(|t| t == "true");
        let h = hist.entry(key).or_default();
        if ok {
            h.acked = Some(value);
            h.unknown.clear();
            acked.fetch_add(1, Ordering::Relaxed);
        } else {
            h.unknown.push(value);
            // A dead or leaderless server: don't spin.
            std::thread::sleep(common::POLL);
        }
    }
    hist
}

/// Three servers, several writers through different servers, then SIGKILL of all three at
/// once while writes are in flight; restart and check that every key holds its last
/// acknowledged value (or a later one whose outcome was unknown); repeated.
/// `MERIDIAN_CRASH_CYCLES` sets the number of cycles (default 5).
#[test]
fn crash_of_all_servers_under_write_load_loses_no_acknowledged_write() {
    use common::cluster::{Ports, agreed_leader, ports, server_with};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let cycles: usize = std::env::var("MERIDIAN_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    const WRITERS: usize = 6;
    let fast = ["-hcl", "performance { raft_multiplier = 1 }"];
    let dir = tempfile::tempdir().unwrap();
    let p: Vec<Ports> = (0..3).map(|_| ports()).collect();
    let seed = format!("127.0.0.1:{}", p[0].serf);
    let start = |i: usize| {
        let join = (i > 0).then_some(seed.as_str());
        server_with(dir.path(), &format!("s{}", i + 1), &p[i], join, &fast)
    };
    let mut hist: Vec<BTreeMap<String, KeyHistory>> = vec![BTreeMap::new(); WRITERS];
    let mut total_acked = 0;
    for cycle in 0..cycles {
        let servers: Vec<Option<Agent>> = (0..3).map(|i| Some(start(i))).collect();
        agreed_leader(&servers, "a leader after (re)start", |_| true);
        // Everything acknowledged before the last crash is back, with its value.
        check(servers[cycle % 3].as_ref().unwrap(), &hist, cycle);
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let url = servers[w % 3].as_ref().unwrap().url.clone();
                let h = std::mem::take(&mut hist[w]);
                let (stop, acked) = (stop.clone(), acked.clone());
                std::thread::spawn(move || write_until(&url, w, cycle, h, &acked, &stop))
            })
            .collect();
        common::wait_until(
            std::time::Duration::from_secs(30),
            "writes acknowledged",
            || acked.load(Ordering::Relaxed) >= 60,
        );
        // All three at once, writes in flight.
        for s in servers.into_iter().flatten() {
            s.kill9();
        }
        stop.store(true, Ordering::Relaxed);
        for (w, t) in writers.into_iter().enumerate() {
            hist[w] = t.join().unwrap();
        }
        total_acked += acked.load(Ordering::Relaxed);
    }
    let servers: Vec<Option<Agent>> = (0..3).map(|i| Some(start(i))).collect();
    agreed_leader(&servers, "a leader after the last restart", |_| true);
    check(servers[0].as_ref().unwrap(), &hist, cycles);
    eprintln!("{cycles} crash cycles, {total_acked} acknowledged writes, none lost");
}

/// Asserts every writer's keys hold values their histories allow (read `?consistent`).
fn check(a: &Agent, hist: &[BTreeMap<String, KeyHistory>], cycle: usize) {
    let (code, _, body) = a.get("/v1/kv/crash/?recurse&consistent");
    let found: BTreeMap<String, String> = if code == 404 {
        BTreeMap::new()
    } else {
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                use base64::Engine as _;
                let raw = e["Value"].as_str().unwrap_or("");
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .unwrap();
                let value = String::from_utf8(bytes).unwrap();
                (e["Key"].as_str().unwrap().to_string(), value)
            })
            .collect()
    };
    for h in hist {
        for (key, kh) in h {
            let got = found.get(key).map(String::as_str);
            assert!(
                kh.allows(got),
                "after crash {cycle}: {key} is {got:?}, but the last acknowledged value is {:?} \
                 (unknown outcome since: {:?})",
                kh.acked,
                kh.unknown
            );
        }
    }
}
