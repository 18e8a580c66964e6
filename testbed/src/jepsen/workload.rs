//! The clients: threads that each send one KV request at a time — read, write or CAS on a
//! few keys, chosen by a seeded generator — through one server (moving to the next server
//! when theirs fails), and record every request and its answer as an [`Op`].
//!
//! How an answer is classified decides what the checker may assume, so it follows what
//! Meridian promises: `No cluster leader` and a refused connection mean "not applied"
//! (`Fail`); a timeout, a dropped connection or `write outcome unknown` mean "maybe"
//! (`Unknown`).

use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use super::history::{Call, Op, Outcome};

/// How reads ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// `?consistent`: the leader confirms its leadership with a quorum first.
    Consistent,
    /// No parameter: Consul's default mode, answered by the leader without a round trip.
    Default,
    /// `?stale`: any server answers from its own state. Not linearizable by design — a
    /// run with it shows the checker finding the stale reads.
    Stale,
}

impl ReadMode {
    /// The query string a read carries.
    pub fn query(self) -> &'static str {
        match self {
            ReadMode::Consistent => "?consistent",
            ReadMode::Default => "",
            ReadMode::Stale => "?stale",
        }
    }

    /// As typed on the command line.
    pub fn label(self) -> &'static str {
        match self {
            ReadMode::Consistent => "consistent",
            ReadMode::Default => "default",
            ReadMode::Stale => "stale",
        }
    }
}

/// What the clients do.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The servers' HTTP base URLs.
    pub urls: Vec<String>,
    /// How many clients (threads).
    pub clients: u32,
    /// How many keys.
    pub keys: u32,
    /// Key prefix (unique per run).
    pub prefix: String,
    /// Read mode.
    pub reads: ReadMode,
    /// The generator's seed.
    pub seed: u64,
    /// A client gives up on a request after this long (its outcome is then unknown).
    pub timeout: Duration,
}

/// Nanoseconds since `origin`.
fn since(origin: Instant) -> u64 {
    origin.elapsed().as_nanos() as u64
}

