#!/usr/bin/env bash
# sync-under-fill: how long a durable write waits while a big fill flushes and compacts
# on the same disk. One db_bench process does `fillsync` (every write fdatasync-ed)
# with --histogram=1, alone and then beside a second process doing a large
# `fillrandom`; the table gives fillsync's ops/s and its P50/P99/P99.9 in each case.
#
# Cases, each engine with the same flags (every run in fresh directories):
#   alone:        fillsync, nothing else running
#   fill:         fillsync beside the fill, the engine's defaults
#   fill, unpaced (Concierge only): beside a fill run with --bytes_per_sync=0, so
#                 neither its WAL nor its table files are written back in steps (the
#                 state before the WAL and table write-back landed)
#   step<N>       (Concierge only, for each N in STEPS): beside a fill written back
#                 every N bytes (--bytes_per_sync=N; the default is 1 MiB)
# The fill starts first; fillsync starts FILL_HEAD_START seconds later, so it meets
# the fill's flushes and compactions, and the fill is sized to outlast it.
#
# Environment (all optional):
#   SYNC_WRITES=20000 FILL_NUM=10000000 FILL_HEAD_START=3 KEY_SIZE=16 VALUE_SIZE=100
#   ENGINES="rocksdb concierge" STEPS= (e.g. "262144 4194304") WORK_DIR=<parent of the temporary directory>
# Numbers are only meaningful on an otherwise idle machine.
set -euo pipefail

SYNC_WRITES=${SYNC_WRITES:-20000}
FILL_NUM=${FILL_NUM:-10000000}
FILL_HEAD_START=${FILL_HEAD_START:-3}
KEY_SIZE=${KEY_SIZE:-16}
VALUE_SIZE=${VALUE_SIZE:-100}
ENGINES=${ENGINES:-"rocksdb concierge"}
STEPS=${STEPS:-}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUR_BENCH=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/db_bench
ROCKSDB_BENCH=$(command -v db_bench || command -v rocksdb_db_bench || true)
if [[ " $ENGINES " == *" rocksdb "* ]] && [ -z "$ROCKSDB_BENCH" ]; then
    echo "installing rocksdb-tools (for db_bench) ..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rocksdb-tools >/dev/null
    ROCKSDB_BENCH=$(command -v db_bench || command -v rocksdb_db_bench)
fi
if [[ " $ENGINES " == *" concierge "* ]]; then
    echo "building storage/examples/db_bench (release) ..." >&2
    (cd "$ROOT" && cargo build --release -q -p storage --example db_bench)
fi

WORK=$(mktemp -d "${WORK_DIR:-${TMPDIR:-/tmp}}/sync-under-fill.XXXXXX")
FILL_PID=
cleanup() {
    if [ -n "$FILL_PID" ]; then kill "$FILL_PID" 2>/dev/null || true; wait "$FILL_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

common=(--key_size="$KEY_SIZE" --value_size="$VALUE_SIZE" --compression_type=none)
cmd_of() { # ENGINE DIR FLAGS...: sets CMD to db_bench of ENGINE on DIR
    local engine=$1 dir=$2
    shift 2
    case $engine in
        rocksdb) CMD=("$ROCKSDB_BENCH" --db="$dir" "${common[@]}" "$@" --bloom_bits=10) ;;
        concierge) CMD=("$OUR_BENCH" --engine=concierge --db="$dir" "${common[@]}" "$@") ;;
    esac
}

# one ENGINE CASE [FILL FLAGS...]: fillsync alone (no fill flags given as "-") or beside
# a fill with those flags; leaves $WORK/ENGINE.CASE.out.
one() {
    local engine=$1 case=$2
    shift 2
    rm -rf "$WORK/sync" "$WORK/fill"
    mkdir -p "$WORK/sync" "$WORK/fill"
    sync
    if [ "$1" != - ]; then
        cmd_of "$engine" "$WORK/fill" --benchmarks=fillrandom --num="$FILL_NUM" "$@"
        # The benchmark itself in the background (not a subshell), so $! is its pid.
        "${CMD[@]}" >"$WORK/$engine.$case.fill" 2>&1 &
        FILL_PID=$!
        sleep "$FILL_HEAD_START"
    fi
    echo "== $engine $case" >&2
    # fillsync's key space is num/1000 and it does --writes writes.
    cmd_of "$engine" "$WORK/sync" --benchmarks=fillsync --num=$((SYNC_WRITES * 1000)) \
        --writes="$SYNC_WRITES" --histogram=1
    "${CMD[@]}" >"$WORK/$engine.$case.out" 2>&1
    if [ -n "$FILL_PID" ]; then
        if ! kill -0 "$FILL_PID" 2>/dev/null; then
            echo "!! $engine $case: the fill ended before fillsync did (raise FILL_NUM)" >&2
        fi
        kill "$FILL_PID" 2>/dev/null || true
        wait "$FILL_PID" 2>/dev/null || true
        FILL_PID=
    fi
}

for engine in $ENGINES; do
    one "$engine" alone -
    one "$engine" fill --write_buffer_size=67108864
    if [ "$engine" = concierge ]; then
        one "$engine" unpaced --write_buffer_size=67108864 --bytes_per_sync=0
        for step in $STEPS; do
            one "$engine" "step$step" --write_buffer_size=67108864 --bytes_per_sync="$step"
        done
    fi
done

# field ENGINE CASE NAME: fillsync's ops/sec, or a percentile (P50, P99, P99.9) in ms.
field() {
    local f=$WORK/$1.$2.out
    [ -f "$f" ] || { echo -; return; }
    if [ "$3" = ops ]; then
        awk '$1 == "fillsync" && $2 == ":" { for (i = 3; i <= NF; i++) if ($i == "ops/sec") print $(i - 1) }' "$f" | tail -n 1
    else
        # db_bench prints percentiles in microseconds.
        sed -nE "s/.*Percentiles:.* $3: ([0-9.]+).*/\1/p" "$f" | tail -n 1 | awk '{ printf "%.2f", $1 / 1000 }'
    fi
}

echo
echo "fillsync: $SYNC_WRITES durable writes of ${KEY_SIZE}-byte keys and ${VALUE_SIZE}-byte values; fill: fillrandom --num=$FILL_NUM started ${FILL_HEAD_START}s before"
printf '| %-9s | %-12s | %9s | %8s | %8s | %10s |\n' engine case "ops/s" "p50 ms" "p99 ms" "p99.9 ms"
printf '|%s|%s|%s|%s|%s|%s|\n' ----------- -------------- ----------: ---------: ---------: -----------:
for engine in $ENGINES; do
    for case in alone fill unpaced $(for step in $STEPS; do echo "step$step"; done); do
        [ -f "$WORK/$engine.$case.out" ] || continue
        printf '| %-9s | %-12s | %9s | %8s | %8s | %10s |\n' "$engine" "$case" \
            "$(field "$engine" "$case" ops)" "$(field "$engine" "$case" P50)" \
            "$(field "$engine" "$case" P99)" "$(field "$engine" "$case" P99.9)"
    done
done
