//! Federation end to end: three datacenters joined by real `meridian-gateway`s
//! (`examples/federation.toml`: dc1 = 1 server + 1 client + 2 gateways, dc2 and dc3 = 1
//! server + 1 gateway, WAN links of 10, 25 and 40 ms; mTLS on every RPC hop, a LAN key
//! per DC and a WAN key), `scenario federation` (`?dc=` and DNS between every pair of DCs,
//! an unknown DC, a gateway killed under load, a WAN blackhole, WAN key and CA rotation
//! under load, remove-dc) after `scenario acl-federation` (ACLs are on in every DC: a
//! policy and token made in dc1 apply in dc3, also with dc1 cut off), down, and nothing of
//! the run left. Skipped, saying why, where
//! network namespaces cannot be made.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{Run, down_leaves_nothing, newest_report, skip_reason, up};

/// The scenario's checks that must all be there and hold.
const CHECKS: &[&str] = &[
    "only_gateways_route_to_other_dcs",
    "wan_pool_lists_every_gateway_alive",
    "datacenters_listed_on_every_dc",
    "kv_put_with_dc_lands_in_that_dc",
    "catalog_service_with_dc_answers_that_dc",
    "health_service_with_dc_answers_that_dc",
    "dns_answers_other_dc_services",
    "dns_answers_other_dc_nodes",
    "unknown_dc_is_no_path_fast",
    "unknown_dc_dns_nxdomain",
    "latency_reads_all_answered",
    "gateway_dc1_g1_rejoins",
    "gateway_dc1_g2_rejoins",
    "gateway_failover_no_failed_query",
    "other_dc_unaffected_by_blackhole",
    "blackholed_dc_fails_within_deadline",
    "blackholed_dc_dns_answers_from_the_copy",
    "blackholed_dc_answers_after_restore",
    "no_cross_dc_read_hangs",
    "datacenters_sorted_by_wan_rtt",
    "wan_key_rotated_with_the_cli",
    "every_gateway_holds_only_the_new_wan_key",
    "lan_keys_untouched_by_the_wan_rotation",
    "wan_pool_converged_after_key_rotation",
    "wan_key_rotation_no_failed_query",
    "cert_rotation_every_process_trusts_both_cas",
    "cert_rotation_every_process_presents_its_new_certificate",
    "cert_rotation_every_process_refuses_the_old_ca",
    "cert_rotation_no_failed_query",
    "cert_rotation_fresh_connections_work_after_every_step",
    "remove_dc_refused_while_its_gateways_live",
    "remove_dc_gateways_stopped_and_seen_gone",
    "remove_dc_removes_every_gateway_of_the_dc",
    "removed_dc_gone_from_every_datacenters_list",
    "removed_dc_is_no_path_fast",
    "removed_dc_rejoins_when_its_gateways_return",
    "remove_dc_no_failed_query",
];

/// `acl-federation`'s checks.
const ACL_CHECKS: &[&str] = &[
    "acl_replication_running_in_dc2",
    "acl_replication_running_in_dc3",
    "policy_and_token_created_in_the_primary",
    "primary_policy_applies_in_the_last_dc",
    "last_dc_refuses_outside_the_policy",
    "cut_off_dc_authorizes_replicated_token",
    "cut_off_dc_still_refuses_outside_the_policy",
];

