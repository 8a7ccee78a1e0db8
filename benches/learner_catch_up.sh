#!/usr/bin/env bash
# Learner catch-up: how long a node added to a running cluster takes to hold its state,
# and how many bytes that costs (issue 11).
#
# Loads KEYS keys into a one-node cluster (`concierge serve`, data in a temporary
# directory) through `examples/load.rs`, lets the node compact its consensus log (so the
# learner must take a snapshot, as it would on any long-lived cluster), then:
#   - `concierge member add` the second node as a learner,
#   - starts it with an empty data directory and `JOIN`,
#   - waits until its `applied_index` (GET /v1/cluster on it) reaches the leader's
#     commit index taken right after the add, and reports that time from the learner's
#     process start, the bytes that crossed the loopback interface meanwhile
#     (/proc/net/dev `lo`: the snapshot or the log, plus heartbeats and the script's own
#     polls; anything else on the machine's loopback counts too), whether it caught up
#     by snapshot or from the log, and the learner's data directory size.
# Then it checks a sample key on the learner (serializable read) and promotes it.
#
# Environment (all optional):
#   KEYS=1000000 OPS=128 CLIENTS=16 VALUE_BYTES=32
#   BIN, LOAD (binaries; see benches/binaries.sh)  WORK_DIR=<parent dir>  KEEP=1
#   PORT_BASE=18180 (uses PORT_BASE..PORT_BASE+3)
# Numbers are only meaningful on an otherwise idle machine.
set -euo pipefail

KEYS=${KEYS:-1000000}
OPS=${OPS:-128}
CLIENTS=${CLIENTS:-16}
VALUE_BYTES=${VALUE_BYTES:-32}
PORT_BASE=${PORT_BASE:-18180}
# shellcheck source=benches/binaries.sh
source "$(dirname "$0")/binaries.sh"

WORK=$(mktemp -d "${WORK_DIR:-${TMPDIR:-/tmp}}/learner-catch-up.XXXXXX")
P1=$PORT_BASE C1=$((PORT_BASE + 1)) P2=$((PORT_BASE + 2)) C2=$((PORT_BASE + 3))
URL1=http://127.0.0.1:$C1 URL2=http://127.0.0.1:$C2
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

field() { # field NAME URL: a top-level number of GET URL/v1/cluster
    curl -s --max-time 2 "$2/v1/cluster" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" 2>/dev/null || echo 0
}
lo_bytes() { awk '$1 == "lo:" {print $2}' /proc/net/dev; }

echo "learner_catch_up: KEYS=$KEYS OPS=$OPS CLIENTS=$CLIENTS VALUE_BYTES=$VALUE_BYTES work=$WORK"
HOST=127.0.0.1 ACTOR_PORT=$P1 CLIENT_PORT=$C1 DATA_DIR=$WORK/n1 RUST_LOG=info \
    "$BIN" serve >>"$WORK/n1.log" 2>&1 &
LEADER=$!
PIDS+=("$LEADER")
wait_ready "$URL1" "$WORK/n1.log" 300
t0=$(now_ns)
"$LOAD" --nodes "$URL1" --keys "$KEYS" --ops "$OPS" --clients "$CLIENTS" \
    --prefix bench/ --value-bytes "$VALUE_BYTES"
echo "load: $(ms_since "$t0") ms; leader data dir $(du -sh "$WORK/n1" | cut -f1)"
# The log is compacted every compact_every_slots (10,000) past log_tail_slots (10,000):
# with fewer than ~20,000 slots (OPS puts per slot at most) the learner replays the log
# instead of taking a snapshot; the script reports which happened. OPS=32 with 1,000,000
# keys makes ~31,000 slots.
echo "leader commit index $(field commit_index "$URL1")"

"$BIN" member add "127.0.0.1:$P2" --client-addr "127.0.0.1:$C2" --endpoints "$URL1"
target=$(field commit_index "$URL1")
w0=$(lo_bytes)
t0=$(now_ns)
JOIN=$URL1 HOST=127.0.0.1 ACTOR_PORT=$P2 CLIENT_PORT=$C2 DATA_DIR=$WORK/n2 RUST_LOG=info \
    "$BIN" serve >>"$WORK/n2.log" 2>&1 &
PIDS+=("$!")
deadline=$(( $(date +%s) + 600 ))
until (( $(field applied_index "$URL2") >= target )); do
    if (( $(date +%s) > deadline )); then echo "learner not caught up" >&2; tail -20 "$WORK/n2.log" >&2; exit 1; fi
    sleep 0.05
done
ms=$(ms_since "$t0")
sent=$(( $(lo_bytes) - w0 ))
how=$(grep -q "snapshot installed" "$WORK/n2.log" && echo "by snapshot" || echo "from the log")
echo "learner caught up to slot $target $how in $ms ms; $sent bytes crossed loopback meanwhile; learner data dir $(du -sh "$WORK/n2" | cut -f1)"
probe=$(printf 'bench/%010d' $(( KEYS / 2 )))
got=$(curl -s --fail "$URL2/v1/keys/$probe?consistency=serializable" | head -c 40)
echo "learner serves $probe: ${got:-MISSING}"
[[ -n $got ]] || exit 1
"$BIN" member promote 2 --endpoints "$URL1"
"$BIN" member list --endpoints "$URL1"
