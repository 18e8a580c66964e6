//! Three (or more) `meridian` servers — and optionally client agents in front of them, as
//! Consul users deploy — as child processes on 127.0.0.1 — no namespaces, no
//! root: the cluster the kill/pause/restart nemesis runs against in CI and in the seeded
//! long mode. Each server keeps its ports and data dir across restarts; its log (JSON) is
//! appended to `<dir>/<name>.log`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

use super::JepsenError;
use super::nemesis::Cluster;

/// How long a started server has to answer HTTP.
const START_DEADLINE: Duration = Duration::from_secs(30);

struct Server {
    name: String,
    /// A client agent (not a server): the clients may talk through it; never a fault target.
    agent: bool,
    http: u16,
    serf: u16,
    rpc: u16,
    child: Option<Child>,
}

/// A datacenter of servers on loopback.
pub struct Local {
    bin: PathBuf,
    dir: PathBuf,
    servers: Vec<Server>,
    http: reqwest::Client,
}

/// A port free now and not in `taken` (the kernel may hand out a just-released port again,
/// and two servers given one port would not start).
fn free_port(taken: &mut Vec<u16>) -> Result<u16, JepsenError> {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| JepsenError::Io("a free port".into(), e))?;
        if !taken.contains(&port) {
            taken.push(port);
            return Ok(port);
        }
    }
}

impl Local {
    /// Starts `n` servers and `agents` client agents of `bin` with data dirs and logs under
    /// `dir`, and waits until each answers HTTP.
    pub async fn start(
        bin: &Path,
        dir: &Path,
        n: usize,
        agents: usize,
    ) -> Result<Local, JepsenError> {
        let mut servers = Vec::new();
        let mut ports = Vec::new();
        for i in 0..n + agents {
            let agent = i >= n;
            servers.push(Server {
                name: if agent {
                    format!("a{}", i - n + 1)
                } else {
                    format!("s{}", i + 1)
                },
                agent,
                http: free_port(&mut ports)?,
                serf: free_port(&mut ports)?,
                rpc: free_port(&mut ports)?,
                child: None,
            });
        }
        let mut local = Local {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            servers,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .map_err(|e| JepsenError::Http(e.to_string()))?,
        };
        for i in 0..n + agents {
            local.spawn(i)?;
        }
        for i in 0..n + agents {
            local.wait_answering(i).await?;
        }
        Ok(local)
    }

    /// The HTTP base URLs the clients use: the client agents' if there are any, else the
    /// servers'.
    pub fn urls(&self) -> Vec<String> {
        let through_agents = self.servers.iter().any(|s| s.agent);
        self.servers
            .iter()
            .filter(|s| s.agent == through_agents)
            .map(|s| format!("http://127.0.0.1:{}", s.http))
            .collect()
    }

