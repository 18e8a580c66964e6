//! The WAN link emulator end to end: two datacenters with one gateway each, real UDP and
//! TCP echoes between the gateways (`testbed wan probe`), and the link changed at run time.
//! Skipped, saying why, where network namespaces cannot be made.

mod common;

use common::{Run, down_leaves_nothing, skip_reason, up};

/// `testbed wan probe ... --json`, parsed.
fn probe(run: &Run, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["wan", "probe", "dc1-g1", "dc2-g1", "--json"];
    all.extend_from_slice(args);
    let out = run.testbed(&all);
    assert!(out.status.success(), "probe failed");
    serde_json::from_slice(&out.stdout).expect("probe json")
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Lost / (lost + forwarded) of one direction of the emulator's counts, in percent.
fn loss_rate(c: &serde_json::Value) -> f64 {
    let (lost, fwd) = (f(&c["lost"]), f(&c["forwarded"]));
    100.0 * lost / (lost + fwd)
}

/// A 25 ms link doubles into a ≥ 50 ms round trip for UDP and TCP; a delay set at run time
/// shows at once; a 20 % loss drops about a fifth of the packets each way; a blackhole
/// passes nothing; restore brings back the topology's link.
#[test]
fn wan_link_emulator_delays_drops_and_blackholes_real_packets() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let started = std::time::Instant::now();
    let run = Run::new();
    let topo = run.path().join("wan.toml");
    std::fs::write(
        &topo,
        "[datacenter.dc1]\nservers = 1\ngateways = 1\n\
         [datacenter.dc2]\nservers = 1\ngateways = 1\n\
         [wan_link.dc1.dc2]\ndelay = \"25ms\"\n",
    )
    .expect("topology");
    let prefix = up(&run, &topo, false);

    let p = probe(&run, &["--count", "40", "--interval", "5ms"]);
    assert_eq!(p["udp"]["received"], 40, "{p:#}");
    assert!(f(&p["udp"]["rtt_ms"]["min"]) >= 50.0, "{p:#}");
    assert!(f(&p["udp"]["rtt_ms"]["p50"]) < 100.0, "{p:#}");
    assert_eq!(p["tcp"]["received"], 20, "{p:#}");
    assert!(f(&p["tcp"]["rtt_ms"]["min"]) >= 50.0, "{p:#}");
    assert!(f(&p["tcp"]["connect_ms"]) >= 50.0, "{p:#}");

    assert!(
        run.testbed(&["wan", "delay", "dc2", "dc1", "60ms"])
            .status
            .success()
    );
    let p = probe(&run, &["--count", "20", "--udp-only"]);
    assert_eq!(p["udp"]["received"], 20, "{p:#}");
    assert!(f(&p["udp"]["rtt_ms"]["min"]) >= 120.0, "{p:#}");

    assert!(
        run.testbed(&["wan", "loss", "dc1", "dc2", "20"])
            .status
            .success()
    );
    let p = probe(&run, &["--count", "600", "--interval", "1ms", "--udp-only"]);
    // 600 packets: one standard deviation of the rate is about 1.7 points each way.
    for dir in ["forward", "back"] {
        let rate = loss_rate(&p["emulator"][dir]);
        assert!(
            (13.0..=27.0).contains(&rate),
            "{dir} loss {rate:.1}%: {p:#}"
        );
    }
    // Both ways: 1 − 0.8² = 36 % of the round trips.
    let rtt_loss = f(&p["udp"]["loss_percent"]);
    assert!(
        (26.0..=46.0).contains(&rtt_loss),
        "round-trip loss {rtt_loss:.1}%: {p:#}"
    );

    assert!(
        run.testbed(&["wan", "blackhole", "dc1", "dc2"])
            .status
            .success()
    );
    let p = probe(&run, &["--count", "20", "--wait", "500ms"]);
    assert_eq!(p["udp"]["received"], 0, "{p:#}");
    assert_eq!(p["tcp"]["received"], 0, "{p:#}");
    assert!(f(&p["emulator"]["forward"]["blackholed"]) >= 20.0, "{p:#}");
    assert_eq!(p["emulator"]["forward"]["forwarded"], 0, "{p:#}");

    assert!(
        run.testbed(&["wan", "restore", "dc1", "dc2"])
            .status
            .success()
    );
    let p = probe(&run, &["--count", "20", "--udp-only"]);
    assert_eq!(p["params"]["delay_us"], 25_000, "{p:#}");
    assert_eq!(p["udp"]["received"], 20, "{p:#}");
    assert!(f(&p["udp"]["rtt_ms"]["min"]) >= 50.0, "{p:#}");

    down_leaves_nothing(&run, &prefix);
    eprintln!("whole test: {:.2}s", started.elapsed().as_secs_f64());
}
