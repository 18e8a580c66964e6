//! docs/failure-matrix.md from the measured cells: the command that regenerates it, when
//! and at which commit it ran, the outcome words and bounds, the topology, the matrix
//! (measured outcome and median latency per cell; a cell that differs from its
//! expectation is marked), the operations and faults, and per fault every cell's reason
//! and first answer. Pure text; the caller writes it.

use std::fmt::Write as _;

use super::Cell;
use super::table::{
    CROSS_DC_DNS_TIMEOUT, CROSS_DC_TIMEOUT, Fault, Op, Outcome, REPLICATION_WITHIN, RPC_HOLD_MAX,
    SLACK,
};
use crate::scenario::Report;
use crate::state::State;

/// The whole document.
pub(super) fn markdown(state: &State, report: &Report, cells: &[Cell], secs: f64) -> String {
    let mut out = String::new();
    let as_expected = cells.iter().filter(|c| c.as_expected()).count();
    let when = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(report.started_unix),
    );
    let _ = writeln!(
        out,
        "# Failure matrix\n\n\
         Every operation under every fault, measured on the testbed (real processes in network \
         namespaces, SIGKILL, the userspace WAN emulator) and asserted cell by cell by \
         `testbed scenario failure-matrix` (testbed/src/scenario/failure_matrix/; the expected \
         outcomes and their reasons are in `table.rs`). **Generated — do not edit.** Regenerate \
         with:\n\n```sh\nsudo scripts/failure-matrix.sh\n```\n\n\
         (`cargo build --bin meridian --bin meridian-gateway --bin testbed`, `testbed up \
         testbed/examples/beyond.toml --gateway target/debug/meridian-gateway`, `testbed scenario \
         failure-matrix --doc docs/failure-matrix.md`, `testbed down`.)\n\n\
         This run: {when}, commit `{}`, testbed run `{}`, {} of {} cells as expected, {secs:.0} s \
         for the scenario.\n",
        commit(),
        report.run,
        as_expected,
        cells.len()
    );
    outcomes(&mut out);
    topology(&mut out, state);
    matrix(&mut out, cells);
    definitions(&mut out);
    details(&mut out, cells);
    out
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn outcomes(out: &mut String) {
    let _ = writeln!(
        out,
        "\n## Outcomes\n\n\
         Each operation is asked {} times in a row, all operations at once, right after the \
         fault is in force. A cell is the outcome most attempts had (on a tie the worse one; \
         `4/5` when not all agreed), so one TCP retransmit on the lossy link does not decide \
         it; an attempt that hangs or is wrong fails its cell however many others worked.\n\n\
         - **works**: the right answer, current.\n\
         - **stale**: the right answer marked not current: `X-Consul-KnownLeader: false`, or \
         from the gateways' copy of a remote catalog (`X-Meridian-Copy`; for DNS, which carries \
         no marker, when three `?dc=dc2&stale` reads of the same agent right after say so). For \
         replication: acknowledged in dc1, copied to dc2 only after the repair.\n\
         - **partial** (`?dc=*` only): an answer in time without some DCs, which \
         `X-Meridian-Datacenters-Missing` names.\n\
         - **fails fast**: an error (HTTP 5xx, DNS SERVFAIL or an empty answer) within the \
         operation's bound.\n\
         - **HANGS** / **WRONG**: an error after the bound or none at all / a wrong answer or a \
         lost acknowledged write. Never expected.\n\n\
         Bounds, from the agent's code (a unit test compares them with it), plus {:?} for the \
         request's own way: cross-DC HTTP `CROSS_DC_TIMEOUT` = {:?} \
         (agent/src/cluster/federation.rs); cross-DC DNS `CROSS_DC_DNS_TIMEOUT` = {:?} \
         (agent/src/dns/source.rs); local requests wait for a leader at most `rpc_hold_timeout` \
         ≤ {:?} (two maximal election timeouts, clamped to 1–7 s, agent/src/agent/server_role.rs). \
         Replication works when the key is in dc2 within {:?} (on the degraded link: within `CROSS_DC_TIMEOUT`, one relayed round's bound).",
        super::measure::ATTEMPTS,
        SLACK,
        CROSS_DC_TIMEOUT,
        CROSS_DC_DNS_TIMEOUT,
        RPC_HOLD_MAX,
        REPLICATION_WITHIN
    );
}

fn topology(out: &mut String, state: &State) {
    let _ = writeln!(out, "\n## Topology (testbed/examples/beyond.toml)\n");
    for d in &state.plan.dcs {
        let count = |role| {
            state
                .plan
                .hosts
                .iter()
                .filter(|h| h.dc == d.name && h.role == role)
                .count()
        };
        use crate::plan::Role;
        let _ = writeln!(
            out,
            "- {}: {} servers, {} clients, {} gateways",
            d.name,
            count(Role::Server),
            count(Role::Client),
            count(Role::Gateway)
        );
    }
    for l in &state.wan_links {
        let _ = writeln!(out, "- WAN {}–{}: {}", l.a, l.b, l.params.describe());
    }
    let _ = writeln!(
        out,
        "\nRequests come from dc1-c1 (a client agent; DNS with `service_failover = \"nearest\"`). \
         `web` is registered in dc2 (dc2-c1) and dc3 (dc3-s1) only, `api` in dc1. dc2's servers \
         replicate dc1's `config/` (`replication {{ source_datacenter = \"dc1\" }}`)."
    );
}

