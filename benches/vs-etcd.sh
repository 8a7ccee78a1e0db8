#!/usr/bin/env bash
# vs-etcd: the same `concierge bench` workloads against a 3-member etcd (its v3 JSON
# gateway) and then a 3-node Concierge, both on loopback with fsync on (both systems'
# default), one system at a time; prints one table with Concierge/etcd ratios.
#
# Installs Debian's etcd-server with apt-get when `etcd` is missing. Every member's
# data lives in a temporary directory, removed at the end (KEEP=1 keeps it). Clients
# are spread over all three members in both systems (followers forward to the leader).
#
# Environment (all optional):
#   DURATION=10 (seconds per run)  CLIENTS=16  KEYS=1000  VALUE_BYTES=64
#   WORKLOADS="put get get-serializable"  RATE= (open loop at this rate; default closed)
#   WRK= (empty: skip the cross-check with wrk; it runs by default when wrk is installed)
#   BIN=<concierge binary> (default: a release build, built when missing)
#   WORK_DIR=<parent of the temporary directory>  KEEP=1
# Numbers are only meaningful on an otherwise quiet machine.
set -euo pipefail

DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-16}
KEYS=${KEYS:-1000}
VALUE_BYTES=${VALUE_BYTES:-64}
WORKLOADS=${WORKLOADS:-put get get-serializable}
RATE=${RATE:-}
WRK=${WRK-$(command -v wrk || true)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/concierge}
if [[ ! -x $BIN ]]; then
    (cd "$ROOT" && cargo build --release --bin concierge)
fi
if ! command -v etcd >/dev/null; then
    echo "vs-etcd: installing etcd-server (apt-get)" >&2
    SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
    $SUDO apt-get install -y --no-install-recommends etcd-server >&2
fi

WORK=$(mktemp -d "${WORK_DIR:-${TMPDIR:-/tmp}}/vs-etcd.XXXXXX")
PIDS=()
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
cleanup() {
    stop_all
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

wait_for() { # URL CODE: waits up to 60 s for URL to answer CODE
    local deadline=$(( $(date +%s) + 60 ))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1") == "$2" ]]; do
        if (( $(date +%s) > deadline )); then echo "vs-etcd: $1 never answered $2" >&2; exit 1; fi
        sleep 0.1
    done
}

run_bench() { # TARGET ENDPOINTS WORKLOAD: the JSON report on stdout
    local target=$1 endpoints=$2 workload=$3 extra=()
    case $workload in
        get-serializable) workload=get; extra+=(--consistency serializable) ;;
    esac
    [[ -n $RATE ]] && extra+=(--rate "$RATE")
    "$BIN" bench "$workload" --target "$target" --endpoints "$endpoints" \
        --duration "$DURATION" --clients "$CLIENTS" --keys "$KEYS" \
        --value-bytes "$VALUE_BYTES" --json "${extra[@]}"
}

# etcd: three members on 127.0.0.1:2379{1,2,3} (clients) and 2380{1,2,3} (peers).
CLUSTER=e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803
for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$WORK/etcd-$i" \
        --listen-client-urls "http://127.0.0.1:2379$i" \
        --advertise-client-urls "http://127.0.0.1:2379$i" \
        --listen-peer-urls "http://127.0.0.1:2380$i" \
        --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
        --initial-cluster "$CLUSTER" --initial-cluster-state new \
        --initial-cluster-token vs-etcd >"$WORK/etcd-$i.log" 2>&1 &
    PIDS+=($!)
done
for i in 1 2 3; do wait_for "http://127.0.0.1:2379$i/health" 200; done
ETCD=127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793
for w in $WORKLOADS; do
    echo "vs-etcd: etcd $w" >&2
    run_bench etcd "$ETCD" "$w" >"$WORK/etcd-$w.json"
done
stop_all

# Concierge: three nodes, peers on 127.0.0.1:2810{1,2,3}, clients on 2811{1,2,3}.
PEERS=127.0.0.1:28101,127.0.0.1:28102,127.0.0.1:28103
for i in 1 2 3; do
    HOST=127.0.0.1 ACTOR_PORT=2810$i CLIENT_PORT=2811$i CONCIERGES=$PEERS \
        DATA_DIR="$WORK/concierge-$i" RUST_LOG=warn "$BIN" serve >"$WORK/concierge-$i.log" 2>&1 &
    PIDS+=($!)
