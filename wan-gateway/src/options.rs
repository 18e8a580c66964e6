//! The gateway's command line. Flags are spelled as Consul's agent flags where one exists
//! (`-datacenter`, `-node`, `-bind`, `-retry-join`, `-encrypt`, `-data-dir`) and take one
//! dash or two; the WAN side mirrors them with a `-wan` suffix.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// `meridian-gateway`: a datacenter's door to the federation.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "meridian-gateway", version, about)]
pub struct Options {
    /// This gateway's datacenter.
    #[arg(long, default_value = "dc1")]
    pub datacenter: String,
    /// Node name (unique in the datacenter); the WAN pool knows it as `<node>.<dc>`.
    #[arg(long)]
    pub node: Option<String>,
    /// Address of the LAN side: LAN gossip and the RPC port servers call.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub bind: IpAddr,
    /// Address of the WAN side: WAN gossip and the RPC port other gateways call. Default:
    /// `-bind`.
    #[arg(long = "bind-wan")]
    pub bind_wan: Option<IpAddr>,
    /// Address advertised on the LAN (default: `-bind`, which must then be specific).
    #[arg(long)]
    pub advertise: Option<IpAddr>,
    /// Address advertised on the WAN (default: `-bind-wan`).
    #[arg(long = "advertise-wan")]
    pub advertise_wan: Option<IpAddr>,
    /// Where the keyrings and gossip snapshots live.
    #[arg(long = "data-dir")]
    pub data_dir: PathBuf,
    /// LAN agents to join (host[:port], default port 8301); retried until one answers.
    #[arg(long = "retry-join")]
    pub retry_join: Vec<String>,
    /// Gateways of other datacenters to join (host[:port], default port 8302).
    #[arg(long = "retry-join-wan")]
    pub retry_join_wan: Vec<String>,
    /// Wait between join attempts.
    #[arg(long = "retry-interval", default_value = "30s", value_parser = humantime::parse_duration)]
    pub retry_interval: Duration,
    /// LAN gossip key (base64), as the datacenter's agents' `-encrypt`.
    #[arg(long)]
    pub encrypt: Option<String>,
    /// WAN gossip key (base64), shared by every datacenter's gateways and separate from
    /// each datacenter's LAN key.
    #[arg(long = "encrypt-wan")]
    pub encrypt_wan: Option<String>,
    /// LAN RPC port (servers call it).
    #[arg(long = "server-port", default_value_t = 8300)]
    pub server_port: u16,
    /// LAN gossip port.
    #[arg(long = "serf-lan-port", default_value_t = 8301)]
    pub serf_lan_port: u16,
    /// WAN gossip port (UDP).
    #[arg(long = "serf-wan-port", default_value_t = 8302)]
    pub serf_wan_port: u16,
    /// WAN RPC port (TCP; other gateways call it). Default: the WAN gossip port, so one
    /// port (8302, TCP and UDP, as in Consul's port table) is all a WAN firewall opens.
    #[arg(long = "wan-rpc-port")]
    pub wan_rpc_port: Option<u16>,
    /// CA certificate(s) peers must chain to (PEM), as Consul's `ca_file`.
    #[arg(long = "ca-file")]
    pub ca_file: Option<PathBuf>,
    /// This gateway's certificate (`meridian tls cert create -gateway -dc DC`).
    #[arg(long = "cert-file")]
    pub cert_file: Option<PathBuf>,
    /// Its private key.
    #[arg(long = "key-file")]
    pub key_file: Option<PathBuf>,
    /// Require TLS with a certificate from the CA on both RPC ports.
    #[arg(long = "verify-incoming")]
    pub verify_incoming: bool,
    /// Dial servers and other gateways over TLS, checking their certificates chain to the CA.
    #[arg(long = "verify-outgoing")]
    pub verify_outgoing: bool,
    /// Also check the name a peer proves: `server.<dc>.<domain>` for servers,
    /// `gateway.<dc>.<domain>` for gateways. Implies -verify-outgoing.
    #[arg(long = "verify-server-hostname")]
    pub verify_server_hostname: bool,
    /// The domain certificates are issued under (as the agents' `-domain`).
    #[arg(long, default_value = "consul")]
    pub domain: String,
    /// Log level: trace, debug, info, warn, error.
    #[arg(long = "log-level", default_value = "info")]
    pub log_level: String,
    /// Logs as JSON lines.
    #[arg(long = "log-json")]
    pub log_json: bool,
}

/// A flag combination that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("-{flag}: {reason}")]
pub struct OptionsError {
    /// The flag, without dashes.
    pub flag: &'static str,
    /// Why.
    pub reason: String,
}

/// The resolved addresses.
#[derive(Debug, Clone)]
pub struct Addresses {
    /// LAN gossip bind.
    pub serf_lan: SocketAddr,
    /// WAN gossip bind.
    pub serf_wan: SocketAddr,
    /// LAN RPC bind.
    pub rpc_lan: SocketAddr,
    /// WAN RPC bind.
    pub rpc_wan: SocketAddr,
    /// LAN address others use.
    pub advertise_lan: IpAddr,
    /// WAN address others use.
    pub advertise_wan: IpAddr,
}

