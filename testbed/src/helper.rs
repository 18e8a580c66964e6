//! The testbed's side inside a namespace: hidden subcommands that `testbed` runs as
//! `ip netns exec NS testbed _probe ...`, because an agent is reachable only from inside
//! the namespaces (the root namespace has no route to them, by design).
//!
//! Blocking code for short-lived processes: `main` calls these before it builds a tokio
//! runtime. Output is JSON lines on stdout, read by `probe` (and the scenarios): `_probe`
//! (GETs or a PUT, once), `_kv-writer` (KV writes one at a time) and `_reads` (paced,
//! timed GETs in a loop).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The answer to one GET, as `_probe` prints it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reply {
    /// The URL asked.
    pub url: String,
    /// HTTP status, when an answer came.
    pub status: Option<u16>,
    /// `X-Consul-Index`.
    pub index: Option<u64>,
    /// The body (text).
    pub body: String,
    /// Why no answer came.
    pub error: Option<String>,
    /// The answer's `X-Consul-*` and `X-Meridian-*` headers (names lowercase).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// One write of `_kv-writer`, as it prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteRecord {
    /// Sequence number: key `<prefix>/<n>` with value `v<n>`.
    pub n: u64,
    /// The agent answered 200 with `true`: acknowledged.
    pub ok: bool,
    /// Milliseconds since the writer started, when the write was sent.
    pub sent_ms: u64,
    /// Milliseconds since the writer started, when the write ended.
    pub at_ms: u64,
    /// Why a write was not acknowledged.
    pub error: Option<String>,
}

/// The value written for key number `n`.
pub fn value_of(n: u64) -> String {
    format!("v{n}")
}

fn client(timeout: Duration) -> Result<reqwest::blocking::Client, String> {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(1))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())
}

/// `_probe [--put BODY] URL...`: GETs (or PUTs `BODY` to) each URL, prints one `Reply` per
/// line. Exit code 0 unless the output cannot be written.
pub fn probe(urls: &[String], put: Option<&str>) -> i32 {
    // Short for reads: `status` asks every host, and a cut-off agent must not stall the
    // table long. Longer for writes: an agent without a leader answers `No cluster leader`
    // only after its own forwarding deadline (about 2 s).
    let http = client(Duration::from_secs(if put.is_some() { 10 } else { 2 }));
    let mut out = std::io::stdout().lock();
    for url in urls {
        let reply = match &http {
            Ok(http) => match put {
                Some(body) => send(http.put(url).body(body.to_string()), url),
                None => send(http.get(url), url),
            },
            Err(e) => Reply {
                url: url.clone(),
                error: Some(e.clone()),
                ..Reply::default()
            },
        };
        let line = serde_json::to_string(&reply).unwrap_or_default();
        if writeln!(out, "{line}").is_err() {
            return 1;
        }
    }
    0
}

fn send(request: reqwest::blocking::RequestBuilder, url: &str) -> Reply {
    match request.send() {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let index = resp
                .headers()
                .get("X-Consul-Index")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let headers = resp
                .headers()
                .iter()
                .filter(|(k, _)| {
                    k.as_str().starts_with("x-consul-") || k.as_str().starts_with("x-meridian-")
                })
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect();
            Reply {
                url: url.to_string(),
                status: Some(status),
                index,
                body: resp.text().unwrap_or_default(),
                error: None,
                headers,
            }
        }
        Err(e) => Reply {
            url: url.to_string(),
            error: Some(e.to_string()),
            ..Reply::default()
        },
    }
}

/// One GET of `_reads`, as it prints it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReadRecord {
    /// Which of the helper's URLs (0-based, in the order given).
    pub url: usize,
    /// Wall clock when it was sent, in milliseconds since the Unix epoch (the same clock
    /// as the scenario's, on the same machine).
    pub sent_unix_ms: u64,
    /// Milliseconds until the answer (or the error) came.
    pub ms: f64,
    /// HTTP status, when an answer came.
    pub status: Option<u16>,
    /// The body (text).
    pub body: String,
    /// Why no answer came.
    pub error: Option<String>,
    /// The answer's `X-Consul-*` and `X-Meridian-*` headers (names lowercase).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A flag that a thread sets when stdin closes: the parent stops a helper that way.
fn stop_on_stdin_close() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_reader = stop.clone();
    std::thread::spawn(move || {
        let mut sink = String::new();
        while std::io::stdin()
            .lock()
            .read_line(&mut sink)
            .is_ok_and(|n| n > 0)
        {
            sink.clear();
        }
        stop_reader.store(true, Ordering::Relaxed);
    });
    stop
}

