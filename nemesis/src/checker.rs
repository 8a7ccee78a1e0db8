//! The linearizability checker: Wing & Gong's search with Lowe's memoization (as in
//! porcupine and knossos), run per key (every operation touches one key, and
//! linearizability is local, Herlihy & Wing 1990, so a history is linearizable iff each
//! key's sub-history is).
//!
//! The search linearizes operations one at a time. At each point the candidates are the
//! open operations invoked no later than the earliest completion among open operations
//! with a known outcome (anything invoked later must come after that one). An operation
//! with an unknown outcome completes at +infinity: it may be linearized anywhere after
//! its invocation, or never (the search succeeds once every definite operation is
//! placed). Operations answered 503 are left out: they did not happen, so a read that
//! saw their value fails the search. Definite candidates are tried before unknown ones;
//! the order changes only the time taken, never the verdict. Memoization: a (set of
//! linearized operations, model state) pair is explored at most once; sets are keyed by
//! a 128-bit Zobrist hash (a collision, at odds of about 2^-64 per pair, could only
//! hide a linearization, never invent one).
//!
//! Besides the key's value and version (`model.rs`), the search tracks revisions:
//! every applied write takes a new, larger cluster revision, so one key's writes must be
//! linearized in increasing revision order. A write's revision is known from its answer
//! (`mod_revision`, a delete's `revision`) or, for a timed-out put, from a read of its
//! value; a write of unknown revision takes at least one. This pins the order of
//! acknowledged writes and keeps the search narrow.
//!
//! Two reductions keep unknown operations (often hundreds per key) from blowing the
//! search up, both exact:
//! - an unknown operation is never linearized where it would not change the state (a
//!   failed compare-and-set, a delete of nothing): it is optional, so skipping it there
//!   loses no linearization;
//! - values that no read returned are all the same value ("anonymous"): no answer can
//!   tell them apart. Unknown operations with the same call on anonymous values are then
//!   interchangeable once invoked (they stay candidates until linearized), so only the
//!   earliest-invoked open one of each such class is tried.
//!
//! Bounded: past `steps_max` model steps or the deadline a key's verdict is `Unknown`.

use crate::history::{Call, Op, Outcome};
use crate::model::{step, KeyState, MCall, MRet};
use crate::rng::Rng;
use crate::violation::explain;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// Limits of one check.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Model steps allowed per key.
    pub steps_max: u64,
    /// No key's search runs past this instant.
    pub deadline: Instant,
}

/// A key's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No linearization exists; the text shows the longest linearizable prefix and the
    /// operations that could not follow it.
    Violation(String),
    /// The budget ran out first.
    Unknown(String),
}

/// The result for one key.
#[derive(Clone, Debug)]
pub struct KeyReport {
    pub key: String,
    pub verdict: Verdict,
    /// Operations the search took in (503s and unknown reads are left out).
    pub ops: usize,
    /// Of those, operations with an unknown outcome.
    pub unknown: usize,
    pub steps: u64,
}

/// Checks every key of `ops`, in key order.
pub fn check(ops: &[Op], budget: Budget) -> Vec<KeyReport> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        by_key.entry(op.key.as_str()).or_default().push(i);
    }
    by_key
        .into_iter()
        .map(|(key, idxs)| check_key(key, ops, &idxs, budget))
        .collect()
}

/// One operation as the search sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// Index into the history.
    pub(crate) op: usize,
    pub(crate) call: MCall,
    pub(crate) ret: MRet,
    pub(crate) invoke: u64,
    /// `u64::MAX` when unknown.
    pub(crate) complete: u64,
    /// The revision this write took, when known (its answer, or the reads of its value).
    pub(crate) rev: Option<u64>,
}

impl Entry {
    pub(crate) fn is_unknown(&self) -> bool {
        self.complete == u64::MAX
    }
}

/// Interns the values of one key.
#[derive(Default)]
pub(crate) struct Values<'a> {
    ids: HashMap<&'a str, u32>,
    names: Vec<&'a str>,
}

impl<'a> Values<'a> {
    fn id(&mut self, v: &'a str) -> u32 {
        if let Some(&id) = self.ids.get(v) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(v, id);
        self.names.push(v);
        id
    }

    pub(crate) fn show(&self, s: KeyState) -> String {
        match s {
            None => "absent".to_string(),
            Some((v, ver)) => format!(
                "{} at version {ver}",
                self.names.get(v as usize).copied().unwrap_or("?")
            ),
        }
    }
}

/// The id of every value that no read returned.
const ANONYMOUS: u32 = 0;
/// How reports show it.
const ANONYMOUS_NAME: &str = "(a value no read returned)";

