#!/usr/bin/env bash
# Runs the same db_bench workloads on RocksDB (Debian's rocksdb-tools `db_bench`),
# fjall v2 and Concierge's storage engine (`storage/examples/db_bench.rs`), each in a
# fresh temporary directory, and prints one table: ops/sec per benchmark, then each
# run's peak RSS (`/usr/bin/time -v`) and on-disk size after the run (`du`).
#
# Three runs per engine:
#   main:   --benchmarks=$BENCHMARKS --num=$NUM
#   sync:   --benchmarks=fillsync --num=$SYNC_NUM --writes=$SYNC_WRITES
#   syncmt: the same on --threads=$SYNC_THREADS threads, each doing SYNC_WRITES/SYNC_THREADS
#           writes (concurrent durable writers: how well they share fsyncs)
# Then, for data larger than memory (skipped with a message where the machine has no
# writable cgroup v1 memory controller, /sys/fs/cgroup/memory, or BIG_NUM=0), for
# each limit in MEM_LIMITS_MIB, each run in a fresh memory cgroup of that limit (v1
# memory.limit_in_bytes counts page cache) with the page cache dropped first:
#   big<L>fill: --benchmarks=fillrandom,waitforcompaction --num=$BIG_NUM into a fresh
#           directory (the ops/s are the fill's; the wait, RocksDB 7's benchmark and
#           ours, lets every engine finish the compactions its fill left, so that the
#           reads below measure a settled tree rather than one compacting under them);
#   big<L>:     readrandom --use_existing_db=1 --reads=$BIG_READS over that fill.
#           Every engine gets --cache_size=$BIG_CACHE_SIZE (RocksDB db_bench's
#           default, 8 MiB) and --write_buffer_size of a quarter of the limit, at most
#           64 MiB (everyone's default), so two write buffers fit under the limit
#           (BIG_WRITE_BUFFER_SIZE=<bytes> forces one size, 0 the engines' defaults).
#           Each cgroup is removed after its run. The readrandom rows also say how
#           many keys were found: each db_bench seeds its keys from the clock (--seed=0),
#           so a read process finds only the keys the fill happened to draw (~63%).
# The main and sync runs pass no --cache_size: every engine gets db_bench's default,
# 8 MiB (RocksDB's db_bench and ours alike; our db_bench gives it to fjall too).
# RocksDB's fillsync uses a key space of num/1000 but does --writes writes (default:
# num!), so the sync run passes --writes=SYNC_NUM/1000 explicitly: 10000 synced writes
# by default. Every engine gets exactly the same flags.
#
# Environment (all optional):
#   NUM=1000000 SYNC_NUM=10000000 SYNC_WRITES=$((SYNC_NUM/1000)) SYNC_THREADS=16
#   BENCHMARKS=fillseq,fillrandom,overwrite,readrandom,readmissing,seekrandom,readseq,readwhilewriting,deleterandom
#   KEY_SIZE=16 VALUE_SIZE=100 ENGINES="rocksdb fjall concierge"
#   BIG_NUM=5000000 (about 515 MB: 2x a 256 MiB limit, 4x 128 MiB) BIG_READS=200000
#   MEM_LIMITS_MIB="256 128" BIG_CACHE_SIZE=8388608 BIG_WRITE_BUFFER_SIZE=(limit/4, <= 64 MiB)
#   ROCKSDB_EXTRA="--bloom_bits=10"  (db_bench's default is no bloom filter; the
#                                     other two engines build 10 bits/key filters)
#   WORK_DIR=<parent of the temporary directories> KEEP=1 (keep outputs)
# Numbers are only meaningful on an otherwise idle machine.
set -euo pipefail

NUM=${NUM:-1000000}
SYNC_NUM=${SYNC_NUM:-10000000}
SYNC_WRITES=${SYNC_WRITES:-$((SYNC_NUM / 1000))}
SYNC_THREADS=${SYNC_THREADS:-16}
BENCHMARKS=${BENCHMARKS:-fillseq,fillrandom,overwrite,readrandom,readmissing,seekrandom,readseq,readwhilewriting,deleterandom}
KEY_SIZE=${KEY_SIZE:-16}
VALUE_SIZE=${VALUE_SIZE:-100}
ENGINES=${ENGINES:-"rocksdb fjall concierge"}
ROCKSDB_EXTRA=${ROCKSDB_EXTRA:---bloom_bits=10}
BIG_NUM=${BIG_NUM:-5000000}
BIG_READS=${BIG_READS:-200000}
MEM_LIMITS_MIB=${MEM_LIMITS_MIB:-"256 128"}
BIG_CACHE_SIZE=${BIG_CACHE_SIZE:-8388608}
BIG_WRITE_BUFFER_SIZE=${BIG_WRITE_BUFFER_SIZE:-}
CGROUP_ROOT=/sys/fs/cgroup/memory

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUR_BENCH=$TARGET_DIR/release/examples/db_bench