/// How `_reads` paces and bounds itself.
#[derive(Debug, Clone)]
pub struct ReadPace {
    /// At most one GET per this much time (0: back to back).
    pub every: Duration,
    /// Timeout of one GET.
    pub timeout: Duration,
    /// Stop after this many GETs.
    pub max_count: u64,
    /// Stop after this long.
    pub max_time: Duration,
    /// Also stop when stdin closes (a parent that stops the loop that way); otherwise
    /// stdin is not read (a one-shot batch run with stdin closed from the start).
    pub stop_on_eof: bool,
    /// PUT this body instead of GETting (timed writes); `{n}` in it becomes the request's
    /// number (0-based), so every write can carry its own value.
    pub put: Option<String>,
}

/// `_reads`: GETs (or, with `pace.put`, PUTs) `urls` in turn, one at a time and at most one per `pace.every`, printing
/// a `ReadRecord` per GET, until a bound of `pace` is reached (or stdin closes, with
/// `pace.stop_on_eof`). Every GET
/// has a timeout, so the loop is bounded; the connection is kept alive between GETs.
pub fn reads(urls: &[String], pace: ReadPace) -> i32 {
    if urls.is_empty() {
        return 0;
    }
    let http = match client(pace.timeout) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(cause = %e, "no HTTP client");
            return 1;
        }
    };
    let stop = if pace.stop_on_eof {
        stop_on_stdin_close()
    } else {
        Arc::new(AtomicBool::new(false))
    };
    let deadline = Instant::now() + pace.max_time;
    let mut out = std::io::stdout().lock();
    for n in 0..pace.max_count {
        let sent = Instant::now();
        if stop.load(Ordering::Relaxed) || sent >= deadline {
            break;
        }
        let url = n as usize % urls.len();
        let sent_unix_ms = unix_ms();
        let request = match &pace.put {
            Some(body) => http
                .put(&urls[url])
                .body(body.replace("{n}", &n.to_string())),
            None => http.get(&urls[url]),
        };
        let reply = send(request, &urls[url]);
        let rec = ReadRecord {
            url,
            sent_unix_ms,
            ms: sent.elapsed().as_secs_f64() * 1000.0,
            status: reply.status,
            body: reply.body,
            error: reply.error,
            headers: reply.headers,
        };
        let line = serde_json::to_string(&rec).unwrap_or_default();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return 1;
        }
        if let Some(rest) = pace.every.checked_sub(sent.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    0
}

/// `_kv-writer`: writes `<prefix>/<n>` = `v<n>` one at a time through `base` (an agent's
/// HTTP address), printing a `WriteRecord` per write, until stdin closes, `max_keys` writes
/// were made or `max_secs` passed. Every write has a timeout, so the loop is bounded.
pub fn kv_writer(base: &str, prefix: &str, max_keys: u64, max_secs: u64) -> i32 {
    let http = match client(Duration::from_secs(2)) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(cause = %e, "no HTTP client");
            return 1;
        }
    };
    // The parent closes our stdin to stop us; a thread notices.
    let stop = stop_on_stdin_close();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(max_secs);
    let mut out = std::io::stdout().lock();
    for n in 0..max_keys {
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            break;
        }
        let url = format!("{base}/v1/kv/{prefix}/{n}");
        let sent = started.elapsed();
        let result = http.put(&url).body(value_of(n)).send();
        let (ok, error) = match result {
            Ok(r) if r.status().is_success() => match r.text() {
                Ok(body) if body.trim() == "true" => (true, None),
                Ok(body) => (false, Some(format!("answer {body:?}"))),
                Err(e) => (false, Some(e.to_string())),
            },
            Ok(r) => {
                let status = r.status();
                (
                    false,
                    Some(format!("{status}: {}", r.text().unwrap_or_default())),
                )
            }
            Err(e) => (false, Some(e.to_string())),
        };
        if !ok {
            // Do not spin while there is no leader: a short pause between failed writes.
            std::thread::sleep(Duration::from_millis(20));
        }
        let rec = WriteRecord {
            n,
            ok,
            sent_ms: u64::try_from(sent.as_millis()).unwrap_or(u64::MAX),
            at_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error,
        };
        let line = serde_json::to_string(&rec).unwrap_or_default();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return 1;
        }
    }
    0
}
