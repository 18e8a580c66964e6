//! Test support: runs real `meridian` agents as child processes on loopback with port 0,
//! learns their HTTP and LAN gossip addresses from the JSON startup log, and kills them on
//! drop.

#![allow(dead_code, unreachable_pub)]

pub mod acl;
pub mod cluster;
pub mod federation;
pub mod pki;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Poll interval of waits on a condition (each wait has its own deadline).
pub const POLL: Duration = Duration::from_millis(20);

/// The `meridian` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_meridian"))
}

/// The `+short` answer lines of `dig @127.0.0.1 -p port name qtype`, with `extra` options.
pub fn dig_short_with(port: u16, name: &str, qtype: &str, extra: &[&str]) -> Vec<String> {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=5", "+tries=1"])
        .args(["+short", name, qtype])
        .args(extra)
        .output()
        .expect("dig (bind9-dnsutils) must be installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A running agent process.
pub struct Agent {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The address without scheme.
    pub addr: String,
    /// The LAN gossip address (`ip:port`).
    pub serf: String,
    /// The DNS port (UDP and TCP on the agent's client address), 0 when disabled.
    pub dns: u16,
    /// The HTTPS API address (`ip:port`), empty when `ports.https` is off.
    pub https: String,
    log_rx: mpsc::Receiver<String>,
    /// Log lines seen so far.
    pub log: Vec<String>,
}

/// `meridian agent -dev` on free HTTP and gossip ports with JSON logs, then `extra`.
pub fn dev_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "agent",
        "-dev",
        "-http-port",
        "0",
        "-serf-lan-port",
        "0",
        "-log-json",
    ];
    args.extend_from_slice(extra);
    args
}

impl Agent {
    /// `meridian agent -dev` on a free port.
    pub fn dev() -> Agent {
        Agent::start(&dev_args(&[]))
    }

    /// A `-dev` agent named `node` on free ports, with `extra` flags.
    pub fn dev_named(node: &str, extra: &[&str]) -> Agent {
        let mut args = dev_args(&["-node", node]);
        args.extend_from_slice(extra);
        Agent::start(&args)
    }

    /// A durable single server on `data_dir`.
    pub fn durable(data_dir: &Path) -> Agent {
        Agent::server_named(data_dir, "durable", &[])
    }

    /// A durable single server (`-bootstrap-expect 1`) named `node` on `data_dir`, on free
    /// ports, with `extra` flags.
    pub fn server_named(data_dir: &Path, node: &str, extra: &[&str]) -> Agent {
        Agent::server_named_env(data_dir, node, extra, &[])
    }

    /// [`Agent::server_named`] with extra environment variables.
    pub fn server_named_env(
        data_dir: &Path,
        node: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        let dir = data_dir.to_string_lossy().to_string();
        let mut args = vec![
            "agent",
            "-server",
            "-bootstrap-expect",
            "1",
            "-data-dir",
            &dir,
            "-node",
            node,
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
            "-http-port",
            "0",
            "-serf-lan-port",
            "0",
            "-log-json",
        ];
        args.extend_from_slice(extra);
        Agent::start_env(&args, env)
    }

    /// A client agent named `node` on `data_dir` that joins `join` (a gossip address), on
    /// free ports, with `extra` flags; returns once it knows a leader through a server.
    pub fn client_of(data_dir: &Path, node: &str, join: &str, extra: &[&str]) -> Agent {
        Agent::client_of_env(data_dir, node, join, extra, &[])
    }

    /// [`Agent::client_of`] with extra environment variables.
    pub fn client_of_env(
        data_dir: &Path,
        node: &str,
        join: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        let dir = data_dir.to_string_lossy().to_string();
        let mut args = vec![
            "agent",
            "-data-dir",
            &dir,
            "-node",
            node,
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
            "-http-port",
            "0",
            "-serf-lan-port",
            "0",
            "-retry-join",
            join,
            "-log-json",
        ];
        args.extend_from_slice(extra);
        Agent::start_env(&args, env)
    }

