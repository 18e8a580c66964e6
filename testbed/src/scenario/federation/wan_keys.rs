//! The `federation` scenario's WAN key rotation, under queries between every pair of DCs:
//! a new key from `meridian keygen`, then `meridian keyring -wan -install NEW`, `-use NEW`
//! and `-remove OLD` from the first DC's server, as an operator would. Afterwards every
//! DC's server must see every gateway holding the new key and no other (`keyring -wan
//! -list`: itself a query gossiped sealed with the new key and answered by every
//! gateway, so it also proves WAN gossip works without the old key), each DC's LAN key
//! where it was, the WAN pool converged, and no query failed.
//!
//! Needs an encrypted WAN pool (`[gossip] encrypt_wan`); skipped, saying so, without one.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::load::AllPairs;
use super::{Fed, event, matrix, meridian_cli, step_error};
use crate::error::TestbedError;
use crate::helper::unix_ms;
use crate::out::Progress;
use crate::scenario::Report;
use crate::secrets;
use crate::state::{RunDir, State};
use crate::wait;

/// Answered reads per pair before the first step.
const WARM_READS: usize = 3;
/// Reads per pair after the last step, so the load also covers the rotated pool.
const READS_AFTER: usize = 10;
/// Deadline for the pool to be converged again, and for the reads after.
const DEADLINE: Duration = Duration::from_secs(30);

/// One pool's block of `keyring -list`: key → (members holding it, members asked).
type KeyBlock = BTreeMap<String, (usize, usize)>;

/// Runs the phase: rotates the WAN key under load and checks what it should have done.
pub(super) async fn rotate(
    run_dir: &RunDir,
    state: &mut State,
    fed: &Fed,
    report: &mut Report,
    progress: Progress,
) -> Result<(), TestbedError> {
    let Some(old) = state.gossip_keys.wan.clone() else {
        report.facts.insert(
            "wan_key_rotation".into(),
            "not run: the WAN pool is not encrypted (topology [gossip] encrypt_wan)".into(),
        );
        return Ok(());
    };
    let new = secrets::keygen(&state.meridian).await?;
    let load = AllPairs::start(state, fed, "wan_key_rotation")?;
    progress.say("WAN key rotation: every DC reads every other while the key changes");
    let mut outcome = load.warm(WARM_READS).await;
    let mut steps = Vec::new();
    if outcome.is_ok() {
        outcome = run_steps(state, fed, report, &old, &new, &mut steps).await;
    }
    if outcome.is_ok() {
        // The gateways hold the new key only: restarts must pass that one.
        state.gossip_keys.wan = Some(new.clone());
        run_dir.save(state)?;
    }
    let rotated_ms = unix_ms() as f64;
    let after = load.reads_after(rotated_ms, READS_AFTER, DEADLINE).await;
    report.check(
        "wan_key_rotated_with_the_cli",
        outcome.is_ok(),
        match &outcome {
            Ok(()) => format!("from {}: {}", fed.dcs[0].server.name, steps.join("; ")),
            Err(e) => e.to_string(),
        },
    );
    if outcome.is_ok() {
        held_keys(state, fed, report, &new, &old).await;
        converged(state, fed, report).await;
    }
    let min = fed.dcs.len() * (fed.dcs.len() - 1) * (WARM_READS + READS_AFTER);
    load.finish(report, fed, min).await;
    outcome.and(after)
}

/// `-install NEW`, `-use NEW`, `-remove OLD` from the first DC's server, each timed and
/// marked on the plot.
async fn run_steps(
    state: &State,
    fed: &Fed,
    report: &mut Report,
    old: &str,
    new: &str,
    steps: &mut Vec<String>,
) -> Result<(), TestbedError> {
    let server = &fed.dcs[0].server;
    // One mark for the three steps: they take a fraction of a second together.
    event(report, fed, "WAN key: install, use, remove".into());
    for (flag, key, what) in [
        ("-install", new, "install"),
        ("-use", new, "use"),
        ("-remove", old, "remove"),
    ] {
        let started = Instant::now();
        let args = ["keyring", "-wan", flag, key];
        let out = meridian_cli(state, server, &args).await;
        let secs = started.elapsed().as_secs_f64();
        report.timings.insert(format!("wan_key_{what}_s"), secs);
        match out {
            Ok(_) => steps.push(format!("keyring -wan {flag} ({secs:.2}s)")),
            Err(e) => {
                return Err(step_error(format!(
                    "`meridian keyring -wan {flag}` on {}: {e}",
                    server.name
                )));
            }
        }
    }
    Ok(())
}

