//! The checker against hand-made histories: the anomalies it must find (stale read, lost
//! write, CAS from a value never written, CAS answered false that took effect, a refused
//! write that was applied) and the concurrent histories it must accept.

use super::*;
use crate::jepsen::history::{Call, Op, Outcome};

/// An op on key "k" by client `c`, sent at `t0` and answered at `t1` (seconds).
fn op(c: u32, t0: f64, t1: f64, call: Call, outcome: Outcome) -> Op {
    Op {
        client: c,
        server: 0,
        key: "k".into(),
        call,
        invoke_ns: (t0 * 1e9) as u64,
        complete_ns: (t1 * 1e9) as u64,
        outcome,
    }
}

fn w(v: &str) -> Call {
    Call::Write { value: v.into() }
}

fn cas(from: Option<&str>, to: &str) -> Call {
    Call::Cas {
        from: from.map(Into::into),
        to: to.into(),
    }
}

fn read(v: Option<&str>) -> Outcome {
    Outcome::Read {
        value: v.map(Into::into),
    }
}

fn done(applied: bool) -> Outcome {
    Outcome::Done { applied }
}

fn unknown() -> Outcome {
    Outcome::Unknown {
        error: "timeout".into(),
    }
}

fn fail() -> Outcome {
    Outcome::Fail {
        error: "No cluster leader".into(),
    }
}

fn verdict(h: &[Op]) -> Verdict {
    check(h, DEFAULT_BUDGET).remove("k").expect("key k checked")
}

#[test]
fn sequential_writes_and_reads_are_linearizable() {
    let h = [
        op(1, 0.0, 1.0, Call::Read, read(None)),
        op(1, 2.0, 3.0, w("a"), done(true)),
        op(2, 4.0, 5.0, Call::Read, read(Some("a"))),
        op(2, 6.0, 7.0, cas(Some("a"), "b"), done(true)),
        op(1, 8.0, 9.0, cas(Some("a"), "c"), done(false)),
        op(1, 10.0, 11.0, Call::Read, read(Some("b"))),
    ];
    assert_eq!(verdict(&h), Verdict::Linearizable { ops: 6 });
}

#[test]
fn concurrent_ops_may_take_effect_in_either_order() {
    // The read overlaps both writes and sees the first one sent last.
    let h = [
        op(1, 0.0, 3.0, w("a"), done(true)),
        op(2, 1.0, 4.0, w("b"), done(true)),
        op(3, 2.0, 5.0, Call::Read, read(Some("a"))),
        op(3, 6.0, 7.0, Call::Read, read(Some("a"))),
    ];
    assert!(verdict(&h).is_ok(), "{:?}", verdict(&h));
}

#[test]
fn a_stale_read_is_found() {
    // "b" was acknowledged before the read was sent; the read saw "a".
    let h = [
        op(1, 0.0, 1.0, w("a"), done(true)),
        op(1, 2.0, 3.0, w("b"), done(true)),
        op(2, 4.0, 5.0, Call::Read, read(Some("a"))),
    ];
    let v = verdict(&h);
    let Verdict::NotLinearizable {
        placed,
        state,
        stuck_on,
        ..
    } = v
    else {
        panic!("stale read not found: {v:?}");
    };
    assert_eq!(placed, 2);
    assert_eq!(state.as_deref(), Some("b"));
    assert!(stuck_on[0].contains("read = \"a\""), "{stuck_on:?}");
}

#[test]
fn a_lost_write_is_found() {
    // An acknowledged write, then reads that never see it.
    let h = [
        op(1, 0.0, 1.0, w("a"), done(true)),
        op(2, 2.0, 3.0, Call::Read, read(None)),
    ];
    assert!(!verdict(&h).is_ok());
}

#[test]
fn a_cas_from_a_value_never_written_is_found() {
    let h = [
        op(1, 0.0, 1.0, w("a"), done(true)),
        op(2, 2.0, 3.0, cas(Some("z"), "b"), done(true)),
    ];
    assert!(!verdict(&h).is_ok());
}

