//! A linearizability checker for KV histories: is there one order of every key's operations
//! that respects real time (an op that returned before another was sent comes first) and
//! that a single register would have produced?
//!
//! Keys are independent registers (linearizability is compositional, so each key is
//! checked alone). The search is Wing & Gong's, with Lowe's memo of (ops placed, register
//! value) so no configuration is explored twice — the algorithm of Knossos and Porcupine.
//!
//! - Acknowledged ops must take effect between their send and their answer.
//! - Ops with an unknown outcome never "return": they may take effect at any time after
//!   they were sent, or not at all (placing them after everything else changes nothing).
//! - Ops refused before anything happened (`Fail`) are left out: the server promised they
//!   were not applied, and if one was, a read shows a value no acknowledged or unknown
//!   write wrote, which the search cannot explain.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::history::{Call, Op, Outcome};

/// How many configurations one key may explore before the checker gives up on it.
pub const DEFAULT_BUDGET: usize = 5_000_000;

/// One key's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// An order exists.
    Linearizable {
        /// Ops checked (failed ones left out).
        ops: usize,
    },
    /// No order exists.
    NotLinearizable {
        /// Ops checked.
        ops: usize,
        /// How many ops the longest valid prefix placed.
        placed: usize,
        /// The value the register held there (`None`: absent).
        state: Option<String>,
        /// The ops that could have come next there, none of which fits (described).
        stuck_on: Vec<String>,
    },
    /// The search exceeded its budget: neither proven nor refuted.
    Undecided {
        /// Ops checked.
        ops: usize,
        /// Configurations explored.
        explored: usize,
    },
}

impl Verdict {
    /// Whether the key is proven linearizable.
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Linearizable { .. })
    }
}

/// Checks every key of `history`; verdicts by key.
pub fn check(history: &[Op], budget: usize) -> BTreeMap<String, Verdict> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    by_key
        .into_iter()
        .map(|(key, ops)| (key.to_string(), check_key(&ops, budget)))
        .collect()
}

/// What the model sees of one op: values interned (0 = absent).
#[derive(Debug, Clone, Copy)]
enum Step {
    Read(u32),
    Write(u32),
    Cas { from: u32, to: u32, applied: bool },
    CasMaybe { from: u32, to: u32 },
}

/// One op as the search sees it.
struct Entry<'a> {
    invoke: u64,
    ret: u64,
    step: Step,
    op: &'a Op,
}

/// The register: the state after `step` from `state`, or `None` if `step` could not have
/// answered what it did.
fn apply(state: u32, step: Step) -> Option<u32> {
    match step {
        Step::Read(v) => (state == v).then_some(state),
        Step::Write(v) => Some(v),
        Step::Cas {
            from,
            to,
            applied: true,
        } => (state == from).then_some(to),
        Step::Cas {
            from,
            applied: false,
            ..
        } => (state != from).then_some(state),
        Step::CasMaybe { from, to } => Some(if state == from { to } else { state }),
    }
}

/// Checks one key. First without the unknown-outcome writes whose value nobody saw (no
/// read returned it, no CAS expected it): placing such a write last is always possible, so
/// an order found without them is an order with them, and each one left out halves the
/// search. Only if that fails is the whole history searched.
fn check_key(ops: &[&Op], budget: usize) -> Verdict {
    let mut seen: HashSet<&str> = HashSet::new();
    for op in ops {
        match (&op.call, &op.outcome) {
            (_, Outcome::Read { value: Some(v) }) => {
                seen.insert(v);
            }
            (Call::Cas { from: Some(v), .. }, _) => {
                seen.insert(v);
            }
            _ => {}
        }
    }
    let unseen_unknown = |op: &&&Op| {
        let written = match &op.call {
            Call::Write { value } => value,
            Call::Cas { to, .. } => to,
            Call::Read => return false,
        };
        matches!(op.outcome, Outcome::Unknown { .. }) && !seen.contains(written.as_str())
    };
    if ops.iter().any(|op| unseen_unknown(&op)) {
        let fewer: Vec<&Op> = ops
            .iter()
            .filter(|op| !unseen_unknown(op))
            .copied()
            .collect();
        if search_key(&fewer, budget).is_ok() {
            return Verdict::Linearizable { ops: ops.len() };
        }
    }
    search_key(ops, budget)
}

