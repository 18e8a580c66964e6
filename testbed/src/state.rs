//! The run directory and its state file: what this run made, so that `down` (also after a
//! crash of the testbed) and every other command find exactly this run's namespaces and
//! processes.
//!
//! ```text
//! <run-dir>/state.json           this file (written before anything is made, then updated)
//! <run-dir>/hosts/<host>/data/   the agent's -data-dir
//! <run-dir>/hosts/<host>/agent.log
//! <run-dir>/hosts/<host>/tls/        its ca.pem, cert.pem, key.pem (`[tls]`; see `secrets`)
//! <run-dir>/tls/                     the CAs and every certificate issued
//! <run-dir>/results/<scenario>-<unix time>.json
//! ```
//!
//! Writes go to a temporary file and are renamed into place, so a crash leaves either the
//! old or the new state, never half of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::topology::Topology;

/// The state file could not be read or written, or says something else is running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading or writing a file of the run directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state file is not valid JSON of the expected shape.
    #[error("{}: not a testbed state file: {source}", path.display())]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// There is no run in this directory.
    #[error("no testbed is up in {} (no state.json); `testbed up TOPOLOGY` starts one", dir.display())]
    NoRun {
        /// The run directory.
        dir: PathBuf,
    },
    /// A run already exists in this directory.
    #[error("a testbed ({prefix}) exists in {} (up, or left by an up that did not finish); run `testbed down` first", dir.display())]
    Busy {
        /// The run directory.
        dir: PathBuf,
        /// Its namespace prefix.
        prefix: String,
    },
}

/// How far `up` got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Namespaces and processes are being made.
    Creating,
    /// Every host was started and every DC had a leader.
    Up,
}

/// A started process of one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostProcess {
    /// Its pid (also its process group id).
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22): tells a reused
    /// pid from ours.
    pub start_time: u64,
}

/// A partition between two groups of hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// Hosts on one side.
    pub a: Vec<String>,
    /// Hosts on the other side.
    pub b: Vec<String>,
}

/// Everything one run made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// Short random id; the prefix is `mtb<run_id>`.
    pub run_id: String,
    /// The topology file `up` read.
    pub topology_file: PathBuf,
    /// The topology.
    pub topology: Topology,
    /// Hosts, namespaces and addresses.
    pub plan: Plan,
    /// The `meridian` binary the agents run.
    pub meridian: PathBuf,
    /// The `meridian-gateway` binary, when one was given.
    pub gateway: Option<PathBuf>,
    /// The `testbed` binary (its hidden helper runs inside namespaces).
    pub testbed: PathBuf,
    /// How far `up` got.
    pub phase: Phase,
    /// Namespaces created so far.
    pub namespaces: Vec<String>,
    /// Running processes by host name.
    pub processes: BTreeMap<String, HostProcess>,
    /// Each host's command line (after `ip netns exec NS`), for `restart`.
    pub commands: BTreeMap<String, Vec<String>>,
    /// Partitions in force (`heal` clears them).
    pub partitions: Vec<Partition>,
    /// Hosts isolated from every other host.
    pub isolated: Vec<String>,
    /// The WAN links between DCs with gateways, as the emulator applies them now.
    #[serde(default)]
    pub wan_links: Vec<crate::wan::WanLink>,
    /// The link emulator process in the WAN router namespace.
    #[serde(default)]
    pub wan_emulator: Option<HostProcess>,
    /// Gossip keys `up` made (`[gossip]`); the WAN key is updated by a rotation.
    #[serde(default)]
    pub gossip_keys: GossipKeys,
    /// The CAs and the testbed's own certificate (`[tls] enabled`).
    #[serde(default)]
    pub tls: Option<TlsState>,
}

// === Keys and certificates (made by `secrets`) ===

/// Gossip keys of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GossipKeys {
    /// Each datacenter's LAN key (`-encrypt`), by datacenter.
    #[serde(default)]
    pub lan: BTreeMap<String, String>,
    /// The WAN pool's key (`-encrypt-wan`); after a rotation, the one in use.
    #[serde(default)]
    pub wan: Option<String>,
}

/// A certificate and its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PemPair {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// The TLS material of a run with `[tls] enabled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsState {
    /// Every CA made, oldest first; the last one issues new certificates.
    pub cas: Vec<PemPair>,
    /// A `-cli` certificate of the newest CA: what the testbed shows when it shakes hands
    /// with an RPC port to see the certificate there.
    pub cli: PemPair,
}

impl TlsState {
    /// The CA that issues new certificates (the newest); `None` only in a state file
    /// edited by hand.
    pub fn issuer(&self) -> Option<&PemPair> {
        self.cas.last()
    }
}

/// A run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run directory at `root` (made absolute, so agents' paths do not depend on cwd).
    pub fn new(root: &Path) -> RunDir {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        RunDir { root }
    }

    /// Its path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `state.json`.
    pub fn state_path(&self) -> PathBuf {
        self.root.join("state.json")
    }

    /// A host's directory.
    pub fn host_dir(&self, host: &str) -> PathBuf {
        self.root.join("hosts").join(host)
    }

    /// A host's agent log.
    pub fn log_path(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("agent.log")
    }

    /// A host's `-data-dir`.
    pub fn data_dir(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("data")
    }

    /// Where scenarios write their results.
    pub fn results_dir(&self) -> PathBuf {
        self.root.join("results")
    }

    /// Creates `dir` and its parents.
    pub fn create_dir(&self, dir: &Path) -> Result<(), StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
            path: dir.to_path_buf(),
            source,
        })
    }

    /// The state, if a run exists here.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        let path = self.state_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Io { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| StateError::Corrupt { path, source })
    }

    /// The state of the run here, or an error that says there is none.
    pub fn require(&self) -> Result<State, StateError> {
        self.load()?.ok_or_else(|| StateError::NoRun {
            dir: self.root.clone(),
        })
    }

    /// Writes `state` atomically (temporary file, then rename).
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        self.create_dir(&self.root)?;
        let path = self.state_path();
        let tmp = self.root.join("state.json.tmp");
        let text = serde_json::to_string_pretty(state).map_err(|source| StateError::Corrupt {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, text).map_err(|source| StateError::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| StateError::Io { path, source })
    }

    /// Removes the `hosts/` and `tls/` directories a previous (downed) run left here, so
    /// a new run's agents start from empty data dirs rather than an old raft log, and
    /// with this run's certificates only.
    pub fn reset_hosts(&self) -> Result<(), StateError> {
        for dir in [self.root.join("hosts"), self.root.join("tls")] {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StateError::Io { path: dir, source }),
            }
        }
        Ok(())
    }

    /// Removes the state file: the run is gone (logs and results stay).
    pub fn clear(&self) -> Result<(), StateError> {
        let path = self.state_path();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }
}
