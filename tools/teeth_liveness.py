#!/usr/bin/env python3
"""Teeth of the consensus liveness rules: each rule is broken by hand in the source (a
one-line edit), the unit test that guards it is run, and the source is restored.
Every line should print RED: a test that stays green with its rule removed guards
nothing. Run from the repository root: python3 tools/teeth_liveness.py [CASE ...]
The edits are exact strings: when the code moves, a case stops with an assertion
naming the string to update."""
import subprocess, sys, pathlib
from teeth_edits import with_breakage
root = pathlib.Path(__file__).resolve().parent.parent
cases = [
 ("sticky omega removed", "src/paxos/detector.rs",
  "        if let Some(l) = leader {\n            if l == self.id",
  "        if let Some(l) = leader.filter(|_| false) {\n            if l == self.id",
  "paxos::tests::a_returning_node_does_not_depose_a_healthy_leader"),
 ("sticky omega + pre-vote refusal for a live leader removed", "src/paxos/detector.rs|src/paxos/core.rs",
  "        if let Some(l) = leader {\n            if l == self.id||        let current = self.leader().is_some_and(|l| l != from);",
  "        if let Some(l) = leader.filter(|_| false) {\n            if l == self.id||        let current = false && self.leader().is_some_and(|l| l != from);",
  "paxos::tests::a_returning_node_does_not_depose_a_healthy_leader"),
 ("pre-vote lag check removed", "src/paxos/core.rs",
  "        !current && commit.saturating_add(lag_max) >= self.learner.delivered()",
  "        let _ = (lag_max, commit);\n        !current",
  "paxos::tests::a_node_far_behind_gets_no_pre_vote"),
 ("timeout cap removed", "src/paxos/detector.rs",
  "(p.timeout + self.suspect_ticks_increment).min(self.suspect_ticks_max)",
  "p.timeout + self.suspect_ticks_increment",
  "paxos::detector::tests::timeouts_are_capped_and_decay_back"),
 ("timeout decay removed", "src/paxos/detector.rs",
  "            if !p.suspected && p.timeout > self.suspect_ticks && calm {",
  "            if false && !p.suspected && p.timeout > self.suspect_ticks && calm {",
  "paxos::detector::tests::timeouts_are_capped_and_decay_back"),
 ("catch-up rotation removed", "src/paxos/learner.rs",
  "            Some(silent) => self.next_source(silent).or(first)?,",
  "            Some(_silent) => first?,",
  "paxos::learner::tests::an_unanswered_catch_up_moves_to_another_source"),
 ("step-down keeps queued proposals", "src/paxos/core.rs",
  "        for (origin, c) in self.proposer.step_down() {",
  "        for (origin, c) in self.proposer.step_down().into_iter().filter(|_| false) {",
  "paxos::tests::a_leader_that_steps_down_fails_its_queued_proposals_at_once"),
 ("leader_scan removed (every commit rescans from delivered+1)", "src/paxos/core.rs",
  "                from = from.max(through.saturating_add(1));",
  "                let _ = through;",
  "paxos::tests::a_follower_stuck_behind_a_gap_checks_each_accepted_slot_once"),
]
only = sys.argv[1:] 
def run_test(test):
    r = subprocess.run(['cargo', 'test', '--release', '-p', 'concierge', '--lib', test, '--', '--exact'],
                       cwd=root, capture_output=True, text=True)
    out = r.stdout + r.stderr
    verdict = 'RED (test failed)' if r.returncode != 0 else 'green (test passed)'
    if 'error[' in out: verdict = 'BUILD ERROR'
    msg = [l for l in out.splitlines() if 'panicked' in l or 'assert' in l.lower() or 'error[' in l][:3]
    return verdict, msg

for i, (name, files, old, new, test) in enumerate(cases):
    if only and str(i) not in only: continue
    verdict, msg = with_breakage(root, name, files, old, new, lambda: run_test(test))
    print(f"{i}: {name}: {test}: {verdict} {msg}", flush=True)
