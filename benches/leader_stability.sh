#!/usr/bin/env bash
# Leader stability on a real 3-node cluster on loopback, under write load:
#   1. RESTARTS times: SIGKILL a follower (the highest-id follower first, the one Omega
#      used to prefer), restart it on its data, wait for /ready, settle; count the
#      elections this caused (distinct leader ballots seen by polling /v1/cluster of the
#      nodes every 50 ms). Target: 0.
#   2. KILLS times: SIGKILL the leader and measure the time to the first acknowledged
#      PUT on a survivor (a client retrying with a 250 ms timeout), then restart it.
#      Target: < 1 s, and one election per kill.
# Load: `examples/load.rs` writing keys through all three nodes in the background.
#
# Environment (optional): RESTARTS=20 KILLS=3 BIN=... LOAD=... BASE_PORT=19000
# Numbers are only meaningful on an otherwise idle machine.
set -euo pipefail

RESTARTS=${RESTARTS:-20}
KILLS=${KILLS:-3}
BASE=${BASE_PORT:-19000}
# shellcheck source=benches/binaries.sh
source "$(dirname "$0")/binaries.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/leader-stability.XXXXXX")
PEERS="127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)),127.0.0.1:$((BASE + 3))"
declare -A PID
LOADPID=
POLLPID=
cleanup() {
    for p in "${PID[@]}" $LOADPID $POLLPID; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

url() { echo "http://127.0.0.1:$((BASE + 10 + $1))"; }
start() { # node id
    CONCIERGES=$PEERS HOST=127.0.0.1 ACTOR_PORT=$((BASE + $1)) CLIENT_PORT=$((BASE + 10 + $1)) \
        DATA_DIR=$WORK/d$1 RUST_LOG=${RUST_LOG:-warn} "$BIN" serve >>"$WORK/n$1.log" 2>&1 &
    PID[$1]=$!
}
ready_node() { wait_ready "$(url "$1")" "$WORK/n$1.log" 10; } # node id
leader() { # prints "leader_id ballot" as node $1 sees it
    curl -sf -m 1 "$(url "$1")/v1/cluster" 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); b=d["ballot"]; b="%s.%s" % (b["round"], b["node"]) if isinstance(b, dict) else str(b); print(d["leader_id"] or 0, b)' 2>/dev/null || true
}

for i in 1 2 3; do start "$i"; done
for i in 1 2 3; do ready_node "$i"; done
"$LOAD" --nodes "$(url 1),$(url 2),$(url 3)" --keys 100000000 --ops 8 --clients 8 \
    --prefix stability/ --value-bytes 64 >"$WORK/load.log" 2>&1 &
LOADPID=$!

# Poll every node's view; a ballot seen leading is one leadership.
( while true; do for i in 1 2 3; do leader "$i"; done; sleep 0.05; done ) >"$WORK/ballots" &
POLLPID=$!
elections() { grep -v '^0 ' "$WORK/ballots" | awk '{print $2}' | sort -u | wc -l; }
sleep 2

leader_id() { for i in 1 2 3; do l=$(leader "$i" | awk '{print $1}'); [[ -n $l && $l != 0 ]] && { echo "$l"; return; }; done; echo 0; }

before=$(elections)
for n in $(seq 1 "$RESTARTS"); do
    l=$(leader_id)
    # The highest-id follower.
    f=0; for i in 3 2 1; do if [[ $i != "$l" ]]; then f=$i; break; fi; done
    kill -KILL "${PID[$f]}"; wait "${PID[$f]}" 2>/dev/null || true
    sleep 0.5
    start "$f"; ready_node "$f" || echo "node $f not ready"
    sleep 1
done
sleep 1
after=$(elections)
echo "follower restarts: $RESTARTS, elections caused: $((after - before)) (leader ballots seen: $(grep -v '^0 ' "$WORK/ballots" | awk '{print $2}' | sort -u | tr '\n' ' '))"

for n in $(seq 1 "$KILLS"); do
    l=$(leader_id)
    s=1; [[ $l == 1 ]] && s=2
    e0=$(elections)
    t0=$(now_ns)
    kill -KILL "${PID[$l]}"; wait "${PID[$l]}" 2>/dev/null || true
    k=0
    until curl -sf -m 0.25 -X PUT --data-binary "kill$n" "$(url "$s")/v1/keys/stability-kill-$n" >/dev/null 2>&1; do
        k=$((k + 1)); [[ $k -gt 400 ]] && { echo "no write acknowledged"; break; }
    done
    ms=$(ms_since "$t0")
    sleep 0.5
    echo "leader $l SIGKILLed: first acknowledged PUT on node $s after $ms ms, elections: $(( $(elections) - e0 ))"
    start "$l"; ready_node "$l" || echo "node $l not ready"
    sleep 1
done
kill "$LOADPID" 2>/dev/null || true
echo "load: $(tail -1 "$WORK/load.log")"
