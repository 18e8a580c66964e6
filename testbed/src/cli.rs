//! Command-line interface (clap): the commands and their flags. No logic here.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Meridian datacenters as hosts in network namespaces on one machine: bring them up, break
/// them on purpose, run scenarios, take everything down. Needs root (CAP_NET_ADMIN).
#[derive(Debug, Parser)]
#[command(name = "testbed", version, args_override_self = true)]
pub struct Cli {
    /// Run directory: state file, agent data dirs, logs and scenario results.
    #[arg(
        long,
        global = true,
        env = "TESTBED_RUN_DIR",
        default_value = "/tmp/meridian-testbed"
    )]
    pub run_dir: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create namespaces, LANs and the WAN segment from TOPOLOGY (.toml or .hcl), start
    /// every agent and wait for a leader in every datacenter.
    Up {
        /// The topology file.
        topology: PathBuf,
        /// The `meridian` binary (default: next to this one, then PATH).
        #[arg(long)]
        meridian: Option<PathBuf>,
        /// The `meridian-gateway` binary to run on gateway hosts (`cargo build --bin
        /// meridian-gateway`); without it gateway hosts get their namespaces and addresses
        /// but run nothing.
        #[arg(long)]
        gateway: Option<PathBuf>,
        /// How long to wait for leaders.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// A table of hosts: DC, role, address, alive, leader seen, raft index.
    Status {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside HOST's namespace: `testbed exec dc1-c1 -- dig @127.0.0.1 -p 8600 consul.service.consul`.
    Exec {
        /// The host.
        host: String,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Print HOST's agent log.
    Logs {
        /// The host.
        host: String,
        /// Keep printing what is appended (until interrupted).
        #[arg(short, long)]
        follow: bool,
    },
    /// End every process and remove every namespace this run made (idempotent; also after
    /// a crash of the testbed).
    Down {
        /// Sweep the namespaces of PREFIX (`mtbXXXX`) too, for a run whose state file is lost.
        #[arg(long)]
        prefix: Option<String>,
        /// Also delete the run directory (logs, data, results).
        #[arg(long)]
        purge: bool,
    },
    /// SIGKILL HOST's agent.
    Kill {
        /// The host.
        host: String,
    },
    /// SIGSTOP HOST's agent (it hangs, as on a stalled machine).
    Stop {
        /// The host.
        host: String,
    },
    /// SIGCONT a stopped agent.
    Cont {
        /// The host.
        host: String,
    },
    /// Stop HOST's agent (SIGTERM, then SIGKILL after a grace period) and start it again on
    /// the same data dir.
    Restart {
        /// The host.
        host: String,
    },
    /// Cut the network between A and B (each a comma list of hosts and/or DC names).
    Partition {
        /// One side.
        a: String,
        /// The other side.
        b: String,
    },
    /// Cut HOST off from every other host.
    Isolate {
        /// The host.
        host: String,
    },
    /// Remove every partition and isolation.
    Heal,
    /// The WAN link emulator: show links, change delay/loss, blackhole, restore, probe.
    Wan {
        /// What to do.
        #[command(subcommand)]
        command: WanCommand,
    },
    /// Run a scripted, asserting, timed scenario; results go to <run-dir>/results/.
    Scenario {
        /// Which scenario.
        name: ScenarioName,
        /// `failure-matrix`: also write the Markdown matrix here (docs/failure-matrix.md).
        #[arg(long)]
        doc: Option<std::path::PathBuf>,
    },
    /// Jepsen-style: clients write, read and CAS KV keys through three servers while a
    /// seeded nemesis kills, pauses, restarts (and on the testbed partitions) them; each
    /// history is checked for linearizability. Without --testbed the servers run on
    /// 127.0.0.1 (no root needed). Exits 1 if any run is not linearizable.
    Jepsen(crate::jepsen::options::Options),
    /// Inside a namespace: the Jepsen clients; prints each op as a JSON line.
    #[command(name = "_jepsen-clients", hide = true)]
    JepsenClients {
        /// Comma list of server HTTP base URLs.
        #[arg(long)]
        urls: String,
        /// Clients.
        #[arg(long)]
        clients: u32,
        /// Keys.
        #[arg(long)]
        keys: u32,
        /// Key prefix.
        #[arg(long)]
        prefix: String,
        /// Seed.
        #[arg(long)]
        seed: u64,
        /// Read mode.
        #[arg(long, value_enum)]
        reads: crate::jepsen::workload::ReadMode,
        /// Seconds to run.
        #[arg(long, default_value_t = 0.0)]
        secs: f64,
        /// Only the final `?consistent` read of every key.
        #[arg(long = "final")]
        final_only: bool,
        /// Added to every op's times (so final reads come after the run's ops).
        #[arg(long, default_value_t = 0)]
        offset_ns: u64,
    },
    /// Inside a namespace: GET each URL and print JSON lines (used by the testbed itself).
    #[command(name = "_probe", hide = true)]
    Probe {
        /// PUT this body instead of a GET.
        #[arg(long)]
        put: Option<String>,
        /// URLs.
        urls: Vec<String>,
    },
    /// Inside a namespace: write KV keys one at a time and print JSON lines (used by
    /// scenarios).
    #[command(name = "_kv-writer", hide = true)]
    KvWriter {
        /// The agent's HTTP base URL.
        #[arg(long)]
        url: String,
        /// Key prefix.
        #[arg(long)]
        prefix: String,
        /// Stop after this many writes.
        #[arg(long, default_value_t = 100_000)]
        max_keys: u64,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 120)]
        max_secs: u64,
    },
    /// Inside a namespace: GET URLs in turn, paced and timed, and print JSON lines (used
    /// by scenarios).
    #[command(name = "_reads", hide = true)]
    Reads {
        /// URLs, asked in turn.
        #[arg(long = "url", required = true)]
        urls: Vec<String>,
        /// At most one GET per this much time (0s: back to back).
        #[arg(long, default_value = "0s", value_parser = parse_duration)]
        every: Duration,
        /// Timeout of one GET.
        #[arg(long, default_value = "15s", value_parser = parse_duration)]
        timeout: Duration,
        /// Stop after this many GETs.
        #[arg(long, default_value_t = u64::MAX)]
        max_count: u64,
        /// Stop after this long.
        #[arg(long, default_value = "180s", value_parser = parse_duration)]
        max_time: Duration,
        /// Also stop when stdin closes (how a scenario stops a running load).
        #[arg(long)]
        stop_on_eof: bool,
        /// PUT this body to each URL instead of GETting it (`{n}`: the request's number).
        #[arg(long)]
        put: Option<String>,
    },
    /// Inside the WAN router's namespace: the link emulator (used by `up`).
    #[command(name = "_wan-emulator", hide = true)]
    WanEmulator {
        /// The TUN device to attach to.
        #[arg(long)]
        tun: String,
        /// The links file.
        #[arg(long)]
        links: PathBuf,
        /// The control socket.
        #[arg(long)]
        control: PathBuf,
    },
    /// Inside a namespace: echo UDP and TCP on an address (used by `wan probe`).
    #[command(name = "_echo", hide = true)]
    Echo {
        /// Address to bind.
        #[arg(long)]
        bind: std::net::Ipv4Addr,
        /// Port.
        #[arg(long)]
        port: u16,
    },
    /// Inside a namespace: query DNS until a name resolves to an address (used by
    /// `scenario client-dns`).
    #[command(name = "_dns-wait", hide = true)]
    DnsWait {
        /// The DNS server.
        #[arg(long, default_value = "127.0.0.1:8600")]
        server: std::net::SocketAddr,
        /// The name (A records).
        #[arg(long)]
        name: String,
        /// The address to wait for.
        #[arg(long)]
        expect: std::net::Ipv4Addr,
        /// Give up after this long.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Inside a namespace: time UDP or TCP echoes (used by `wan probe`).
    #[command(name = "_ping", hide = true)]
    Ping {
        /// The echo server.
        #[arg(long)]
        target: std::net::SocketAddrV4,
        /// `udp` or `tcp`.
        #[arg(long, default_value = "udp")]
        proto: String,
        /// Probes.
        #[arg(long, default_value_t = 20)]
        count: u64,
        /// Pace of the UDP probes.
        #[arg(long, default_value = "10ms", value_parser = parse_duration)]
        interval: Duration,
        /// How long to wait for late echoes.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        wait: Duration,
    },
}

/// `testbed wan ...`: links are named by their two datacenters, in either order.
#[derive(Debug, Subcommand)]
pub enum WanCommand {
    /// Every link: its delay, jitter, loss, and the packets the emulator forwarded and dropped.
    Show {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set the one-way delay of link A–B (`80ms`), optionally with jitter.
    Delay {
        /// One datacenter.
        a: String,
        /// The other.
        b: String,
        /// One-way delay.
        #[arg(value_parser = parse_duration)]
        delay: Duration,
        /// Uniform jitter, ± this much (default: unchanged).
        #[arg(long, value_parser = parse_duration)]
        jitter: Option<Duration>,
    },
    /// Set the packet loss of link A–B in percent (each direction).
    Loss {
        /// One datacenter.
        a: String,
        /// The other.
        b: String,
        /// Percent, 0–100.
        percent: f64,
    },
    /// Drop every packet on link A–B.
    Blackhole {
        /// One datacenter.
        a: String,
        /// The other.
        b: String,
    },
    /// Put link A–B back as the topology file has it.
    Restore {
        /// One datacenter.
        a: String,
        /// The other.
        b: String,
    },
    /// Measure the path between two gateways (or DCs) with UDP and TCP echoes.
    Probe {
        /// The sending gateway host, or a DC (its first gateway).
        from: String,
        /// The echoing gateway host, or a DC.
        to: String,
        /// UDP probes (and TCP round trips).
        #[arg(long, default_value_t = 50)]
        count: u64,
        /// Pace of the UDP probes.
        #[arg(long, default_value = "10ms", value_parser = parse_duration)]
        interval: Duration,
        /// How long to wait for late echoes.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        wait: Duration,
        /// UDP only.
        #[arg(long)]
        udp_only: bool,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Scenarios that exist.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScenarioName {
    /// KV writes through a client, SIGKILL of the leader, a new leader in time, no
    /// acknowledged write lost.
    LeaderFailover,
    /// A new client host joins a DC and registers a service; time until every agent of the
    /// DC answers it over DNS.
    ClientDns,
    /// The leader cut off from the rest of its DC: the majority elects and writes, the
    /// minority refuses writes but serves stale reads; after the heal everything converges.
    LanPartition,
    /// Datacenters with gateways: `?dc=` and DNS from every DC to every other, an unknown
    /// DC, a gateway killed under load, a WAN link blackholed and restored.
    Federation,
    /// Issue #17's federation acceptance on examples/federation.toml (after `federation`):
    /// a policy and token made in the primary apply in the last DC, also while the WAN
    /// link between them is blackholed.
    AclFederation,
    /// Issue #16's acceptance on examples/beyond.toml: `?dc=any` nearest and failover,
    /// `?dc=*` with a DC cut off, stale reads from the gateways' copy, KV replication
    /// across a leader kill.
    Beyond,
    /// Issue #16 item 6 on examples/beyond.toml: every operation under every fault,
    /// each cell asserted; the Markdown matrix in the results (and `--doc PATH`).
    FailureMatrix,
}

impl ScenarioName {
    /// The name as typed.
    pub fn label(self) -> &'static str {
        match self {
            ScenarioName::LeaderFailover => "leader-failover",
            ScenarioName::ClientDns => "client-dns",
            ScenarioName::LanPartition => "lan-partition",
            ScenarioName::Federation => "federation",
            ScenarioName::AclFederation => "acl-federation",
            ScenarioName::Beyond => "beyond",
            ScenarioName::FailureMatrix => "failure-matrix",
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}
