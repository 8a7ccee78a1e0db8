#!/usr/bin/env bash
# Restart-to-ready: loads KEYS keys into a one-node cluster (`concierge serve` with a
# temporary DATA_DIR) through `examples/load.rs` (POST /v1/txn, OPS puts per txn, CLIENTS
# concurrent clients), then for each stop variant (SIGTERM, then SIGKILL) stops the node,
# restarts it on the same data and measures from process start to
#   - the first 200 of GET /ready, and
#   - the first successful linearizable GET of a loaded key (value checked).
# Also prints the load throughput, the node's RSS after the load and after each restart
# (VmRSS / VmHWM from /proc), and the data directory's size (`du`).
#
# Environment (all optional):
#   KEYS=1000000 OPS=128 CLIENTS=16 VALUE_BYTES=32
#   BIN=<concierge binary>  LOAD=<load example binary>  (default: release builds under
#   ${CARGO_TARGET_DIR:-target}; built with `cargo build --release` when missing)
#   WORK_DIR=<parent of the temporary directory>  KEEP=1 (keep the data directory)
#   CLIENT_PORT=18080 ACTOR_PORT=18081
#   COLD=1: before each restart, sync and drop the page cache (needs root and
#   /proc/sys/vm/drop_caches; skipped with a message otherwise), so the restart reads
#   its tables from the disk, as after a reboot
# The goal is < 2 s from process start to ready. Numbers are only meaningful on an
# otherwise idle machine.
set -euo pipefail

KEYS=${KEYS:-1000000}
OPS=${OPS:-128}
CLIENTS=${CLIENTS:-16}
VALUE_BYTES=${VALUE_BYTES:-32}
CLIENT_PORT=${CLIENT_PORT:-18080}
ACTOR_PORT=${ACTOR_PORT:-18081}
# shellcheck source=benches/binaries.sh
source "$(dirname "$0")/binaries.sh"

WORK=$(mktemp -d "${WORK_DIR:-${TMPDIR:-/tmp}}/restart-to-ready.XXXXXX")
DATA=$WORK/data
LOG=$WORK/node.log
URL=http://127.0.0.1:$CLIENT_PORT
PID=
cleanup() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

start_node() {
    HOST=127.0.0.1 ACTOR_PORT=$ACTOR_PORT CLIENT_PORT=$CLIENT_PORT DATA_DIR=$DATA \
        RUST_LOG=${RUST_LOG:-info} "$BIN" serve >>"$LOG" 2>&1 &
    PID=$!
}

rss() { # "rss=<kB> peak=<kB>" of the running node
    awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {printf "rss=%d kB peak=%d kB", r, h}' \
        "/proc/$PID/status"
}

# The key the probe reads and its expected value (as examples/load.rs writes it).
PROBE_I=$(( KEYS / 2 ))
PROBE_KEY=$(printf 'bench/%010d' "$PROBE_I")
PROBE_VALUE=$(printf "v$PROBE_I-%.0s" $(seq 1 "$VALUE_BYTES") | head -c "$VALUE_BYTES")

wait_get() { # waits (up to 120 s) for a linearizable GET of the probe key
    local deadline=$(( $(date +%s) + 120 ))
    until [[ $(curl -s --fail --max-time 2 "$URL/v1/keys/$PROBE_KEY?consistency=linearizable" 2>/dev/null) == "$PROBE_VALUE" ]]; do
        if (( $(date +%s) > deadline )); then echo "no GET after 120 s" >&2; tail -20 "$LOG" >&2; exit 1; fi
        sleep 0.005
    done
}

echo "restart_to_ready: KEYS=$KEYS OPS=$OPS CLIENTS=$CLIENTS VALUE_BYTES=$VALUE_BYTES data=$DATA"
start_node
wait_ready "$URL" "$LOG"
t0=$(now_ns)
"$LOAD" --nodes "$URL" --keys "$KEYS" --ops "$OPS" --clients "$CLIENTS" \
    --prefix bench/ --value-bytes "$VALUE_BYTES"
echo "load wall time: $(ms_since "$t0") ms"
wait_get
echo "after load: $(rss), data dir $(du -sh "$DATA" | cut -f1)"

for sig in TERM KILL; do
    t0=$(now_ns)
    kill "-$sig" "$PID"
    wait "$PID" 2>/dev/null || true
    echo "SIG$sig: stopped in $(ms_since "$t0") ms; data dir $(du -sh "$DATA" | cut -f1)"
    echo "---- restart after SIG$sig ----" >>"$LOG"
    cache=warm
    if [[ ${COLD:-0} == 1 ]]; then
        if sync && echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
            cache=cold
        else
            echo "COLD=1: cannot drop the page cache (not root?): a warm restart" >&2
        fi
    fi
    t0=$(now_ns)
    start_node
    wait_ready "$URL" "$LOG"
    ready_ms=$(ms_since "$t0")
    wait_get
    get_ms=$(ms_since "$t0")
    echo "SIG$sig restart ($cache page cache): ready in $ready_ms ms, first linearizable GET in $get_ms ms; $(rss)"
done
echo "final data dir: $(du -sh "$DATA" | cut -f1) ($(find "$DATA" -type f | wc -l) files)"