/// The entries of one key, sorted by invocation, and the interned values.
fn entries<'a>(ops: &'a [Op], idxs: &[usize]) -> (Vec<Entry>, Values<'a>) {
    let mut values = Values::default();
    let _ = values.id(ANONYMOUS_NAME);
    // Values some read returned, with the mod_revision it reported (revision 0 means
    // "not given" in hand-written histories; real revisions start at 1).
    let observed: HashMap<&str, u64> = idxs
        .iter()
        .filter_map(|&i| match &ops.get(i)?.outcome {
            Outcome::Found {
                value,
                mod_revision,
                ..
            } => Some((value.as_str(), *mod_revision)),
            _ => None,
        })
        .collect();
    let mut out = Vec::with_capacity(idxs.len());
    for &i in idxs {
        let Some(op) = ops.get(i) else { continue };
        let call = match &op.call {
            Call::Get => MCall::Get,
            Call::Put { value, if_version } => MCall::Put {
                value: if observed.contains_key(value.as_str()) {
                    values.id(value)
                } else {
                    ANONYMOUS
                },
                if_version: *if_version,
            },
            Call::Delete { if_version } => MCall::Delete {
                if_version: *if_version,
            },
        };
        let ret = match &op.outcome {
            Outcome::NotApplied { .. } => continue,
            Outcome::Unknown { .. } | Outcome::Unexpected { .. } => {
                if !op.call.is_write() {
                    continue;
                }
                MRet::Unknown
            }
            Outcome::Found { value, version, .. } => MRet::Found {
                value: values.id(value),
                version: *version,
            },
            Outcome::NotFound => MRet::NotFound,
            Outcome::Written { version, .. } => MRet::Written { version: *version },
            Outcome::Deleted { .. } => MRet::Deleted,
            Outcome::Mismatch { current_version } => MRet::Mismatch {
                current_version: *current_version,
            },
        };
        let complete = match (ret, op.complete_us) {
            (MRet::Unknown, _) | (_, None) => u64::MAX,
            (_, Some(c)) => c,
        };
        let rev = match (&op.outcome, &op.call) {
            (Outcome::Written { mod_revision, .. }, _) => Some(*mod_revision),
            (Outcome::Deleted { revision }, _) => Some(*revision),
            (_, Call::Put { value, .. }) if ret == MRet::Unknown => {
                observed.get(value.as_str()).copied()
            }
            _ => None,
        }
        .filter(|r| *r > 0);
        out.push(Entry {
            op: i,
            call,
            ret,
            invoke: op.invoke_us,
            complete,
            rev,
        });
    }
    out.sort_by_key(|e| (e.invoke, e.op));
    (out, values)
}

/// One level of the depth-first search.
struct Frame {
    candidates: Vec<usize>,
    next: usize,
    /// The entry this level linearized and the state and revision floor before it
    /// (None at the root).
    applied: Option<(usize, KeyState, u64)>,
}

/// The furthest point the search reached, for the report.
#[derive(Default)]
pub(crate) struct Furthest {
    pub(crate) definite_placed: usize,
    pub(crate) state: KeyState,
    /// The last entries linearized.
    pub(crate) tail: Vec<usize>,
    /// The candidates at that point, none of which could follow.
    pub(crate) stuck: Vec<usize>,
}

/// Operations shown before the point where the search got stuck.
const TAIL_SHOWN: usize = 12;
/// Open operations shown at that point.
pub(crate) const STUCK_SHOWN: usize = 24;

struct Search<'e> {
    e: &'e [Entry],
    zobrist: Vec<u128>,
    /// Open definite entries by completion.
    open_by_return: BTreeSet<(u64, usize)>,
    /// Open definite entries in invocation order (entry index).
    open_definite: BTreeSet<usize>,
    /// Open unknown entries that are interchangeable within their class.
    open_classes: BTreeMap<MCall, BTreeSet<usize>>,
    /// Open unknown puts of values some read returned.
    open_observed: BTreeSet<usize>,
    /// Zobrist hash of the linearized definite entries.
    hash: u128,
    /// The linearized unknown entries.
    used_unknown: BTreeSet<usize>,
    state: KeyState,
    /// The least revision the next write to the key may take.
    floor: u64,
    definite_placed: usize,
    /// The relaxation (see [`check_key`]): unknown writes of anonymous values may take
    /// effect any number of times, never above `version_cap`.
    relaxed: bool,
    version_cap: u64,
}

/// True when sorted `small` is a subset of sorted `big`.
fn is_subset(small: &[usize], big: &[usize]) -> bool {
    let mut it = big.iter();
    small.iter().all(|x| it.by_ref().any(|y| y == x))
}

/// The class of an unknown entry, when it has one (see the module doc).
fn class_of(e: &Entry) -> Option<MCall> {
    match e.call {
        MCall::Put { value, .. } if value != ANONYMOUS => None,
        c => Some(c),
    }
}