/// Checks, on every DC's server: `keyring -wan -list` shows the new key on every gateway
/// and nothing else, and `keyring -list` shows the DC's LAN key as before.
async fn held_keys(state: &State, fed: &Fed, report: &mut Report, new: &str, old: &str) {
    let gateways: usize = fed.dcs.iter().map(|d| d.gateways.len()).sum();
    let mut wan_wrong = Vec::new();
    let mut lan_wrong = Vec::new();
    for d in &fed.dcs {
        let name = &d.server.name;
        match meridian_cli(state, &d.server, &["keyring", "-wan", "-list"]).await {
            Ok(text) => {
                let blocks = key_blocks(&text);
                let want = BTreeMap::from([(new.to_string(), (gateways, gateways))]);
                if blocks.get("WAN") != Some(&want) || blocks.len() != 1 {
                    wan_wrong.push(format!("{name}: {blocks:?}"));
                }
            }
            Err(e) => wan_wrong.push(format!("{name}: {e}")),
        }
        let Some(lan_key) = state.gossip_keys.lan.get(&d.name) else {
            continue;
        };
        let pool = format!("{} (LAN)", d.name);
        match meridian_cli(state, &d.server, &["keyring", "-list"]).await {
            Ok(text) => {
                let blocks = key_blocks(&text);
                let lan = blocks.get(&pool);
                if lan.is_none_or(|b| b.len() != 1 || !b.contains_key(lan_key)) {
                    lan_wrong.push(format!("{name}: {pool} {lan:?}"));
                }
            }
            Err(e) => lan_wrong.push(format!("{name}: {e}")),
        }
    }
    let servers: Vec<&str> = fed.dcs.iter().map(|d| d.server.name.as_str()).collect();
    report.check(
        "every_gateway_holds_only_the_new_wan_key",
        wan_wrong.is_empty(),
        if wan_wrong.is_empty() {
            format!(
                "`keyring -wan -list` on {}: {} [{gateways}/{gateways}] only (old {} gone)",
                servers.join(", "),
                short(new),
                short(old)
            )
        } else {
            wan_wrong.join("; ")
        },
    );
    if !state.gossip_keys.lan.is_empty() {
        report.check(
            "lan_keys_untouched_by_the_wan_rotation",
            lan_wrong.is_empty(),
            if lan_wrong.is_empty() {
                format!(
                    "`keyring -list` on {}: each DC's own LAN key, as before",
                    servers.join(", ")
                )
            } else {
                lan_wrong.join("; ")
            },
        );
    }
}

/// Checks that the WAN pool is converged (polled until it is, with a deadline).
async fn converged(state: &State, fed: &Fed, report: &mut Report) {
    let started = Instant::now();
    let last = RefCell::new(Vec::new());
    let done = wait::until(
        "the WAN pool converged after the rotation",
        DEADLINE,
        "",
        || async {
            let problems = matrix::pool_problems(state, fed).await;
            let ok = problems.is_empty();
            *last.borrow_mut() = problems;
            ok.then_some(())
        },
    )
    .await;
    let last = last.into_inner();
    report.check(
        "wan_pool_converged_after_key_rotation",
        done.is_ok(),
        match done {
            Ok(()) => format!(
                "every server lists every gateway alive and every DC lists every DC ({:.2}s after the rotation)",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => format!("{e}: {}", last.join("; ")),
        },
    );
}

/// The blocks of `keyring -list` output: `WAN:` / `dc1 (LAN):` headers, then `  KEY
/// [held/nodes]` lines.
fn key_blocks(text: &str) -> BTreeMap<String, KeyBlock> {
    let mut blocks: BTreeMap<String, KeyBlock> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(header) = line.strip_suffix(':').filter(|_| !line.starts_with(' ')) {
            current = Some(header.to_string());
            blocks.entry(header.to_string()).or_default();
            continue;
        }
        let (Some(pool), Some((key, counts))) = (&current, line.trim().split_once(' ')) else {
            continue;
        };
        let counts = counts.trim_start_matches('[').trim_end_matches(']');
        if let Some((held, of)) = counts.split_once('/')
            && let (Ok(held), Ok(of)) = (held.parse(), of.parse())
        {
            blocks
                .entry(pool.clone())
                .or_default()
                .insert(key.to_string(), (held, of));
        }
    }
    blocks
}

/// The first characters of a key, enough to tell keys apart in a message.
fn short(key: &str) -> String {
    format!("{}…", key.chars().take(8).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::key_blocks;

    #[test]
    fn keyring_list_output_is_read_per_pool() {
        let text = "==> Gathering installed encryption keys...\n\nWAN:\n  K1= [4/4]\n  K2= [1/4]\n\ndc1 (LAN):\n  L1= [4/4]\n";
        let b = key_blocks(text);
        assert_eq!(b.len(), 2, "{b:?}");
        assert_eq!(b["WAN"]["K1="], (4, 4));
        assert_eq!(b["WAN"]["K2="], (1, 4));
        assert_eq!(b["dc1 (LAN)"]["L1="], (4, 4));
        assert!(key_blocks("==> Gathering installed encryption keys...\n").is_empty());
    }
}