fn matrix(out: &mut String, cells: &[Cell]) {
    let _ = writeln!(
        out,
        "\n## The matrix\n\nMeasured outcome and median latency of the attempts (and the slowest, where it is 0.5 s more). The outcomes are asserted, so a re-run reproduces them or fails; the latencies are measurements and vary from run to run.\n"
    );
    let faults: Vec<Fault> = Fault::ALL
        .into_iter()
        .filter(|f| cells.iter().any(|c| c.fault == *f))
        .collect();
    let head: Vec<&str> = faults.iter().map(|f| f.title()).collect();
    let _ = writeln!(out, "| operation | {} |", head.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(faults.len()));
    for op in Op::ALL {
        let mut row = vec![op.key().replace('_', " ")];
        for f in &faults {
            let cell = cells.iter().find(|c| c.op == op && c.fault == *f);
            row.push(cell.map_or_else(|| "—".into(), short));
        }
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

/// `works 12 ms`, `works 8 ms (max 1.3 s)`, or `**fails fast 2.1 s** ✗ (expected stale)`.
fn short(c: &Cell) -> String {
    let (p50, max) = c.p50_max();
    let mut t = ms(p50);
    if max - p50 >= 500.0 {
        t = format!("{t} (max {})", ms(max));
    }
    let (n, of) = c.agreeing();
    if n < of {
        t = format!("{t}, {n}/{of}");
    }
    if c.as_expected() {
        format!("{} {t}", c.measured.word())
    } else {
        format!(
            "**{} {t}** ✗ (expected {})",
            c.measured.word(),
            c.expected.word()
        )
    }
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.0} ms")
    }
}

fn definitions(out: &mut String) {
    let _ = writeln!(out, "\n## Operations (from dc1-c1)\n");
    for op in Op::ALL {
        let _ = writeln!(
            out,
            "- **{}**: {}; bound {:?}",
            op.key().replace('_', " "),
            op.what(),
            op.bound()
        );
    }
    let _ = writeln!(out, "\n## Faults\n");
    for f in Fault::ALL {
        let _ = writeln!(out, "- **{}**: {}", f.title(), f.what());
    }
    let _ = writeln!(
        out,
        "\nEach fault starts from a healthy federation (every DC led, `?dc=*` whole, `?dc=dc2` \
         answered by dc2's leader) and is repaired after its measurements (hosts restarted, link \
         restored)."
    );
}

fn details(out: &mut String, cells: &[Cell]) {
    let _ = writeln!(out, "\n## Every cell: why, and what came back\n");
    for f in Fault::ALL {
        let row: Vec<&Cell> = cells.iter().filter(|c| c.fault == f).collect();
        if row.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {}\n\n{}\n", f.title(), f.what());
        let _ = writeln!(
            out,
            "| operation | expected | measured | p50 / max | why | first attempt (and one that differs) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for c in row {
            let (p50, max) = c.p50_max();
            let mut first = c
                .attempts
                .first()
                .map(|a| a.note.clone())
                .unwrap_or_default();
            if let Some(odd) = c.attempts.iter().find(|a| a.class != c.measured) {
                let _ = write!(first, "; {}: {}", odd.class.word(), odd.note);
            }
            if let Some(s) = c.caught_up_s {
                let _ = write!(first, "; copied {s:.1} s after the repair");
            }
            let mark = if c.as_expected() { "" } else { " ✗" };
            let (n, of) = c.agreeing();
            let _ = writeln!(
                out,
                "| {} | {} | {} ({n}/{of}){mark} | {} / {} | {} | {} |",
                c.op.key().replace('_', " "),
                c.expected.word(),
                c.measured.word(),
                ms(p50),
                ms(max),
                c.why,
                cellsafe(&first)
            );
        }
    }
    let _ = writeln!(
        out,
        "\nOutcome words: {}.",
        [
            Outcome::Works,
            Outcome::Stale,
            Outcome::Partial,
            Outcome::FailsFast
        ]
        .map(Outcome::word)
        .join(", ")
    );
}

/// Text safe inside a Markdown table cell (no pipes, no newlines, short).
fn cellsafe(s: &str) -> String {
    let one: String = s.replace('|', "/").replace('\n', " ");
    let mut t: String = one.chars().take(320).collect();
    if one.chars().count() > 320 {
        t.push('…');
    }
    format!("`{}`", t.replace('`', "'"))
}