impl Search<'_> {
    fn candidates(&self) -> Vec<usize> {
        let Some(&(first_return, _)) = self.open_by_return.first() else {
            return Vec::new();
        };
        let invoked = |i: &usize| self.e.get(*i).is_some_and(|e| e.invoke <= first_return);
        let mut out: Vec<usize> = self
            .open_definite
            .iter()
            .copied()
            .take_while(invoked)
            .collect();
        out.extend(self.open_observed.iter().copied().take_while(invoked));
        out.extend(
            self.open_classes
                .values()
                .filter_map(|set| set.first().copied())
                .filter(invoked),
        );
        out
    }

    /// True when `x` (an unknown, unconditional write of an anonymous value) has an open
    /// conditional twin that applies in the current state with the same effect: trying
    /// only the twin loses nothing, since `x` can do anything the twin can, later too.
    fn has_weaker_twin(&self, x: &Entry) -> bool {
        let Some(&(first_return, _)) = self.open_by_return.first() else {
            return false;
        };
        let version = self.state.map_or(0, |(_, v)| v);
        let twin = match x.call {
            MCall::Put {
                value: ANONYMOUS,
                if_version: None,
            } => MCall::Put {
                value: ANONYMOUS,
                if_version: Some(version),
            },
            MCall::Delete { if_version: None } if self.state.is_some() => MCall::Delete {
                if_version: Some(version),
            },
            _ => return false,
        };
        self.open_classes
            .get(&twin)
            .and_then(|set| set.first())
            .and_then(|&j| self.e.get(j))
            .is_some_and(|t| t.invoke <= first_return)
    }

    fn set_open(&mut self, i: usize, e: &Entry, open: bool) {
        if !open && e.is_unknown() && self.relaxed && class_of(e).is_some() {
            // Reusable in the relaxation: it stays open.
            return;
        }
        if e.is_unknown() {
            let set = match class_of(e) {
                Some(c) => self.open_classes.entry(c).or_default(),
                None => &mut self.open_observed,
            };
            if open {
                set.insert(i);
                self.used_unknown.remove(&i);
            } else {
                set.remove(&i);
                self.used_unknown.insert(i);
            }
        } else if open {
            self.open_definite.insert(i);
            self.open_by_return.insert((e.complete, i));
            self.definite_placed -= 1;
        } else {
            self.open_definite.remove(&i);
            self.open_by_return.remove(&(e.complete, i));
            self.definite_placed += 1;
        }
        if !e.is_unknown() {
            self.hash ^= self.zobrist.get(i).copied().unwrap_or_default();
        }
    }
}

/// Checks one key's operations (`idxs` index into `ops`).
///
/// Two searches: first a relaxation in which an unknown write of an anonymous value may
/// take effect more than once. It admits every linearizable history, and its state
/// space is far smaller (no record of which of those writes were used), so when it
/// fails the history is certainly not linearizable, and it fails fast where the exact
/// search would wander. If it passes, the exact search decides.
pub fn check_key(key: &str, ops: &[Op], idxs: &[usize], budget: Budget) -> KeyReport {
    let (e, values) = entries(ops, idxs);
    let unknown = e.iter().filter(|x| x.is_unknown()).count();
    let report = |verdict, steps| KeyReport {
        key: key.to_string(),
        verdict,
        ops: e.len(),
        unknown,
        steps,
    };
    let (relaxed, relaxed_steps) = search(key, ops, &e, &values, budget, true);
    if let Verdict::Violation(text) = relaxed {
        let text = format!(
            "{text}  (found even allowing timed-out writes nobody read to take effect more than once)\n"
        );
        return report(Verdict::Violation(text), relaxed_steps);
    }
    let (exact, steps) = search(key, ops, &e, &values, budget, false);
    let exact = match (exact, relaxed) {
        (Verdict::Unknown(why), Verdict::Linearizable) => Verdict::Unknown(format!(
            "{why}; linearizable if a timed-out write nobody read may take effect twice"
        )),
        (v, _) => v,
    };
    report(exact, relaxed_steps + steps)
}