    /// Every process's name (servers and client agents), for their logs.
    pub fn all_names(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.name.clone()).collect()
    }

    /// Where each server's log is.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    fn index(&self, name: &str) -> Result<usize, JepsenError> {
        self.servers
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| JepsenError::Cluster(format!("no server {name}")))
    }

    fn spawn(&mut self, i: usize) -> Result<(), JepsenError> {
        let seed = format!("127.0.0.1:{}", self.servers[0].serf);
        let s = &self.servers[i];
        let data = self.dir.join(&s.name);
        let log_path = self.log_path(&s.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| JepsenError::Io(log_path.display().to_string(), e))?;
        let err = log
            .try_clone()
            .map_err(|e| JepsenError::Io(log_path.display().to_string(), e))?;
        let voters = self.servers.iter().filter(|s| !s.agent).count();
        let mut cmd = Command::new(&self.bin);
        cmd.arg("agent");
        if !s.agent {
            cmd.args(["-server", "-bootstrap-expect"])
                .arg(voters.to_string())
                .args(["-server-port", &s.rpc.to_string()]);
        }
        cmd.arg("-data-dir")
            .arg(&data)
            .args([
                "-node",
                &s.name,
                "-bind",
                "127.0.0.1",
                "-client",
                "127.0.0.1",
            ])
            .args(["-http-port", &s.http.to_string()])
            .args(["-serf-lan-port", &s.serf.to_string()])
            .args(["-dns-port", "-1", "-log-json"])
            .args(["-hcl", "performance { raft_multiplier = 1 }"]);
        if i > 0 {
            cmd.args(["-retry-join", &seed, "-retry-interval", "200ms"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| JepsenError::Io(self.bin.display().to_string(), e))?;
        self.servers[i].child = Some(child);
        Ok(())
    }

    async fn get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.servers[i].http);
        let r = self.http.get(url).send().await.ok()?;
        let code = r.status().as_u16();
        Some((code, r.text().await.ok()?))
    }

    async fn wait_answering(&self, i: usize) -> Result<(), JepsenError> {
        let name = &self.servers[i].name;
        let what = format!("{name} answering HTTP");
        let hint = format!("see {}", self.log_path(name).display());
        crate::wait::until(&what, START_DEADLINE, &hint, || async {
            self.get(i, "/v1/status/leader").await.map(drop)
        })
        .await
        .map_err(|e| JepsenError::Cluster(e.to_string()))
    }

    fn pid(&self, i: usize) -> Result<Pid, JepsenError> {
        self.servers[i]
            .child
            .as_ref()
            .and_then(|c| Pid::from_raw(c.id() as i32))
            .ok_or_else(|| JepsenError::Cluster(format!("{} is not running", self.servers[i].name)))
    }

    fn signal(&self, i: usize, sig: Signal) -> Result<(), JepsenError> {
        kill_process(self.pid(i)?, sig)
            .map_err(|e| JepsenError::Cluster(format!("{sig:?} to {}: {e}", self.servers[i].name)))
    }

    /// SIGKILL of every server (the end of a run).
    pub fn kill_all(&mut self) {
        for s in &mut self.servers {
            if let Some(mut c) = s.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.kill_all();
    }
}

impl Cluster for Local {
    fn names(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter(|s| !s.agent)
            .map(|s| s.name.clone())
            .collect()
    }

    async fn leader(&self) -> Option<String> {
        let mut agreed: Option<String> = None;
        for i in 0..self.servers.len() {
            if self.servers[i].child.is_none() || self.servers[i].agent {
                continue;
            }
            let (200, body) = self.get(i, "/v1/status/leader").await? else {
                return None;
            };
            let addr: String = serde_json::from_str(&body).ok()?;
            let port: u16 = addr.rsplit_once(':')?.1.parse().ok()?;
            let name = self.servers.iter().find(|s| s.rpc == port)?.name.clone();
            match &agreed {
                Some(a) if *a != name => return None,
                _ => agreed = Some(name),
            }
        }
        agreed
    }

    async fn kill(&mut self, name: &str) -> Result<(), JepsenError> {
        let i = self.index(name)?;
        if let Some(mut c) = self.servers[i].child.take() {
            // Reaping blocks: off the runtime's threads.
            let reaped = tokio::task::spawn_blocking(move || c.kill().and_then(|()| c.wait()))
                .await
                .map_err(|e| JepsenError::Cluster(format!("kill {name}: {e}")))?;
            reaped.map_err(|e| JepsenError::Io(format!("kill {name}"), e))?;
        }
        Ok(())
    }

    async fn start(&mut self, name: &str) -> Result<(), JepsenError> {
        let i = self.index(name)?;
        self.spawn(i)?;
        self.wait_answering(i).await
    }

    async fn restart(&mut self, name: &str) -> Result<(), JepsenError> {
        let i = self.index(name)?;
        self.signal(i, Signal::TERM)?;
        if let Some(mut c) = self.servers[i].child.take() {
            let waited = tokio::task::spawn_blocking(move || c.wait()).await;
            if !matches!(waited, Ok(Ok(_))) {
                return Err(JepsenError::Cluster(format!("{name} did not exit")));
            }
        }
        self.start(name).await
    }

    async fn pause(&mut self, name: &str, stop: bool) -> Result<(), JepsenError> {
        let i = self.index(name)?;
        self.signal(i, if stop { Signal::STOP } else { Signal::CONT })
    }

    async fn cut(&mut self, _: &str, _: Option<&[String]>) -> Result<(), JepsenError> {
        Err(JepsenError::Cluster(
            "network faults need the testbed (`testbed up`, then `testbed jepsen --testbed`)"
                .into(),
        ))
    }

    async fn heal(&mut self) -> Result<(), JepsenError> {
        Ok(())
    }
}