    /// Starts `meridian ARGS` and waits (up to 30 s) until it reports its HTTP address and
    /// has a leader.
    pub fn start(args: &[&str]) -> Agent {
        Agent::start_env(args, &[])
    }

    /// [`Agent::start`] with extra environment variables.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut agent = Agent::spawn_env(args, env);
        agent.learn_addresses("Meridian agent running");
        agent.wait_for_leader(Duration::from_secs(30));
        agent
    }

    /// Starts `meridian ARGS` and waits only until its listeners are bound (no leader
    /// needed: a `-bootstrap-expect` server waits for its peers).
    pub fn launch(args: &[&str]) -> Agent {
        let mut agent = Agent::spawn(args);
        agent.learn_addresses("Meridian agent listening");
        agent
    }

    /// Starts `meridian ARGS` and returns at once, before it has bound anything (its
    /// addresses are unknown: for tests of startup itself).
    pub fn launch_early(args: &[&str]) -> Agent {
        Agent::spawn(args)
    }

    /// Reads the HTTP, gossip and RPC addresses from the first log line containing `marker`.
    fn learn_addresses(&mut self, marker: &str) {
        let line = self.wait_log(Duration::from_secs(30), |l| l.contains(marker));
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        let field = |k: &str| v["fields"][k].as_str().unwrap_or_default().to_string();
        self.addr = field("http");
        assert!(!self.addr.is_empty(), "http field in {line}");
        self.url = format!("http://{}", self.addr);
        self.serf = field("serf_lan");
        self.https = field("https");
        self.dns = v["fields"]["dns"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0);
    }

    /// Spawns the process (server RPC on a free port unless `args` choose one) and starts
    /// collecting its output.
    fn spawn(args: &[&str]) -> Agent {
        Agent::spawn_env(args, &[])
    }

    /// [`Agent::spawn`] with extra environment variables.
    fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut all: Vec<&str> = args.to_vec();
        if args.first() == Some(&"agent") && !args.contains(&"-server-port") {
            all.extend(["-server-port", "0"]);
        }
        if args.first() == Some(&"agent") && !args.contains(&"-dns-port") {
            all.extend(["-dns-port", "0"]);
        }
        let mut child = Command::new(bin())
            .args(&all)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn meridian");
        let (tx, log_rx) = mpsc::channel();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Agent {
            child,
            url: String::new(),
            addr: String::new(),
            serf: String::new(),
            dns: 0,
            https: String::new(),
            log_rx,
            log: Vec::new(),
        }
    }

    /// Waits for a log line matching `pred`; panics with the log after `timeout`.
    pub fn wait_log(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        match self.try_wait_log(timeout, pred) {
            Some(line) => line,
            None => {
                let status = self.child.try_wait().ok().flatten();
                panic!(
                    "no matching log line within {timeout:?} (exit: {status:?}); log:\n{}",
                    self.log.join("\n")
                );
            }
        }
    }

    /// Waits for a log line matching `pred`; `None` after `timeout`.
    pub fn try_wait_log(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        if let Some(l) = self.log.iter().find(|l| pred(l)) {
            return Some(l.clone());
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log_rx.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Collects whatever the agent logs during `d` into [`Agent::log`] (to count lines
    /// over a span of time).
    pub fn collect_log(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.log_rx.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(_) => return,
            }
        }
    }

    /// Waits until `/v1/status/leader` names a leader.
    pub fn wait_for_leader(&self, timeout: Duration) {
        let url = format!("{}/v1/status/leader", self.url);
        wait_until(timeout, "a leader", || {
            reqwest::blocking::get(&url)
                .ok()
                .and_then(|r| r.json::<String>().ok())
                .is_some_and(|l| !l.is_empty())
        });
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (up to `timeout`) for the process to exit on its own; its status, or `None`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// `meridian ARGS` against this agent (`CONSUL_HTTP_ADDR`).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin())
            .args(args)
            .env_remove("MERIDIAN_HTTP_ADDR")
            .env("CONSUL_HTTP_ADDR", &self.addr)
            .output()
            .expect("run meridian")
    }

    /// Sends `signal` (`"TERM"`, `"INT"`; `kill`'s `-TERM` too) and waits (up to 20 s) for the exit; then reads
    /// the rest of the log, so that [`Agent::log`] holds every line the agent wrote.
    pub fn stop_with(&mut self, signal: &str) -> std::process::ExitStatus {
        let signal = signal.trim_start_matches('-');
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status();
        let status = self
            .wait_exit(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("agent did not exit after SIG{signal}"));
        // The readers stop at EOF and drop their senders: drain until disconnected.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log_rx.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("the log pipes stay open"),
            }
        }
        status
    }

    /// SIGKILL, no cleanup.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Writes everything the (stopped) process printed to `dir/<pid>-<µs since epoch>.log`:
    /// with `MERIDIAN_TEST_LOG_DIR=dir`, every agent a test starts leaves its whole log
    /// behind (run with `RUST_LOG=info,openraft=debug` to see raft's side of a failure).
    fn keep_log(&mut self, dir: &str) {
        while let Ok(line) = self.log_rx.recv_timeout(Duration::from_millis(200)) {
            self.log.push(line);
        }
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let path = format!("{dir}/{}-{micros}.log", self.child.id());
        if let Err(e) = std::fs::write(&path, self.log.join("\n")) {
            eprintln!("keeping the agent log in {path}: {e}");
        }
    }

    /// SIGTERM, then wait for exit; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.stop_with("TERM")
    }

    /// `GET path` → (status, headers, body).
    pub fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let r = reqwest::blocking::get(format!("{}{path}", self.url)).expect("GET");
        let (s, h) = (r.status().as_u16(), r.headers().clone());
        (s, h, r.text().unwrap_or_default())
    }

    /// `GET path` as JSON, asserting 200.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (s, _, body) = self.get(path);
        assert_eq!(s, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// `PUT path` with a body → (status, body).
    pub fn put(&self, path: &str, body: impl Into<reqwest::blocking::Body>) -> (u16, String) {
        let r = reqwest::blocking::Client::new()
            .put(format!("{}{path}", self.url))
            .body(body)
            .send()
            .expect("PUT");
        (r.status().as_u16(), r.text().unwrap_or_default())
    }

    /// `DELETE path` → (status, body).
    pub fn delete(&self, path: &str) -> (u16, String) {
        let r = reqwest::blocking::Client::new()
            .delete(format!("{}{path}", self.url))
            .send()
            .expect("DELETE");
        (r.status().as_u16(), r.text().unwrap_or_default())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(dir) = std::env::var("MERIDIAN_TEST_LOG_DIR") {
            self.keep_log(&dir);
        }
    }
}