#[test]
fn a_cas_answered_false_that_took_effect_is_found() {
    // The CAS's value was read afterwards, although it answered false — the bug #19 found.
    let h = [
        op(1, 0.0, 1.0, w("a"), done(true)),
        op(2, 2.0, 3.0, cas(Some("a"), "b"), done(false)),
        op(1, 4.0, 5.0, Call::Read, read(Some("b"))),
    ];
    assert!(!verdict(&h).is_ok());
}

#[test]
fn a_refused_write_that_was_applied_is_found() {
    // "No cluster leader" promises the write was not applied.
    let h = [
        op(1, 0.0, 1.0, w("a"), fail()),
        op(2, 2.0, 3.0, Call::Read, read(Some("a"))),
    ];
    assert!(!verdict(&h).is_ok());
}

#[test]
fn an_unknown_write_may_take_effect_late_or_never() {
    let late = [
        op(1, 0.0, 1.0, w("a"), unknown()),
        op(2, 2.0, 3.0, Call::Read, read(None)),
        op(2, 4.0, 5.0, Call::Read, read(Some("a"))),
    ];
    assert!(verdict(&late).is_ok());
    let never = [
        op(1, 0.0, 1.0, w("a"), unknown()),
        op(2, 2.0, 3.0, w("b"), done(true)),
        op(2, 4.0, 5.0, Call::Read, read(Some("b"))),
    ];
    assert!(verdict(&never).is_ok());
    // But not before it was sent.
    let early = [
        op(2, 0.0, 1.0, Call::Read, read(Some("a"))),
        op(1, 2.0, 3.0, w("a"), unknown()),
    ];
    assert!(!verdict(&early).is_ok());
}

#[test]
fn an_unknown_cas_applies_only_where_its_value_matched() {
    let h = [
        op(1, 0.0, 1.0, w("a"), done(true)),
        op(2, 2.0, 3.0, cas(Some("a"), "b"), unknown()),
        op(1, 4.0, 5.0, w("c"), done(true)),
        op(3, 6.0, 7.0, Call::Read, read(Some("b"))),
    ];
    // "b" could only be written while "a" was there, i.e. before "c": reading "b" after
    // "c" was acknowledged is not linearizable.
    assert!(!verdict(&h).is_ok());
}

#[test]
fn keys_are_checked_independently() {
    let mut other = op(2, 2.0, 3.0, Call::Read, read(None));
    other.key = "other".into();
    let h = [op(1, 0.0, 1.0, w("a"), done(true)), other];
    let verdicts = check(&h, DEFAULT_BUDGET);
    assert!(verdicts["k"].is_ok());
    assert!(verdicts["other"].is_ok());
}

#[test]
fn a_long_concurrent_history_is_decided_quickly() {
    // 8 clients, 4000 overlapping ops on one key, every read seeing the latest write.
    let mut h = Vec::new();
    let mut last = None::<String>;
    for i in 0..4000u32 {
        let t = f64::from(i) * 0.01;
        let c = i % 8;
        if i % 3 == 0 {
            h.push(op(c, t, t + 0.075, Call::Read, read(last.as_deref())));
        } else {
            let v = format!("v{i}");
            h.push(op(c, t, t + 0.005, w(&v), done(true)));
            last = Some(v);
        }
    }
    let started = std::time::Instant::now();
    assert!(verdict(&h).is_ok());
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn the_budget_makes_a_verdict_undecided_not_wrong() {
    // 40 unknown writes, each value read once afterwards, the reads concurrent.
    let h: Vec<Op> = (0..40)
        .map(|i| op(i, 0.0, 1.0, w(&format!("v{i}")), unknown()))
        .chain((0..40).map(|i| {
            let v = format!("v{}", 39 - i);
            op(100 + i, 2.0, 3.0, Call::Read, read(Some(&v)))
        }))
        .collect();
    let v = check(&h, 1000).remove("k").expect("k");
    assert!(matches!(v, Verdict::Undecided { .. }), "{v:?}");
}
