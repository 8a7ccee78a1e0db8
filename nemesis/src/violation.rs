//! Turns a failed linearizability search into the text a person reads: the longest
//! linearizable prefix found, the operations none of which could follow it, and hints
//! read directly off the history (a read of a value only a 503'd put wrote, a read of a
//! value nobody wrote).

use crate::checker::{Entry, Furthest, Values, STUCK_SHOWN};
use crate::history::{Call, Op, Outcome};
use std::collections::HashMap;
use std::fmt::Write as _;

/// The violation report of one key.
pub(crate) fn explain(
    key: &str,
    ops: &[Op],
    e: &[Entry],
    values: &Values<'_>,
    furthest: &Furthest,
    steps: u64,
) -> String {
    let definite = e.iter().filter(|x| !x.is_unknown()).count();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "key {key}: not linearizable ({} ops, {steps} search steps)",
        e.len()
    );
    let _ = writeln!(
        t,
        "  longest linearizable prefix: {} of {definite} definite ops, leaving the key {}",
        furthest.definite_placed,
        values.show(furthest.state)
    );
    let show = |t: &mut String, j: usize| {
        if let Some(op) = e.get(j).and_then(|x| ops.get(x.op)) {
            let _ = writeln!(t, "    {}", op.describe());
        }
    };
    if !furthest.tail.is_empty() {
        let _ = writeln!(t, "  that prefix ends with:");
        // The relaxed search may apply one timed-out write several times in a row.
        let mut tail = furthest.tail.iter().peekable();
        while let Some(&j) = tail.next() {
            let mut times = 1;
            while tail.next_if(|&&k| k == j).is_some() {
                times += 1;
            }
            show(&mut t, j);
            if times > 1 {
                let _ = writeln!(
                    t,
                    "      (applied {times} times in a row by the relaxed search)"
                );
            }
        }
    }
    let _ = writeln!(t, "  none of these can come next:");
    let stuck: Vec<usize> = if furthest.definite_placed == 0 {
        // The search never placed a definite op: show the first candidates.
        let mut first = e
            .iter()
            .enumerate()
            .filter(|(_, x)| !x.is_unknown())
            .map(|(i, x)| (x.complete, i))
            .collect::<Vec<_>>();
        first.sort_unstable();
        let bound = first.first().map_or(0, |f| f.0);
        e.iter()
            .enumerate()
            .filter(|(_, x)| x.invoke <= bound)
            .map(|(i, _)| i)
            .take(STUCK_SHOWN)
            .collect()
    } else {
        furthest.stuck.clone()
    };
    for j in stuck {
        show(&mut t, j);
    }
    for hint in hints(key, ops) {
        let _ = writeln!(t, "  hint: {hint}");
    }
    t
}

/// Plain-language causes that can be read off the history directly: a read of a value
/// written only by a 503'd put, or of a value never written to that key.
pub fn hints(key: &str, ops: &[Op]) -> Vec<String> {
    let mut writers: HashMap<&str, &Op> = HashMap::new();
    for op in ops.iter().filter(|o| o.key == key) {
        if let Call::Put { value, .. } = &op.call {
            writers.insert(value.as_str(), op);
        }
    }
    let mut out = Vec::new();
    for op in ops.iter().filter(|o| o.key == key) {
        if let Outcome::Found { value, .. } = &op.outcome {
            match writers.get(value.as_str()) {
                Some(w) if matches!(w.outcome, Outcome::NotApplied { .. }) => out.push(format!(
                    "op {} read {value}, written by op {} which was answered 503 or never sent (not applied)",
                    op.id, w.id
                )),
                Some(_) => {}
                None => out.push(format!(
                    "op {} read {value}, which no put to {key} wrote",
                    op.id
                )),
            }
        }
        if out.len() >= 8 {
            break;
        }
    }
    out
}