/// One search (see [`check_key`]): the verdict and the steps taken.
fn search(
    key: &str,
    ops: &[Op],
    e: &[Entry],
    values: &Values<'_>,
    budget: Budget,
    relaxed: bool,
) -> (Verdict, u64) {
    let version_cap = e
        .iter()
        .map(|x| match (x.call, x.ret) {
            (_, MRet::Found { version, .. } | MRet::Written { version }) => version,
            (_, MRet::Mismatch { current_version }) => current_version,
            (
                MCall::Put {
                    if_version: Some(n),
                    ..
                }
                | MCall::Delete {
                    if_version: Some(n),
                },
                _,
            ) => n,
            _ => 0,
        })
        .max()
        .unwrap_or(0)
        + 1;
    let mut rng = Rng::new(0x5eed, e.len() as u64);
    let mut s = Search {
        e,
        zobrist: (0..e.len())
            .map(|_| (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()))
            .collect(),
        open_by_return: BTreeSet::new(),
        open_definite: BTreeSet::new(),
        open_classes: BTreeMap::new(),
        open_observed: BTreeSet::new(),
        hash: 0,
        used_unknown: BTreeSet::new(),
        state: None,
        floor: 0,
        definite_placed: e.iter().filter(|x| !x.is_unknown()).count(),
        relaxed,
        version_cap,
    };
    for (i, x) in e.iter().enumerate() {
        s.set_open(i, x, true);
    }
    s.hash = 0;
    s.used_unknown.clear();
    let mut seen: HashMap<(u128, KeyState, u64), Vec<Vec<usize>>> = HashMap::new();
    let mut frames = vec![Frame {
        candidates: s.candidates(),
        next: 0,
        applied: None,
    }];
    let mut furthest = Furthest::default();
    let mut steps: u64 = 0;
    loop {
        if s.open_by_return.is_empty() {
            return (Verdict::Linearizable, steps);
        }
        let Some(top) = frames.last_mut() else {
            let text = explain(key, ops, e, values, &furthest, steps);
            return (Verdict::Violation(text), steps);
        };
        let Some(&i) = top.candidates.get(top.next) else {
            if let Some((j, before, floor)) = top.applied {
                if let Some(x) = e.get(j) {
                    s.set_open(j, x, true);
                }
                s.state = before;
                s.floor = floor;
            }
            frames.pop();
            continue;
        };
        top.next += 1;
        steps += 1;
        if steps > budget.steps_max
            || (steps.is_multiple_of(4096) && Instant::now() > budget.deadline)
        {
            let stuck_at = furthest
                .tail
                .last()
                .and_then(|&j| e.get(j))
                .and_then(|x| ops.get(x.op))
                .map_or(String::new(), |op| {
                    format!("; furthest after {}", op.describe())
                });
            let why = format!(
                "search budget spent after {steps} steps ({} of {} definite ops placed{stuck_at})",
                furthest.definite_placed,
                e.iter().filter(|x| !x.is_unknown()).count()
            );
            return (Verdict::Unknown(why), steps);
        }
        let Some(x) = e.get(i) else { continue };
        if x.is_unknown() && s.has_weaker_twin(x) {
            continue;
        }
        let Some(next) = step(s.state, x.call, x.ret) else {
            continue;
        };
        if x.is_unknown() && next == s.state {
            continue;
        }
        let reusable = relaxed && x.is_unknown() && class_of(x).is_some();
        if reusable && next.is_some_and(|(_, v)| v > s.version_cap) {
            continue;
        }
        // Writes take increasing revisions in linearization order: a write that changes
        // the key must not go below the floor, and raises it.
        let floor = if next == s.state && !matches!(x.ret, MRet::Written { .. } | MRet::Deleted) {
            s.floor
        } else {
            match x.rev {
                Some(r) if r < s.floor => continue,
                Some(r) => r + 1,
                // A write of unknown revision took at least one (the relaxation lets
                // reusable ones take none, so that it stays finite).
                None if reusable => s.floor,
                None if x.call.is_write() => s.floor + 1,
                None => s.floor,
            }
        };
        let (hash, used) = if x.is_unknown() {
            let mut used: Vec<usize> = s.used_unknown.iter().copied().collect();
            if !reusable {
                if let Err(at) = used.binary_search(&i) {
                    used.insert(at, i);
                }
            }
            (s.hash, used)
        } else {
            let used = s.used_unknown.iter().copied().collect();
            (s.hash ^ s.zobrist.get(i).copied().unwrap_or_default(), used)
        };
        let explored = seen.entry((hash, next, floor)).or_default();
        if explored.iter().any(|smaller| is_subset(smaller, &used)) {
            continue;
        }
        explored.push(used);
        let (before, floor_before) = (s.state, s.floor);
        s.set_open(i, x, false);
        s.state = next;
        s.floor = floor;
        let candidates = s.candidates();
        frames.push(Frame {
            candidates,
            next: 0,
            applied: Some((i, before, floor_before)),
        });
        if s.definite_placed > furthest.definite_placed {
            furthest = Furthest {
                definite_placed: s.definite_placed,
                state: s.state,
                tail: frames
                    .iter()
                    .rev()
                    .filter_map(|f| f.applied.map(|(j, _, _)| j))
                    .take(TAIL_SHOWN)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect(),
                stuck: frames
                    .last()
                    .map(|f| f.candidates.iter().copied().take(STUCK_SHOWN).collect())
                    .unwrap_or_default(),
            };
        }
    }
}
