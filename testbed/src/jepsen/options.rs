//! `testbed jepsen`'s flags: what every run does. Apart from the runner so the command
//! line can name them without depending on it.

use std::path::PathBuf;
use std::time::Duration;

use super::nemesis::FaultKind;
use super::workload::ReadMode;

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

/// What every run of `testbed jepsen` does (its flags).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The first seed (runs use SEED, SEED+1, ...).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many seeded runs.
    #[arg(long, default_value_t = 1)]
    pub runs: u64,
    /// How long each run's clients and nemesis run.
    #[arg(long, default_value = "60s", value_parser = duration)]
    pub time: Duration,
    /// How reads ask.
    #[arg(long, value_enum, default_value = "consistent")]
    pub reads: ReadMode,
    /// The faults to draw from (comma list). Network faults need --testbed.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kill,pause,restart"
    )]
    pub nemesis: Vec<FaultKind>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 6)]
    pub clients: u32,
    /// Keys (independent registers).
    #[arg(long, default_value_t = 3)]
    pub keys: u32,
    /// Servers (loopback mode).
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    /// Client agents in front of the servers, which the clients talk through
    /// (loopback mode; 0: straight to the servers).
    #[arg(long, default_value_t = 0)]
    pub agents: usize,
    /// Run against the up testbed of --run-dir (its first DC with 3 servers).
    #[arg(long)]
    pub testbed: bool,
    /// The `meridian` binary (loopback mode; default: next to this one, then PATH).
    #[arg(long)]
    pub meridian: Option<PathBuf>,
    /// Where results go (default: <run-dir>/jepsen).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keep history and logs of passing runs too.
    #[arg(long)]
    pub keep: bool,
}

impl Options {
    /// Where results go.
    pub(crate) fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from("jepsen"))
    }
}
