//! The command-level error: one variant per subsystem, plus the conditions a command
//! reports itself. `main` prints it as `testbed: <message>`.

use std::path::PathBuf;
use std::time::Duration;

use crate::firewall::FirewallError;
use crate::netns::NetError;
use crate::proc::ProcError;
use crate::scenario::ScenarioError;
use crate::state::StateError;
use crate::topology::TopologyError;
use crate::wan::control::WanError;

/// Why a testbed command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestbedError {
    /// The topology file is unreadable or invalid.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// An `ip` command failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// An `nft` command failed.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    /// The run directory or state file.
    #[error(transparent)]
    State(#[from] StateError),
    /// Starting or signalling a process.
    #[error(transparent)]
    Proc(#[from] ProcError),
    /// The WAN link emulator.
    #[error(transparent)]
    Wan(#[from] WanError),
    /// A scenario failed or could not run.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// Not privileged enough for network namespaces.
    #[error("needs CAP_NET_ADMIN; run as root{detail}")]
    NeedsRoot {
        /// What else is missing, if anything (starts with "; ").
        detail: String,
    },
    /// A program the testbed drives is not installed.
    #[error("`{tool}` not found on PATH; install Debian's {package} package")]
    MissingTool {
        /// The program.
        tool: &'static str,
        /// The Debian package that has it.
        package: &'static str,
    },
    /// The agent binary is missing.
    #[error("meridian binary not found at {}; build it (`cargo build -p meridian-agent --bin meridian`) or pass --meridian PATH", path.display())]
    NoMeridian {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// No host of that name in this run.
    #[error("no host or datacenter named {0:?} in this testbed (see `testbed status`)")]
    UnknownHost(String),
    /// `down --prefix` was given something that is not a run prefix.
    #[error("{0:?} is not a run prefix (mtb + 4 hex digits, e.g. mtb1a2b)")]
    BadPrefix(String),
    /// The host has no process to act on.
    #[error("{0} runs nothing (gateways start only with a meridian-gateway binary)")]
    NotRunning(String),
    /// A condition did not hold in time.
    #[error("{what} did not happen within {after:?}{hint}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// The deadline.
        after: Duration,
        /// Where to look (starts with "; ").
        hint: String,
    },
    /// An agent exited while it should run.
    #[error("{host}'s agent exited; see {}", log.display())]
    AgentDied {
        /// The host.
        host: String,
        /// Its log.
        log: PathBuf,
    },
    /// Flags that don't go together.
    #[error("{0}")]
    Usage(String),
    /// A Jepsen run could not be carried out.
    #[error("jepsen: {0}")]
    Jepsen(String),
    /// Interrupted by a signal (and cleaned up).
    #[error("interrupted by a signal")]
    Interrupted,
    /// Any other I/O failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl TestbedError {
    /// The exit code for this error: 2 for usage problems (bad input, no privilege), 1
    /// otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            TestbedError::Topology(_)
            | TestbedError::NeedsRoot { .. }
            | TestbedError::MissingTool { .. }
            | TestbedError::UnknownHost(_)
            | TestbedError::BadPrefix(_)
            | TestbedError::Usage(_) => 2,
            _ => 1,
        }
    }
}
