//! DNS questions to an agent with `dig` (a client nobody here wrote, as DESIGN.md's
//! compatibility tier asks), run inside a host's namespace against the host's own agent
//! (`dig @<lan ip> -p 8600 NAME A`, or another type). Only the answer's status, its A
//! records and each answer record's data are read.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::time::Instant;

use crate::netns;
use crate::plan::HostPlan;

/// How long dig waits for its one try: above the agent's 3 s cross-DC DNS bound, so a
/// bound that does not hold shows as a slow answer, not as a dig timeout.
const DIG_WAIT: Duration = Duration::from_secs(6);

/// What dig got.
#[derive(Debug, Clone, Default)]
pub(super) struct DigAnswer {
    /// The header's status (`NOERROR`, `NXDOMAIN`, `SERVFAIL`), when an answer came.
    pub(super) status: Option<String>,
    /// The A records of the answer section.
    pub(super) addrs: Vec<Ipv4Addr>,
    /// Every answer record's data (`1 1 8080 node.node.dc2.consul.` for an SRV).
    pub(super) records: Vec<String>,
    /// Seconds dig took (process start included: a few milliseconds).
    pub(super) secs: f64,
    /// Why there was no answer.
    pub(super) error: Option<String>,
}

impl DigAnswer {
    /// `NOERROR [10.201.2.11] in 0.012s`, for check details.
    pub(super) fn describe(&self) -> String {
        match (&self.status, &self.error) {
            (Some(s), _) => format!("{s} {:?} in {:.3}s", self.addrs, self.secs),
            (None, Some(e)) => format!("no answer in {:.3}s ({e})", self.secs),
            (None, None) => format!("no answer in {:.3}s", self.secs),
        }
    }
}

/// `dig @<host's lan ip> -p 8600 NAME A`, from inside `host`'s namespace.
pub(super) async fn a(host: &HostPlan, name: &str) -> DigAnswer {
    ask(host, name, "A").await
}

/// `dig @<host's lan ip> -p 8600 NAME QTYPE`, from inside `host`'s namespace.
pub(super) async fn ask(host: &HostPlan, name: &str, qtype: &str) -> DigAnswer {
    let server = format!("@{}", host.lan_ip);
    let wait = format!("+time={}", DIG_WAIT.as_secs());
    let args = [
        "netns",
        "exec",
        host.netns.as_str(),
        "dig",
        &server,
        "-p",
        "8600",
        name,
        qtype,
        &wait,
        "+tries=1",
    ];
    let started = Instant::now();
    let out = netns::run("ip", &args, None).await;
    let secs = started.elapsed().as_secs_f64();
    match out {
        Ok(text) => {
            let (status, addrs) = parse(&text);
            DigAnswer {
                status,
                addrs,
                records: records(&text),
                secs,
                error: None,
            }
        }
        Err(e) => DigAnswer {
            secs,
            error: Some(e.to_string()),
            ..DigAnswer::default()
        },
    }
}

/// The status of the `->>HEADER<<-` line and the A records of dig's answer section.
fn parse(out: &str) -> (Option<String>, Vec<Ipv4Addr>) {
    let status = out.lines().find_map(|l| {
        let rest = l.split("status: ").nth(1)?;
        Some(rest.split(',').next()?.trim().to_string())
    });
    let addrs = out
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [_, _, "IN", "A", ip] => ip.parse().ok(),
                _ => None,
            }
        })
        .collect();
    (status, addrs)
}

/// The data of every record of dig's answer section (what follows `IN <type>`).
fn records(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 4 && f[2] == "IN").then(|| f[4..].join(" "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{parse, records};

    #[test]
    fn reads_every_answer_record() {
        let out = ";; ANSWER SECTION:\nweb.service.any.consul. 0 IN SRV 1 1 8080 dc2-c1.node.dc2.consul.\n";
        assert_eq!(records(out), ["1 1 8080 dc2-c1.node.dc2.consul."]);
        assert!(records(";; nothing\n").is_empty());
    }

    #[test]
    fn reads_the_status_and_the_a_records() {
        let out = "\
; <<>> DiG 9.18.33 <<>> @10.201.1.101 -p 8600 web.service.dc2.consul A
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242
;; flags: qr aa rd; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; QUESTION SECTION:
;web.service.dc2.consul.\t\tIN\tA

;; ANSWER SECTION:
web.service.dc2.consul.\t0\tIN\tA\t10.201.2.11
web.service.dc2.consul.\t0\tIN\tA\t10.201.2.12
";
        let (status, addrs) = parse(out);
        assert_eq!(status.as_deref(), Some("NOERROR"));
        assert_eq!(
            addrs,
            ["10.201.2.11".parse().ok(), "10.201.2.12".parse().ok()]
                .into_iter()
                .flatten()
                .collect::<Vec<std::net::Ipv4Addr>>()
        );
        let (status, addrs) =
            parse(";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1\n;x.\tIN\tA\n");
        assert_eq!(status.as_deref(), Some("NXDOMAIN"));
        assert!(addrs.is_empty());
    }
}