need_apt_update=1
apt_install() {
    if [ "$need_apt_update" = 1 ]; then
        apt-get update -qq
        need_apt_update=0
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# RocksDB's db_bench: Debian's rocksdb-tools ships it as /usr/bin/db_bench.
ROCKSDB_BENCH=$(command -v db_bench || command -v rocksdb_db_bench || true)
if [[ " $ENGINES " == *" rocksdb "* ]] && [ -z "$ROCKSDB_BENCH" ]; then
    echo "installing rocksdb-tools (for db_bench) ..." >&2
    apt_install rocksdb-tools
    ROCKSDB_BENCH=$(command -v db_bench || command -v rocksdb_db_bench)
fi
if [ ! -x /usr/bin/time ]; then
    echo "installing time (for /usr/bin/time -v) ..." >&2
    apt_install time
fi

if [[ " $ENGINES " == *" fjall "* || " $ENGINES " == *" concierge "* ]]; then
    echo "building storage/examples/db_bench (release) ..." >&2
    (cd "$ROOT" && cargo build --release -q -p storage --example db_bench)
fi

WORK=$(mktemp -d "${WORK_DIR:-${TMPDIR:-/tmp}}/vs-peers.XXXXXX")
if [ "${KEEP:-0}" != 1 ]; then
    trap 'rm -rf "$WORK"' EXIT
fi

common=(--key_size="$KEY_SIZE" --value_size="$VALUE_SIZE" --compression_type=none)

# run ENGINE RUN_NAME FLAGS...: one process in a fresh directory; leaves
# $WORK/ENGINE.RUN.{out,err,time,du}. With KEEP_DB=1 the directory is neither
# emptied before nor removed after (the larger-than-memory runs reuse one fill); with
# CGROUP=<path> the process runs inside that memory cgroup.
run() {
    local engine=$1 run_name=$2
    shift 2
    local dir=$WORK/$engine.${DB_NAME:-$run_name}.db
    local cmd
    if [ "${KEEP_DB:-0}" != 1 ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
    fi
    # Start every run with no writeback pending from the one before (fillsync's
    # fdatasyncs would otherwise queue behind the previous run's dirty pages).
    sync
    case $engine in
        rocksdb) cmd=("$ROCKSDB_BENCH" "--db=$dir" "${common[@]}" "$@" $ROCKSDB_EXTRA) ;;
        fjall | concierge) cmd=("$OUR_BENCH" "--engine=$engine" "--db=$dir" "${common[@]}" "$@") ;;
    esac
    echo "== $engine $run_name: ${cmd[*]}" >&2
    if [ -n "${CGROUP:-}" ]; then
        # The shell joins the cgroup, then becomes time, which runs the benchmark.
        cmd=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CGROUP" /usr/bin/time -v -o "$WORK/$engine.$run_name.time" "${cmd[@]}")
    else
        cmd=(/usr/bin/time -v -o "$WORK/$engine.$run_name.time" "${cmd[@]}")
    fi
    if ! "${cmd[@]}" >"$WORK/$engine.$run_name.out" 2>"$WORK/$engine.$run_name.err"; then
        touch "$WORK/$engine.$run_name.failed"
        echo "!! $engine $run_name failed; stderr tail:" >&2
        tail -n 5 "$WORK/$engine.$run_name.err" >&2 || true
    fi
    grep -E '^[a-z0-9]+ +: ' "$WORK/$engine.$run_name.out" >&2 || true
    du -s --block-size=1 "$dir" | cut -f1 >"$WORK/$engine.$run_name.du"
    if [ "${KEEP_DB:-0}" != 1 ]; then rm -rf "$dir"; fi
}