impl Options {
    /// The TLS settings of the flags; `None` when no TLS flag is given.
    pub fn tls(&self) -> Option<meridian_tls::TlsSettings> {
        let any = self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.verify_incoming
            || self.verify_outgoing
            || self.verify_server_hostname;
        any.then(|| meridian_tls::TlsSettings {
            files: meridian_tls::TlsFiles {
                ca_file: self.ca_file.clone(),
                cert_file: self.cert_file.clone(),
                key_file: self.key_file.clone(),
            },
            verify_incoming: self.verify_incoming,
            verify_outgoing: self.verify_outgoing || self.verify_server_hostname,
            verify_server_hostname: self.verify_server_hostname,
            ..meridian_tls::TlsSettings::default()
        })
    }

    /// The node name: `-node`, else the host name (as the agent's `node_name` default).
    pub fn node_name(&self) -> String {
        self.node
            .clone()
            .unwrap_or_else(meridian_config::default_node_name)
    }

    /// Checks the flags and resolves the addresses.
    pub fn addresses(&self) -> Result<Addresses, OptionsError> {
        if self.datacenter.is_empty()
            || !self
                .datacenter
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(OptionsError {
                flag: "datacenter",
                reason: format!("{:?} must match [a-z0-9_-]+", self.datacenter),
            });
        }
        let bind_wan = self.bind_wan.unwrap_or(self.bind);
        let advertise_lan = self.advertise.unwrap_or(self.bind);
        if advertise_lan.is_unspecified() {
            return Err(OptionsError {
                flag: "advertise",
                reason: "needed when -bind is 0.0.0.0 (which address do servers call?)".into(),
            });
        }
        let advertise_wan = self.advertise_wan.unwrap_or(bind_wan);
        if advertise_wan.is_unspecified() {
            return Err(OptionsError {
                flag: "advertise-wan",
                reason: "needed when -bind-wan is 0.0.0.0".into(),
            });
        }
        let wan_rpc_port = self.wan_rpc_port.unwrap_or(self.serf_wan_port);
        let rpc_lan = SocketAddr::new(self.bind, self.server_port);
        let rpc_wan = SocketAddr::new(bind_wan, wan_rpc_port);
        if rpc_lan == rpc_wan && rpc_lan.port() != 0 {
            return Err(OptionsError {
                flag: "wan-rpc-port",
                reason: format!("the LAN and WAN RPC listeners would both bind {rpc_lan}"),
            });
        }
        Ok(Addresses {
            serf_lan: SocketAddr::new(self.bind, self.serf_lan_port),
            serf_wan: SocketAddr::new(bind_wan, self.serf_wan_port),
            rpc_lan,
            rpc_wan,
            advertise_lan,
            advertise_wan,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Options {
        let argv = meridian_config::normalize_args(
            std::iter::once("meridian-gateway".to_string())
                .chain(args.iter().map(|s| s.to_string())),
        );
        Options::try_parse_from(argv).expect("parses")
    }

    #[test]
    fn consul_style_flags_and_the_wan_port_default() {
        let o = parse(&[
            "-datacenter",
            "dc2",
            "-node",
            "g1",
            "-bind",
            "10.0.0.5",
            "-bind-wan",
            "10.202.0.5",
            "-data-dir",
            "/tmp/x",
            "-retry-join",
            "10.0.0.1",
            "-retry-join-wan",
            "10.202.0.9",
        ]);
        let a = o.addresses().expect("addresses");
        assert_eq!(a.rpc_lan, "10.0.0.5:8300".parse().expect("addr"));
        assert_eq!(a.rpc_wan, "10.202.0.5:8302".parse().expect("addr"));
        assert_eq!(a.serf_wan, "10.202.0.5:8302".parse().expect("addr"));
        assert_eq!(a.advertise_wan, "10.202.0.5".parse::<IpAddr>().expect("ip"));
        assert_eq!(o.retry_join_wan, ["10.202.0.9"]);
    }

    #[test]
    fn unusable_combinations_name_the_flag() {
        let err = parse(&["-data-dir", "/x"])
            .addresses()
            .expect_err("0.0.0.0");
        assert!(err.to_string().starts_with("-advertise:"), "{err}");
        let err = parse(&[
            "-data-dir",
            "/x",
            "-datacenter",
            "DC 1",
            "-bind",
            "127.0.0.1",
        ])
        .addresses()
        .expect_err("dc");
        assert!(err.to_string().starts_with("-datacenter:"), "{err}");
        let err = parse(&[
            "-data-dir",
            "/x",
            "-bind",
            "127.0.0.1",
            "-server-port",
            "8302",
        ])
        .addresses()
        .expect_err("same port");
        assert!(err.to_string().starts_with("-wan-rpc-port:"), "{err}");
    }
}