done
for i in 1 2 3; do wait_for "http://127.0.0.1:2811$i/ready" 200; done
CONCIERGE=127.0.0.1:28111,127.0.0.1:28112,127.0.0.1:28113
for w in $WORKLOADS; do
    echo "vs-etcd: concierge $w" >&2
    run_bench concierge "$CONCIERGE" "$w" >"$WORK/concierge-$w.json"
done
# The cross-check: wrk and our bench, closed loop, the same linearizable GET of one key
# through one node, so our figures are not an artefact of our own client.
if [[ -n $WRK ]]; then
    echo "vs-etcd: wrk check" >&2
    # The bench first: its prefill writes the key wrk reads.
    "$BIN" bench get --endpoints 127.0.0.1:28111 --keys 1 --duration "$DURATION" \
        --clients "$CLIENTS" --value-bytes "$VALUE_BYTES" --json >"$WORK/wrk-bench.json"
    URL="http://127.0.0.1:28111/v1/keys/bench/0000000000?consistency=linearizable"
    wrk -t 2 -c "$CLIENTS" -d "${DURATION}s" --latency "$URL" >"$WORK/wrk.txt"
fi
stop_all

# The table: throughput and latency (ms) of each, and Concierge / etcd.
mode="closed loop"; [[ -n $RATE ]] && mode="open loop at $RATE/s"
echo "vs-etcd: ${DURATION} s per run, $CLIENTS clients, $KEYS keys, $VALUE_BYTES-byte values, $mode"
printf '%-17s %10s %10s %6s | %22s %22s | %6s %6s %6s | %s\n' \
    workload "etcd/s" "conc/s" ratio "etcd p50/p99/p99.9" "conc p50/p99/p99.9" "p50 x" "p99 x" \
    "p99.9x" "errors e/c"
for w in $WORKLOADS; do
    jq -r -n --arg w "$w" --slurpfile e "$WORK/etcd-$w.json" --slurpfile c "$WORK/concierge-$w.json" '
        def ms: . / 1000 | . * 100 | round / 100;
        def ratio(a; b): if b > 0 then (a / b * 100 | round / 100) else "-" end;
        ($e[0]) as $e | ($c[0]) as $c |
        [$w, ($e.throughput | round), ($c.throughput | round),
         ratio($c.throughput; $e.throughput),
         "\($e.latency_us.p50 | ms)/\($e.latency_us.p99 | ms)/\($e.latency_us.p999 | ms)",
         "\($c.latency_us.p50 | ms)/\($c.latency_us.p99 | ms)/\($c.latency_us.p999 | ms)",
         ratio($c.latency_us.p50; $e.latency_us.p50),
         ratio($c.latency_us.p99; $e.latency_us.p99),
         ratio($c.latency_us.p999; $e.latency_us.p999),
         "\($e.errors)/\($c.errors)"] | @tsv' |
        awk -F'\t' '{printf "%-17s %10s %10s %6s | %22s %22s | %6s %6s %6s | %s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10}'
done
if [[ -n $WRK ]]; then
    wrk_rate=$(awk '/^Requests\/sec:/ {printf "%d", $2}' "$WORK/wrk.txt")
    wrk_p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.txt")
    wrk_p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")
    wrk_errors=$(awk '/Non-2xx|Socket errors/ {print}' "$WORK/wrk.txt" | tr '\n' ' ')
    jq -r --arg r "$wrk_rate" --arg p50 "$wrk_p50" --arg p99 "$wrk_p99" --arg e "${wrk_errors:-none}" '
        "cross-check, GET of one key through one node, \(.clients) connections: " +
        "wrk \($r)/s p50 \($p50) p99 \($p99) (errors: \($e)); " +
        "concierge bench \(.throughput | round)/s p50 \(.latency_us.p50 / 1000)ms " +
        "p99 \(.latency_us.p99 / 1000)ms (errors: \(.errors))"' "$WORK/wrk-bench.json"
fi
