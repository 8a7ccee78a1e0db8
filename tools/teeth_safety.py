#!/usr/bin/env python3
"""Teeth of the consensus safety rules in the simulator: each rule is broken by hand in
the core (a small edit), the simulation runs SEEDS seeds with SIM_KEEP_GOING=1 (every
seed, failures tallied per check, the first failing seed of each), and the source is
restored. Every breakage but the last should print failures; the results are recorded
in the tests/simulation.rs header. Run from the repository root:
    SEEDS=2000 python3 tools/teeth_safety.py [CASE ...]
The edits are exact strings: when the code moves, a case stops with an assertion naming
the string to update."""
import os, pathlib, subprocess, sys
from teeth_edits import with_breakage
root = pathlib.Path(__file__).resolve().parent.parent
cases = [
 ("acceptor replies (Promise, Accepted) leave before their Ready's persist", "src/paxos/message.rs",
  "            Message::Prepare { .. }\n                | Message::Promise { .. }\n"
  "                | Message::Accept { .. }\n                | Message::Accepted { .. }",
  "            Message::Prepare { .. } | Message::Accept { .. }"),
 ("acceptor accepts a ballot below its promise", "src/paxos/acceptor.rs|src/paxos/acceptor.rs",
  "        value: Value,\n        out: &mut Ready,\n    ) -> Message {\n        if ballot < self.state.promised {"
  "||        self.state.promised = ballot;\n        let already",
  "        value: Value,\n        out: &mut Ready,\n    ) -> Message {\n        if false {"
  "||        self.state.promised = self.state.promised.max(ballot);\n        let already"),
 ("a promise reports the promised ballot, not the accepted one", "src/paxos/acceptor.rs|src/paxos/acceptor.rs",
  "for (&slot, (b, v)) in self.state.accepted.range(from.max(1)..) {||accepted.push((slot, *b, v.clone()));",
  "for (&slot, (_b, v)) in self.state.accepted.range(from.max(1)..) {||accepted.push((slot, ballot, v.clone()));"),
 ("read index answered without a quorum round", "src/paxos/read_index.rs",
  "if votes <= front.voters.len() / 2 {", "if votes < 1 {"),
 ("candidate counts its own promise at once, no Prepare to itself (expected: no failure, promise_own)",
  "src/paxos/core.rs",
  "            // Durable before the Prepares leave (same Ready): see `promise_own`.\n"
  "            self.acceptor.promise_own(ballot, &mut self.out);\n        }",
  "            // Durable before the Prepares leave (same Ready): see `promise_own`.\n"
  "            self.acceptor.promise_own(ballot, &mut self.out);\n"
  "            let me = self.config.id;\n"
  "            self.out.send.retain(|(to, m)| !(*to == me && matches!(m, Message::Prepare { .. })));\n"
  "            let limits = (self.config.promise_slots_max, self.config.promise_bytes_max);\n"
  "            let own = self.acceptor.on_prepare(ballot, from, limits, &mut self.out);\n"
  "            self.step(me, own);\n        }"),
 ("a leader proposes in a later membership's slots without its voters' promises",
  "src/paxos/proposer.rs",
  "            if !l.phase1.covers(m, slot) {\n                for &v in &m.voters {",
  "            if false {\n                for &v in &m.voters {"),
 ("a slot is sent to and counted by the oldest membership held, not its own",
  "src/paxos/proposer.rs",
  "                voters: m.voters.clone(),\n                acks: Vec::new(),",
  "                voters: memberships.all()[0].voters.clone(),\n                acks: Vec::new(),"),
 ("a change governs from the slot after it (no delay)", "src/paxos/membership.rs",
  "            active_from: slot.saturating_add(self.delay),",
  "            active_from: slot.saturating_add(1),"),
]
seeds = os.environ.get("SEEDS", "2000")
only = sys.argv[1:]
def run_simulation():
    env = dict(os.environ, SIM_SEEDS=seeds, SIM_KEEP_GOING="1")
    r = subprocess.run(['cargo', 'test', '--release', '--test', 'simulation'],
                       cwd=root, capture_output=True, text=True, env=env)
    out = r.stdout + r.stderr
    if 'error[' in out:
        return ['BUILD ERROR'] + [l for l in out.splitlines() if 'error[' in l][:2]
    return [l for l in out.splitlines() if 'seeds fail; first seed' in l] or ['no failure']

for i, (name, files, old, new) in enumerate(cases):
    if only and str(i) not in only: continue
    verdict = with_breakage(root, name, files, old, new, run_simulation)
    print(f"{i}: {name} ({seeds} seeds): " + " | ".join(verdict), flush=True)