/// Runs every client until `until`; the ops, in no particular order. Times are counted
/// from `origin` plus `offset_ns`.
pub fn run(w: &Workload, origin: Instant, offset_ns: u64, until: Instant) -> Vec<Op> {
    let threads: Vec<_> = (0..w.clients)
        .map(|c| {
            let w = w.clone();
            std::thread::spawn(move || Client::new(&w, c, origin, offset_ns).run_until(until))
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect()
}

/// One `?consistent` read of every key, each retried (through each server in turn) until
/// one is answered or `deadline`: the history's last word on every key.
pub fn final_reads(w: &Workload, origin: Instant, offset_ns: u64, deadline: Instant) -> Vec<Op> {
    let mut client = Client::new(w, w.clients, origin, offset_ns);
    client.mode = ReadMode::Consistent;
    let mut ops = Vec::new();
    for k in 0..w.keys {
        let key = format!("{}k{k}", w.prefix);
        loop {
            let op = client.read(k as usize, &key);
            let answered = matches!(op.outcome, Outcome::Read { .. });
            ops.push(op);
            if answered || Instant::now() >= deadline {
                break;
            }
            client.next_server();
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    ops
}

/// One client: one connection pool, one request at a time.
struct Client {
    id: u32,
    http: Option<reqwest::blocking::Client>,
    urls: Vec<String>,
    server: usize,
    prefix: String,
    keys: u32,
    mode: ReadMode,
    rng: StdRng,
    origin: Instant,
    offset_ns: u64,
    seq: u64,
    /// Per key: the value and ModifyIndex this client last read (0 = absent).
    last_read: Vec<Option<(Option<String>, u64)>>,
}

impl Client {
    fn new(w: &Workload, id: u32, origin: Instant, offset_ns: u64) -> Client {
        let http = reqwest::blocking::Client::builder()
            .timeout(w.timeout)
            .connect_timeout(w.timeout)
            .build()
            .ok();
        Client {
            id,
            http,
            urls: w.urls.clone(),
            server: id as usize % w.urls.len().max(1),
            prefix: w.prefix.clone(),
            keys: w.keys,
            mode: w.reads,
            rng: StdRng::seed_from_u64(w.seed.wrapping_mul(1_000_003).wrapping_add(u64::from(id))),
            origin,
            offset_ns,
            seq: 0,
            last_read: vec![None; w.keys as usize],
        }
    }

    fn run_until(mut self, until: Instant) -> Vec<Op> {
        let mut ops = Vec::new();
        while Instant::now() < until {
            let k = self.rng.random_range(0..self.keys) as usize;
            let key = format!("{}k{k}", self.prefix);
            let roll: f64 = self.rng.random();
            let op = if roll < 0.4 {
                self.read(k, &key)
            } else if roll < 0.7 || self.last_read[k].is_none() {
                self.write(&key)
            } else {
                self.cas(k, &key)
            };
            let failed = matches!(op.outcome, Outcome::Fail { .. } | Outcome::Unknown { .. });
            ops.push(op);
            if failed {
                // Like a real client with several servers: try the next one, and don't spin
                // while none can answer.
                self.next_server();
                std::thread::sleep(Duration::from_millis(20 + self.rng.random_range(0..80)));
            }
        }
        ops
    }

    fn next_server(&mut self) {
        self.server = (self.server + 1) % self.urls.len().max(1);
    }

    fn url(&self, key: &str) -> String {
        format!("{}/v1/kv/{key}", self.urls[self.server])
    }

    fn value(&mut self) -> String {
        self.seq += 1;
        format!("c{}-{}", self.id, self.seq)
    }

    fn op(&self, key: &str, call: Call, invoke_ns: u64, outcome: Outcome) -> Op {
        Op {
            client: self.id,
            server: self.server as u32,
            key: key.to_string(),
            call,
            invoke_ns,
            complete_ns: self.offset_ns + since(self.origin),
            outcome,
        }
    }

    fn read(&mut self, k: usize, key: &str) -> Op {
        let url = format!("{}{}", self.url(key), self.mode.query());
        let t0 = self.offset_ns + since(self.origin);
        let outcome = match self.send(self.http.as_ref().map(|h| h.get(&url))) {
            Answer::Body(404, _) => Some((None, 0)),
            Answer::Body(200, body) => parse_read(&body),
            _ => None,
        };
        let outcome = match outcome {
            Some((value, index)) => {
                if let Some(slot) = self.last_read.get_mut(k) {
                    *slot = Some((value.clone(), index));
                }
                Outcome::Read { value }
            }
            // A read that failed changed nothing: the checker leaves it out.
            None => Outcome::Fail {
                error: "read not answered".into(),
            },
        };
        self.op(key, Call::Read, t0, outcome)
    }

    fn write(&mut self, key: &str) -> Op {
        let value = self.value();
        let url = self.url(key);
        let t0 = self.offset_ns + since(self.origin);
        let req = self.http.as_ref().map(|h| h.put(&url).body(value.clone()));
        let outcome = classify_write(self.send(req));
        self.op(key, Call::Write { value }, t0, outcome)
    }

    fn cas(&mut self, k: usize, key: &str) -> Op {
        let (from, index) = self.last_read[k].take().unwrap_or((None, 0));
        let to = self.value();
        let url = format!("{}?cas={index}", self.url(key));
        let t0 = self.offset_ns + since(self.origin);
        let req = self.http.as_ref().map(|h| h.put(&url).body(to.clone()));
        let outcome = classify_write(self.send(req));
        self.op(key, Call::Cas { from, to }, t0, outcome)
    }

    fn send(&self, req: Option<reqwest::blocking::RequestBuilder>) -> Answer {
        let Some(req) = req else {
            return Answer::NotSent("no HTTP client".into());
        };
        match req.send() {
            Ok(r) => {
                let code = r.status().as_u16();
                match r.text() {
                    Ok(body) => Answer::Body(code, body),
                    Err(e) => Answer::Lost(e.to_string()),
                }
            }
            Err(e) if e.is_connect() && !e.is_timeout() => Answer::NotSent(e.to_string()),
            Err(e) => Answer::Lost(e.to_string()),
        }
    }
}

/// What came back from one request.
enum Answer {
    /// Status and body.
    Body(u16, String),
    /// Never reached a server (connection refused).
    NotSent(String),
    /// Sent, but no (whole) answer: timeout, reset.
    Lost(String),
}

/// Meridian's promises for a PUT, as the checker may rely on them.
fn classify_write(a: Answer) -> Outcome {
    match a {
        Answer::Body(200, body) => match body.trim() {
            "true" => Outcome::Done { applied: true },
            "false" => Outcome::Done { applied: false },
            other => Outcome::Unknown {
                error: format!("200 with body {other:?}"),
            },
        },
        Answer::Body(code, body) if body.contains("No cluster leader") => Outcome::Fail {
            error: format!("{code}: {}", body.trim()),
        },
        Answer::Body(code, body) if (400..500).contains(&code) => Outcome::Fail {
            error: format!("{code}: {}", body.trim()),
        },
        Answer::Body(code, body) => Outcome::Unknown {
            error: format!("{code}: {}", body.trim()),
        },
        Answer::NotSent(e) => Outcome::Fail { error: e },
        Answer::Lost(e) => Outcome::Unknown { error: e },
    }
}

/// `[{"Value": base64, "ModifyIndex": n}]` → (value, index).
fn parse_read(body: &str) -> Option<(Option<String>, u64)> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let e = v.as_array()?.first()?;
    let index = e["ModifyIndex"].as_u64()?;
    let value = match e["Value"].as_str() {
        None => String::new(),
        Some(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            String::from_utf8(bytes).ok()?
        }
    };
    Some((Some(value), index))
}