/// How long gossip may take to converge in these tests.
pub const CONVERGE: Duration = Duration::from_secs(20);

/// stdout then stderr of a CLI run, for assertion messages.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `name → Status` of `/v1/agent/members` on `a` (empty if the agent does not answer).
pub fn statuses(a: &Agent) -> Vec<(String, u64)> {
    let (code, _, body) = a.get("/v1/agent/members");
    if code != 200 {
        return Vec::new();
    }
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
    list.iter()
        .map(|m| {
            (
                m["Name"].as_str().unwrap_or_default().to_string(),
                m["Status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// `node`'s serf status as `a` sees it.
pub fn status_of(a: &Agent, node: &str) -> Option<u64> {
    statuses(a)
        .into_iter()
        .find(|(n, _)| n == node)
        .map(|(_, s)| s)
}

/// Waits (up to [`CONVERGE`]) until `a` sees `node` with serf status `status`.
pub fn wait_status(a: &Agent, node: &str, status: u64) {
    wait_until(CONVERGE, &format!("{node} with status {status}"), || {
        status_of(a, node) == Some(status)
    });
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// A tiny HTTP health endpoint on a fixed port; `stop` closes it.
pub struct Health {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Health {
    pub fn start(port: u16) -> Health {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind health port");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        Health {
            port,
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
