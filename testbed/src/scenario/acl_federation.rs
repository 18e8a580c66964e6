//! Scenario `acl-federation`: ACLs across datacenters (#17's acceptance) on a federation
//! whose agents run ACLs with `default_policy = "deny"`, the first DC as
//! `primary_datacenter`, token replication, and [`MANAGEMENT`] as initial management,
//! replication and agent default token (`examples/federation.toml`: the default token
//! keeps the `federation` scenario's tokenless requests working, so both run on one
//! testbed). Every request here names its token (`?token=`).
//!
//! 1. Every other DC's leader replicates from the first (`/v1/acl/replication`: Enabled,
//!    Running, from the first DC, tokens, a token index).
//! 2. A policy (`key_prefix "<p>/" write`) and a token holding it, made in the first DC,
//!    let a KV write in the last DC succeed (timed; within [`APPLIES`]) and nothing
//!    outside the prefix.
//! 3. With the WAN link between the first and last DC blackholed, the last DC keeps
//!    authorizing that token from its replica (and keeps refusing outside the prefix);
//!    the link is restored before returning.

use std::time::Duration;

use super::Report;
use super::sites::{get, put};
use crate::error::TestbedError;
use crate::helper::{ReadRecord, unix_ms};
use crate::out::Progress;
use crate::plan::HostPlan;
use crate::state::{RunDir, State};
use crate::wait;
use crate::wan::control::LinkChange;

/// The SecretID of the management token the topology configures (acceptance only: a
/// fixed, public secret).
pub(super) const MANAGEMENT: &str = "7d3e1c52-6b0a-4f1e-9a57-2c4b8e0f6a19";
/// How soon an object made in the first DC must apply in the last.
const APPLIES: Duration = Duration::from_secs(10);
/// How long replication may take to start after the testbed is up.
const STARTS: Duration = Duration::from_secs(60);

/// Runs the scenario, filling `report`.
pub(super) async fn run(
    run_dir: &RunDir,
    state: &mut State,
    report: &mut Report,
    progress: Progress,
) -> Result<(), TestbedError> {
    let servers: Vec<HostPlan> = state
        .plan
        .dcs
        .iter()
        .filter_map(|d| {
            state
                .plan
                .servers_of(&d.name)
                .find(|s| state.processes.contains_key(&s.name))
                .cloned()
        })
        .collect();
    let (Some(first), Some(last)) = (servers.first().cloned(), servers.last().cloned()) else {
        return Err(super::ScenarioError::Precondition {
            name: "acl-federation",
            needs: "two datacenters with a running server".into(),
        }
        .into());
    };
    if first.dc == last.dc {
        return Err(super::ScenarioError::Precondition {
            name: "acl-federation",
            needs: "two datacenters with a running server".into(),
        }
        .into());
    }
    progress.say("ACL replication in every secondary");
    for s in &servers[1..] {
        let path = format!("/v1/acl/replication?token={MANAGEMENT}");
        let running = |r: &ReadRecord| {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            v["Enabled"] == true
                && v["Running"] == true
                && v["SourceDatacenter"] == first.dc.as_str()
                && v["ReplicationType"] == "tokens"
                && v["ReplicatedTokenIndex"].as_u64() > Some(0)
        };
        let seen = wait::until("ACL replication running", STARTS, "", || async {
            let r = get(state, s, &path).await;
            running(&r).then_some(r)
        })
        .await;
        let detail = match seen {
            Ok(r) => r,
            Err(_) => get(state, s, &path).await,
        };
        report.check(
            &format!("acl_replication_running_in_{}", s.dc),
            running(&detail),
            format!("{}: {}", s.name, brief(&detail)),
        );
    }

    progress.say(&format!(
        "a policy and token made in {} used in {}",
        first.dc, last.dc
    ));
    let prefix = format!("aclfed{}", unix_ms());
    let rules = format!("key_prefix \\\"{prefix}/\\\" {{ policy = \\\"write\\\" }}");
    let policy = put(
        state,
        &first,
        &format!("/v1/acl/policy?token={MANAGEMENT}"),
        &format!(r#"{{"Name":"{prefix}","Rules":"{rules}"}}"#),
    )
    .await;
    let token = put(
        state,
        &first,
        &format!("/v1/acl/token?token={MANAGEMENT}"),
        &format!(r#"{{"Policies":[{{"Name":"{prefix}"}}]}}"#),
    )
    .await;
    let secret = serde_json::from_str::<serde_json::Value>(&token.body)
        .ok()
        .and_then(|v| v["SecretID"].as_str().map(str::to_string));
    report.check(
        "policy_and_token_created_in_the_primary",
        policy.status == Some(200) && secret.is_some(),
        format!("policy {}; token {}", brief(&policy), brief(&token)),
    );
    let Some(secret) = secret else {
        return Ok(());
    };
    let inside = |k: &str| format!("/v1/kv/{prefix}/{k}?token={secret}");
    let outside = format!("/v1/kv/not-{prefix}?token={secret}");
    let started = tokio::time::Instant::now();
    let applied = wait::until("the token applied", APPLIES, "", || async {
        let r = put(state, &last, &inside("a"), "v").await;
        (r.status == Some(200) && r.body.trim() == "true").then_some(())
    })
    .await;
    let took = started.elapsed().as_secs_f64();
    report
        .timings
        .insert("acl_primary_to_last_dc_s".into(), took);
    report.check(
        "primary_policy_applies_in_the_last_dc",
        applied.is_ok(),
        format!("a write under {prefix}/ in {} after {took:.2}s", last.dc),
    );
    let denied = put(state, &last, &outside, "v").await;
    report.check(
        "last_dc_refuses_outside_the_policy",
        denied.status == Some(403),
        brief(&denied),
    );

    progress.say(&format!(
        "{} cut off from {}: {} keeps authorizing",
        first.dc, last.dc, last.dc
    ));
    super::inject::link(run_dir, state, &first.dc, &last.dc, LinkChange::Blackhole).await?;
    let during = put(state, &last, &inside("b"), "v").await;
    let read = get(state, &last, &inside("a")).await;
    let refused = put(state, &last, &outside, "v").await;
    let restored =
        super::inject::link(run_dir, state, &first.dc, &last.dc, LinkChange::Restore).await;
    report.check(
        "cut_off_dc_authorizes_replicated_token",
        during.status == Some(200) && during.body.trim() == "true" && read.status == Some(200),
        format!("write {}; read {}", brief(&during), brief(&read)),
    );
    report.check(
        "cut_off_dc_still_refuses_outside_the_policy",
        refused.status == Some(403),
        brief(&refused),
    );
    restored?;
    Ok(())
}

fn brief(r: &ReadRecord) -> String {
    match (&r.status, &r.error) {
        (Some(s), _) => format!("HTTP {s} {}", r.body.trim()),
        (None, Some(e)) => format!("error {e}"),
        (None, None) => "no answer".into(),
    }
}