fn search_key(ops: &[&Op], budget: usize) -> Verdict {
    let mut names: HashMap<String, u32> = HashMap::new();
    let mut values: Vec<Option<String>> = vec![None];
    let mut intern = |v: Option<&str>| -> u32 {
        let Some(s) = v else { return 0 };
        *names.entry(s.to_string()).or_insert_with(|| {
            values.push(Some(s.to_string()));
            (values.len() - 1) as u32
        })
    };
    let mut entries: Vec<Entry<'_>> = Vec::with_capacity(ops.len());
    for op in ops {
        let (step, ret) = match (&op.call, &op.outcome) {
            (_, Outcome::Fail { .. }) | (Call::Read, Outcome::Unknown { .. }) => continue,
            (Call::Read, Outcome::Read { value }) => {
                (Step::Read(intern(value.as_deref())), op.complete_ns)
            }
            (Call::Write { value }, Outcome::Done { .. }) => {
                (Step::Write(intern(Some(value))), op.complete_ns)
            }
            (Call::Write { value }, Outcome::Unknown { .. }) => {
                (Step::Write(intern(Some(value))), u64::MAX)
            }
            (Call::Cas { from, to }, Outcome::Done { applied }) => {
                let (from, to) = (intern(from.as_deref()), intern(Some(to)));
                (
                    Step::Cas {
                        from,
                        to,
                        applied: *applied,
                    },
                    op.complete_ns,
                )
            }
            (Call::Cas { from, to }, Outcome::Unknown { .. }) => {
                let (from, to) = (intern(from.as_deref()), intern(Some(to)));
                (Step::CasMaybe { from, to }, u64::MAX)
            }
            // A shape the clients never record (a read answered "done"): unexplainable.
            _ => (Step::Read(u32::MAX), op.complete_ns),
        };
        entries.push(Entry {
            invoke: op.invoke_ns,
            ret,
            step,
            op,
        });
    }
    entries.sort_by_key(|e| e.invoke);
    let n = entries.len();
    let mut search = Search::new(&entries);
    match search.run(budget) {
        Found::Yes => Verdict::Linearizable { ops: n },
        Found::Budget => Verdict::Undecided {
            ops: n,
            explored: search.memo.len(),
        },
        Found::No => {
            let (placed, state, stuck) = search.deepest;
            Verdict::NotLinearizable {
                ops: n,
                placed,
                state: values.get(state as usize).cloned().flatten(),
                stuck_on: stuck.iter().map(|&i| entries[i].op.describe()).collect(),
            }
        }
    }
}

enum Found {
    Yes,
    No,
    Budget,
}

/// A fixed-size set of op indexes.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// One level of the depth-first search: the ops that may go next, and which to try next.
struct Frame {
    candidates: Vec<usize>,
    next: usize,
    state: u32,
}

struct Search<'e, 'a> {
    entries: &'e [Entry<'a>],
    placed: Bits,
    count: usize,
    memo: HashSet<(Bits, u32)>,
    /// The deepest point reached: ops placed, state, the candidates there.
    deepest: (usize, u32, Vec<usize>),
}

impl<'e, 'a> Search<'e, 'a> {
    fn new(entries: &'e [Entry<'a>]) -> Self {
        Search {
            entries,
            placed: Bits::new(entries.len()),
            count: 0,
            memo: HashSet::new(),
            deepest: (0, 0, Vec::new()),
        }
    }

    /// The unplaced ops that may be placed next: every one sent before the earliest answer
    /// among the unplaced ops (anything sent later must come after that one).
    fn candidates(&self) -> Vec<usize> {
        let mut min_ret = u64::MAX;
        let mut out = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if self.placed.get(i) {
                continue;
            }
            if e.invoke > min_ret {
                break;
            }
            out.push(i);
            min_ret = min_ret.min(e.ret);
        }
        // (Sorted by send time, so no op collected earlier was sent after a later answer.)
        out
    }

    fn run(&mut self, budget: usize) -> Found {
        let n = self.entries.len();
        if n == 0 {
            return Found::Yes;
        }
        let mut frames = vec![Frame {
            candidates: self.candidates(),
            next: 0,
            state: 0,
        }];
        loop {
            let Some(top) = frames.last_mut() else {
                return Found::No;
            };
            if top.next == 0 && self.count >= self.deepest.0 {
                self.deepest = (self.count, top.state, top.candidates.clone());
            }
            if top.next >= top.candidates.len() {
                frames.pop();
                if let Some(parent) = frames.last() {
                    self.placed.clear(parent.candidates[parent.next - 1]);
                    self.count -= 1;
                }
                continue;
            }
            let i = top.candidates[top.next];
            top.next += 1;
            let Some(state) = apply(top.state, self.entries[i].step) else {
                continue;
            };
            self.placed.set(i);
            if !self.memo.insert((self.placed.clone(), state)) {
                self.placed.clear(i);
                continue;
            }
            self.count += 1;
            if self.count == n {
                return Found::Yes;
            }
            if self.memo.len() > budget {
                return Found::Budget;
            }
            frames.push(Frame {
                candidates: self.candidates(),
                next: 0,
                state,
            });
        }
    }
}

#[cfg(test)]
#[path = "checker_tests.rs"]
mod tests;
