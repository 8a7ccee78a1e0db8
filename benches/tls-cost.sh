#!/usr/bin/env bash
# The cost of TLS: two 3-node clusters on loopback, one plain (HTTP, plain peer links),
# one all TLS (HTTPS for clients and mutual TLS between peers, certificates from
# `concierge certs`), started together; both with a cluster secret; then `concierge
# bench` put and get with 1 and 64 clients against each, the two alternated run by run
# so drift on a shared machine hits both alike. Prints one line per run (ops/s, p50 and
# p99 in microseconds) and the TLS/plain ratios.
#
# Environment (optional): DURATION=10 (seconds per run), CLIENTS="1 64",
# WORKLOADS="put get", BIN=target/release/concierge, WORK_DIR=<temporary parent>.
# Numbers are only meaningful on an otherwise idle machine.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/concierge}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-"1 64"}
WORKLOADS=${WORKLOADS:-"put get"}
WORK=$(mktemp -d "${WORK_DIR:-/tmp}/tls-cost.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -q --bin concierge)
"$BIN" certs --out "$WORK/certs" --nodes n1,n2,n3 --hosts 127.0.0.1 \
    --members 127.0.0.1:24200,127.0.0.1:24201,127.0.0.1:24202 >/dev/null
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/secret"

# start NAME PEER_BASE CLIENT_BASE [tls]
start() {
    local name=$1 peer=$2 client=$3 tls=${4:-}
    local members="127.0.0.1:$peer,127.0.0.1:$((peer + 1)),127.0.0.1:$((peer + 2))"
    for i in 1 2 3; do
        local env=(HOST=127.0.0.1 CONCIERGES=$members ACTOR_PORT=$((peer + i - 1))
            CLIENT_PORT=$((client + i - 1)) DATA_DIR=$WORK/$name$i RUST_LOG=warn
            CLUSTER_SECRET_FILE=$WORK/secret)
        if [ -n "$tls" ]; then
            env+=(TLS_CERT_FILE=$WORK/certs/n$i.pem TLS_KEY_FILE=$WORK/certs/n$i-key.pem
                TLS_CA_FILE=$WORK/certs/ca.pem PEER_TLS_CERT_FILE=$WORK/certs/n$i.pem
                PEER_TLS_KEY_FILE=$WORK/certs/n$i-key.pem PEER_TLS_CA_FILE=$WORK/certs/ca.pem)
        fi
        env "${env[@]}" "$BIN" serve >"$WORK/$name$i.log" 2>&1 &
        PIDS+=($!)
    done
}
start plain 24100 18100
start tls 24200 18200 tls
PLAIN="127.0.0.1:18100,127.0.0.1:18101,127.0.0.1:18102"
TLS="https://127.0.0.1:18200,https://127.0.0.1:18201,https://127.0.0.1:18202"
TLSFLAGS=(--cacert "$WORK/certs/ca.pem")
# wait_ready ENDPOINT [flags]: up to 60 s.
wait_ready() {
    local e=$1
    shift
    for _ in $(seq 1 120); do
        "$BIN" health --endpoints "$e" "$@" --timeout 2 >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "$e is not ready after 60 s" >&2
    return 1
}
for i in 0 1 2; do
    wait_ready "127.0.0.1:$((18100 + i))"
    wait_ready "https://127.0.0.1:$((18200 + i))" "${TLSFLAGS[@]}"
done

# run LABEL WORKLOAD CLIENTS ENDPOINTS [flags]: prints "ops p50 p99".
run() {
    local w=$2 c=$3 endpoints=$4
    shift 4
    "$BIN" bench "$w" --endpoints "$endpoints" "$@" --clients "$c" --duration "$DURATION" \
        --keys 1000 --value-bytes 64 --json |
        python3 -c 'import json,sys; r=json.load(sys.stdin); l=r["latency_us"]; print("%.0f %d %d %d" % (r["throughput"], l["p50"], l["p99"], r["errors"]))'
}

printf "%-4s %-8s %-6s %10s %8s %8s %6s\n" wl clients scheme ops/s p50_us p99_us errors
declare -A R
for w in $WORKLOADS; do
    for c in $CLIENTS; do
        read -r ops p50 p99 err < <(run plain "$w" "$c" "$PLAIN")
        printf "%-4s %-8s %-6s %10s %8s %8s %6s\n" "$w" "$c" http "$ops" "$p50" "$p99" "$err"
        R[$w.$c.http]="$ops $p50 $p99"
        read -r ops p50 p99 err < <(run tls "$w" "$c" "$TLS" "${TLSFLAGS[@]}")
        printf "%-4s %-8s %-6s %10s %8s %8s %6s\n" "$w" "$c" https "$ops" "$p50" "$p99" "$err"
        R[$w.$c.https]="$ops $p50 $p99"
    done
done
echo "ratios https/http (ops/s, p50, p99):"
for w in $WORKLOADS; do
    for c in $CLIENTS; do
        python3 -c 'import sys; a=list(map(float,sys.argv[1].split())); b=list(map(float,sys.argv[2].split())); print("%-4s %-3s %.2f %.2f %.2f" % (sys.argv[3], sys.argv[4], b[0]/a[0], b[1]/a[1], b[2]/a[2]))' \
            "${R[$w.$c.http]}" "${R[$w.$c.https]}" "$w" "$c"
    done
done