# in_cgroup LIMIT_MIB RUN_NAME FLAGS...: `run` in a fresh memory cgroup of LIMIT_MIB
# with the page cache dropped first; the cgroup is removed after.
in_cgroup() {
    local limit=$1 cg=$CGROUP_ROOT/vs-peers-$$-$2-$3
    shift
    mkdir "$cg"
    echo $((limit << 20)) >"$cg/memory.limit_in_bytes"
    sync
    echo 3 >/proc/sys/vm/drop_caches
    CGROUP=$cg run "$@" || true
    # The cgroup is empty once its process exited; remove it.
    rmdir "$cg" || echo "!! could not remove $cg" >&2
}

# big ENGINE: the larger-than-memory runs (see the header).
big() {
    local engine=$1 limit wbs
    for limit in $MEM_LIMITS_MIB; do
        wbs=${BIG_WRITE_BUFFER_SIZE:-$(((limit << 20) / 4 < 64 << 20 ? (limit << 20) / 4 : 64 << 20))}
        local sizes=(--cache_size="$BIG_CACHE_SIZE")
        if [ "$wbs" != 0 ]; then sizes+=(--write_buffer_size="$wbs"); fi
        rm -rf "$WORK/$engine.big.db"
        mkdir -p "$WORK/$engine.big.db"
        KEEP_DB=1 DB_NAME=big in_cgroup "$limit" "$engine" "big${limit}fill" \
            --benchmarks=fillrandom,waitforcompaction --num="$BIG_NUM" "${sizes[@]}"
        KEEP_DB=1 DB_NAME=big in_cgroup "$limit" "$engine" "big$limit" --benchmarks=readrandom \
            --use_existing_db=1 --num="$BIG_NUM" --reads="$BIG_READS" "${sizes[@]}"
        rm -rf "$WORK/$engine.big.db"
    done
}

big_ok=0
if [ "$BIG_NUM" != 0 ]; then
    if [ -w "$CGROUP_ROOT" ] && [ -w /proc/sys/vm/drop_caches ]; then
        big_ok=1
    else
        echo "skipping the larger-than-memory runs: $CGROUP_ROOT (cgroup v1 memory) or" \
            "/proc/sys/vm/drop_caches is not writable here" >&2
    fi
fi

for engine in $ENGINES; do
    run "$engine" main --benchmarks="$BENCHMARKS" --num="$NUM"
    run "$engine" sync --benchmarks=fillsync --num="$SYNC_NUM" --writes="$SYNC_WRITES"
    run "$engine" syncmt --benchmarks=fillsync --num="$SYNC_NUM" \
        --writes="$((SYNC_WRITES / SYNC_THREADS))" --threads="$SYNC_THREADS"
    if [ "$big_ok" = 1 ]; then big "$engine"; fi
done

# ops/sec of BENCH in ENGINE's RUN output ("-" when missing).
ops() {
    local v
    v=$(awk -v b="$3" '$1 == b && $2 == ":" { for (i = 3; i <= NF; i++) if ($i == "ops/sec") print $(i - 1) }' \
        "$WORK/$1.$2.out" 2>/dev/null | tail -n 1)
    echo "${v:--}"
}
# "N of M" keys found by BENCH in ENGINE's RUN output ("-" when missing).
found() {
    local v
    v=$(grep -E "^$3 +:" "$WORK/$1.$2.out" 2>/dev/null | sed -nE 's/.*\( *([0-9]+) of ([0-9]+) found\).*/\1 of \2/p' | tail -n 1)
    echo "${v:--}"
}
rss_mb() {
    local kb
    if [ -e "$WORK/$1.$2.failed" ]; then echo -; return; fi
    kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/$1.$2.time" 2>/dev/null)
    if [ -n "$kb" ]; then awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }'; else echo -; fi
}
disk_mb() {
    local b
    if [ -e "$WORK/$1.$2.failed" ]; then echo -; return; fi
    b=$(cat "$WORK/$1.$2.du" 2>/dev/null || true)
    if [ -n "$b" ]; then awk -v x="$b" 'BEGIN { printf "%.1f", x / 1048576 }'; else echo -; fi
}

# row LABEL HIGHER_IS_BETTER(1|0) ROCKSDB FJALL CONCIERGE
row() {
    local label=$1 higher=$2 r=$3 f=$4 c=$5
    local ratio
    ratio=$(awk -v r="$r" -v f="$f" -v c="$c" -v h="$higher" 'BEGIN {
        best = ""
        if (r != "-") best = r
        if (f != "-" && (best == "" || (h == 1 && f + 0 > best + 0) || (h == 0 && f + 0 < best + 0))) best = f
        if (best == "" || c == "-" || best + 0 == 0) { print "-"; exit }
        printf "%.2f", c / best
    }')
    printf '| %-24s | %14s | %14s | %15s | %18s |\n' "$label" "$r" "$f" "$c" "$ratio"
}