/// Every gateway process runs and a server of its DC lists it alive (`status --json`).
fn gateways_alive(run: &Run) {
    let out = run.testbed(&["status", "--json"]);
    assert!(out.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("status json");
    let gws: Vec<&serde_json::Value> = rows.iter().filter(|r| r["role"] == "gateway").collect();
    assert_eq!(gws.len(), 4, "{rows:#?}");
    for g in gws {
        assert_eq!(g["alive"], "yes", "{g:#}");
    }
}

/// Three DCs with gateways, over mTLS: every DC reaches every other with `?dc=` and DNS,
/// an unknown DC fails fast, killing either of dc1's gateways under 20 reads/s fails no
/// read, a blackholed WAN link fails reads within 8 s while the other DC keeps answering,
/// and the restore brings the DC back; the WAN key and then the whole CA are rotated
/// while every DC reads every other, with no failed read; dc3 is removed with `remove-dc`
/// (refused while its gateway lives) and rejoins; nothing of the run is left afterwards.
#[test]
fn three_federated_dcs_survive_gateway_loss_a_blackhole_key_and_ca_rotation_and_remove_dc() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let started = Instant::now();
    let run = Run::new();
    let prefix = up(
        &run,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/federation.toml"),
        true,
    );
    gateways_alive(&run);

    // ACLs across the datacenters (#17) first: it waits until every secondary replicates,
    // so the agents' default token (the management token) resolves everywhere before
    // `federation` asks without a token.
    let out = run.testbed(&["scenario", "acl-federation"]);
    let report = newest_report(&run, "acl-federation");
    assert!(out.status.success(), "scenario failed: {report:#}");
    for name in ACL_CHECKS {
        let check = report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == *name));
        assert_eq!(
            check.map(|c| &c["ok"]),
            Some(&serde_json::json!(true)),
            "{name}: {report:#}"
        );
    }

    let out = run.testbed(&["scenario", "federation"]);
    let report = newest_report(&run, "federation");
    assert!(out.status.success(), "scenario failed: {report:#}");
    assert_eq!(report["ok"], true, "{report:#}");
    let checks = report["checks"].as_array().expect("checks");
    for name in CHECKS {
        let check = checks.iter().find(|c| c["name"] == *name);
        assert_eq!(
            check.map(|c| &c["ok"]),
            Some(&serde_json::json!(true)),
            "{name}: {report:#}"
        );
    }
    let counts = &report["counts"];
    assert_eq!(counts["failover_reads_failed"], 0, "{report:#}");
    assert!(
        counts["failover_reads_ok"].as_u64() >= Some(100),
        "{report:#}"
    );
    assert!(
        counts["blackhole_dc3_reads_failed"].as_u64() >= Some(2),
        "{report:#}"
    );
    // Zero failed queries under both rotations and the removal, with real traffic: every
    // ordered pair of the 3 DCs (2 for remove-dc) reads at 10/s for the whole phase.
    for (phase, min) in [
        ("wan_key_rotation", 78),
        ("cert_rotation", 144),
        ("remove_dc", 12),
    ] {
        assert_eq!(counts[format!("{phase}_reads_failed")], 0, "{report:#}");
        assert!(
            counts[format!("{phase}_reads_ok")].as_u64() >= Some(min),
            "{phase}: {report:#}"
        );
    }
    assert!(
        counts["cert_rotation_rpc_connections_ended"].as_u64() >= Some(24),
        "{report:#}"
    );
    for t in [
        "read_dc1_local_p50_ms",
        "read_dc1_to_dc2_p99_ms",
        "read_dc1_to_dc3_p50_ms",
        "dc3_answers_again_after_restore_s",
        "wan_key_remove_s",
        "remove_dc_gone_from_datacenters_s",
        "removed_dc_rejoined_after_s",
    ] {
        assert!(report["timings"][t].as_f64().is_some(), "{t}: {report:#}");
    }
    let plots = report["plots"].as_array().expect("plots");
    assert_eq!(plots.len(), 1, "{report:#}");
    let png = std::fs::read(plots[0].as_str().expect("path")).expect("plot file");
    assert!(png.starts_with(b"\x89PNG"));
    // The scenario repaired what it broke: gateways back (dc3's after remove-dc too), the
    // link as the topology has it; the WAN key and the CA are the rotated ones.
    gateways_alive(&run);
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.path().join("state.json")).expect("state file"),
    )
    .expect("state json");
    let links = state["wan_links"].as_array().expect("links");
    assert!(
        links.iter().all(|l| l["params"]["blackhole"] == false),
        "{links:#?}"
    );
    assert_eq!(
        state["tls"]["cas"].as_array().map(Vec::len),
        Some(2),
        "{state:#}"
    );

    down_leaves_nothing(&run, &prefix);
    eprintln!("whole test: {:.2}s", started.elapsed().as_secs_f64());
}