get() { # get ENGINE KIND RUN [BENCH]
    if [[ " $ENGINES " != *" $1 "* ]]; then echo -; return; fi
    case $2 in
        ops) ops "$1" "$3" "$4" ;;
        found) found "$1" "$3" "$4" ;;
        rss) rss_mb "$1" "$3" ;;
        disk) disk_mb "$1" "$3" ;;
    esac
}

echo
echo "num=$NUM (fillsync: num=$SYNC_NUM writes=$SYNC_WRITES; threads=$SYNC_THREADS) key_size=$KEY_SIZE value_size=$VALUE_SIZE compression=none"
printf '| %-24s | %14s | %14s | %15s | %18s |\n' benchmark "rocksdb ops/s" "fjall ops/s" "concierge ops/s" "ratio vs best peer"
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..26})" "$(printf -- '-%.0s' {1..16})" \
    "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..17})" "$(printf -- '-%.0s' {1..20})"
IFS=, read -r -a bench_list <<<"$BENCHMARKS"
for b in "${bench_list[@]}"; do
    row "$b" 1 "$(get rocksdb ops main "$b")" "$(get fjall ops main "$b")" "$(get concierge ops main "$b")"
done
row fillsync 1 "$(get rocksdb ops sync fillsync)" "$(get fjall ops sync fillsync)" "$(get concierge ops sync fillsync)"
row "fillsync, $SYNC_THREADS threads" 1 "$(get rocksdb ops syncmt fillsync)" "$(get fjall ops syncmt fillsync)" "$(get concierge ops syncmt fillsync)"
row "peak RSS MB (main)" 0 "$(get rocksdb rss main)" "$(get fjall rss main)" "$(get concierge rss main)"
row "disk MB after (main)" 0 "$(get rocksdb disk main)" "$(get fjall disk main)" "$(get concierge disk main)"
row "peak RSS MB (fillsync)" 0 "$(get rocksdb rss sync)" "$(get fjall rss sync)" "$(get concierge rss sync)"
row "disk MB after (fillsync)" 0 "$(get rocksdb disk sync)" "$(get fjall disk sync)" "$(get concierge disk sync)"
if [ "$big_ok" = 1 ]; then
    for limit in $MEM_LIMITS_MIB; do
        row "fillrandom, ${limit} MiB limit" 1 "$(get rocksdb ops "big${limit}fill" fillrandom)" "$(get fjall ops "big${limit}fill" fillrandom)" "$(get concierge ops "big${limit}fill" fillrandom)"
        row "peak RSS MB, fill ${limit}" 0 "$(get rocksdb rss "big${limit}fill")" "$(get fjall rss "big${limit}fill")" "$(get concierge rss "big${limit}fill")"
        row "readrandom, ${limit} MiB limit" 1 "$(get rocksdb ops "big$limit" readrandom)" "$(get fjall ops "big$limit" readrandom)" "$(get concierge ops "big$limit" readrandom)"
        row "peak RSS MB, read ${limit}" 0 "$(get rocksdb rss "big$limit")" "$(get fjall rss "big$limit")" "$(get concierge rss "big$limit")"
    done
    echo "larger than memory: num=$BIG_NUM, fillrandom then readrandom --reads=$BIG_READS, each in a memory cgroup of the limit (page cache dropped first), --cache_size=$BIG_CACHE_SIZE for every engine, --write_buffer_size=${BIG_WRITE_BUFFER_SIZE:-limit/4 (at most 64 MiB)}"
    for limit in $MEM_LIMITS_MIB; do
        echo "keys found by readrandom at ${limit} MiB: rocksdb $(get rocksdb found "big$limit" readrandom), fjall $(get fjall found "big$limit" readrandom), concierge $(get concierge found "big$limit" readrandom)"
    done
fi
echo "ratio = concierge / best peer (ops/s: > 1 is faster; RSS and disk: < 1 is smaller)"
if [ "${KEEP:-0}" = 1 ]; then echo "outputs kept in $WORK"; fi
