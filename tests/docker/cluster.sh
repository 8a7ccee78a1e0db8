#!/usr/bin/env bash
# The Docker deployment, checked end to end: builds the image (deploy/build-image.sh,
# no registry needed), starts docker-compose.yml's three nodes under a unique project
# name on a network of their own, and then
#   1. writes through one node and reads each value back through another;
#   2. kills a container (docker kill), keeps writing through the other two, starts it
#      again and waits until its own replica serves every one of those writes;
#   3. cuts the leader off (docker network disconnect): the other two elect a leader and
#      acknowledge writes; the cut-off node answers linearizable reads (of a key the
#      majority has written since) and writes with 503, never with a value; reconnects
#      it and waits until it has caught up;
#   4. crashes one node's process (SIGKILL from the host): the restart policy brings it
#      back;
#   5. takes the whole cluster down and up again on the same volumes and reads every
#      acknowledged write, with the value acknowledged.
# Every write is acknowledged only after a 200/201; retries (on 503, 504, no answer)
# reuse the write's Idempotency-Key, so none applies twice.
#
# Skips (exit 0, saying why) where Docker or compose is missing or the daemon is not
# reachable. Step 3 reaches the cut-off node inside its own network namespace (nsenter,
# which needs root); without root it checks only the majority side, and says so.
# Always cleans up: the compose project and its volumes, the network, the image tag.
#
# Usage: tests/docker/cluster.sh      (CONCIERGE_TEST_KEEP=1 leaves everything up;
#        CONCIERGE_TEST_IMAGE=TAG checks that image instead of building one)
set -euo pipefail
cd "$(dirname "$0")/../.."

script=tests/docker/cluster.sh
# shellcheck source=tests/docker/common.sh
. tests/docker/common.sh
can_enter=0
if [ "$(id -u)" = 0 ] && command -v nsenter >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
  can_enter=1
fi

project="concierge-test-$$-$RANDOM"
tag="concierge:test-$$-$RANDOM"
network="$project"
export COMPOSE_PROJECT_NAME="$project" CONCIERGE_IMAGE="$tag" CONCIERGE_NAME="$project"
export CONCIERGE_NETWORK="$network"
# The nodes authenticate each other with a secret of this run's own.
CONCIERGE_CLUSTER_SECRET="docker-test-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export CONCIERGE_CLUSTER_SECRET
export CONCIERGE_PUBLISH_1=127.0.0.1::8080 CONCIERGE_PUBLISH_2=127.0.0.1::8080 \
  CONCIERGE_PUBLISH_3=127.0.0.1::8080
work=$(mktemp -d)

fail() {
  echo "[$(elapsed)] FAIL: $*" >&2
  for n in 1 2 3; do
    echo "--- last log lines of $project-$n" >&2
    docker logs --tail 20 "$project-$n" 2>&1 | cut -c1-300 >&2 || true
  done
  exit 1
}
compose() { "${compose_cmd[@]}" -f docker-compose.yml -f tests/docker/network.yml "$@"; }

cleanup() {
  local rc=$?
  if [ "${CONCIERGE_TEST_KEEP:-0}" = 1 ]; then
    echo "kept: project $project, network $network, image $tag"
  else
    compose down -v --remove-orphans >/dev/null 2>&1 || true
    docker network rm "$network" >/dev/null 2>&1 || true
    docker rmi "$tag" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  report $rc
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers -------------------------------------------------------------------------

ip_of() { docker inspect -f "{{(index .NetworkSettings.Networks \"$network\").IPAddress}}" "$(container "$1")"; }

# req METHOD NODE PATH [BODY [IDEMPOTENCY-KEY]]: sets CODE, BODY and LEADER.
req() {
  local method=$1 node=$2 path=$3 a
  a=$(addr "$node") || true
  if [ -z "$a" ]; then
    CODE=000 BODY="" LEADER=""
    return
  fi
  local args=(-s -m 8 -X "$method" -o "$work/body" -D "$work/head" -w '%{http_code}')
  [ $# -ge 4 ] && args+=(--data-binary "$4")
  [ $# -ge 5 ] && args+=(-H "Idempotency-Key: $5")
  rm -f "$work/body" "$work/head"
  CODE=$(curl "${args[@]}" "http://$a$path" 2>/dev/null) || CODE=000
  BODY=$(cat "$work/body" 2>/dev/null || true)
  LEADER=$(tr -d '\r' <"$work/head" 2>/dev/null | awk -F': ' 'tolower($1) == "x-concierge-leader" { print $2 }')
}

declare -A acked=()
# put NODES KEY VALUE: writes until acknowledged, trying the nodes in turn; records it.
put() {
  local nodes=($1) key=$2 value=$3 idem="$project-$2" deadline=$((SECONDS + 40)) i=0
  while [ $SECONDS -lt $deadline ]; do
    req PUT "${nodes[$((i % ${#nodes[@]}))]}" "/v1/keys/$key" "$value" "$idem"
    case $CODE in
      200 | 201)
        acked[$key]=$value
        return
        ;;
      000 | 503 | 504) i=$((i + 1)) && sleep 0.2 ;;
      *) fail "PUT $key through node ${nodes[$((i % ${#nodes[@]}))]}: $CODE $BODY" ;;
    esac
  done
  fail "PUT $key through nodes $1: not acknowledged within 40 s (last: $CODE $BODY)"
}

# get_eq NODE KEY VALUE CONSISTENCY: waits (up to 40 s) for node NODE to answer VALUE;
# a wrong value counts as "not yet" only for serializable reads (a replica catching up).
get_eq() {
  local node=$1 key=$2 want=$3 consistency=$4 deadline=$((SECONDS + 40))
  while [ $SECONDS -lt $deadline ]; do
    req GET "$node" "/v1/keys/$key?consistency=$consistency"
    case $CODE in
      200 | 404)
        if [ "$CODE" = 200 ] && [ "$BODY" = "$want" ]; then
          return
        fi
        if [ "$consistency" = linearizable ]; then
          fail "linearizable GET $key from node $node: $CODE '$BODY', acknowledged '$want'"
        fi
        ;;
      000 | 503 | 504) ;;
      *) fail "GET $key from node $node: $CODE $BODY" ;;
    esac
    sleep 0.2
  done
  fail "GET $key from node $node ($consistency): never '$want' within 40 s (last: $CODE $BODY)"
}

wait_ready() {
  local deadline=$((SECONDS + 90)) n
  for n in "$@"; do
    while :; do
      req GET "$n" /ready
      [ "$CODE" = 200 ] && break
      [ $SECONDS -lt $deadline ] || fail "node $n not ready within 90 s (last: $CODE $BODY)"
      sleep 0.25
    done
  done
}

leader() {
  local n
  for n in "$@"; do
    req GET "$n" /v1/cluster
    if [ "$CODE" = 200 ] && [ -n "$LEADER" ]; then
      echo "$LEADER"
      return
    fi
  done
  fail "no node of $* names a leader"
}

# except NODE: the other two nodes, space-separated.
except() {
  local n out=""
  for n in 1 2 3; do
    if [ "$n" != "$1" ]; then out="$out$n "; fi
  done
  echo "$out"
}

# in_netns NODE CMD...: runs CMD on the host inside node NODE's network namespace.
in_netns() {
  local n=$1
  shift
  nsenter -t "$(docker inspect -f '{{.State.Pid}}' "$(container "$n")")" -n "$@"
}

# --- 0. image, network, cluster ------------------------------------------------------

if [ -n "${CONCIERGE_TEST_IMAGE:-}" ]; then
  # An image built elsewhere (tests/docker/root-dockerfile.sh: ./Dockerfile's image),
  # tagged under this run's name so the cleanup removes only the tag.
  say "using image $CONCIERGE_TEST_IMAGE as $tag"
  docker tag "$CONCIERGE_TEST_IMAGE" "$tag" || fail "no image $CONCIERGE_TEST_IMAGE"
else
  say "building image $tag (deploy/build-image.sh)"
  deploy/build-image.sh "$tag" >/dev/null 2>"$work/build.log" || {
    cat "$work/build.log" >&2
    fail "deploy/build-image.sh failed"
  }
fi
# A subnet of our own, so the cut-off node can come back at the address it listens on.
subnet=""
for i in $(seq 0 30); do
  candidate="10.$((200 + (RANDOM + i) % 50)).$(((RANDOM + i) % 256)).0/24"
  if docker network create --subnet "$candidate" "$network" >/dev/null 2>&1; then
    subnet=$candidate
    break
  fi
done
[ -n "$subnet" ] || fail "could not create a network with a free subnet"
say "network $network ($subnet); starting project $project"
compose up -d >/dev/null 2>"$work/up.log" || {
  cat "$work/up.log" >&2
  fail "compose up failed"
}
wait_ready 1 2 3
say "three nodes ready"

# --- 1. write through one node, read through another ---------------------------------

for i in $(seq 1 10); do
  put 1 "docker/a/$i" "a-$i"
  get_eq 2 "docker/a/$i" "a-$i" linearizable
done
say "10 writes through node 1, each read back through node 2"

# --- 2. kill a container, keep writing, restart it, catch up --------------------------

victim=$(leader 1 2 3)
others=$(except "$victim")
docker kill "$(container "$victim")" >/dev/null
say "killed node $victim (the leader); writing through nodes $others"
for i in $(seq 1 10); do put "$others" "docker/b/$i" "b-$i"; done
say "10 writes acknowledged by nodes $others"
docker start "$(container "$victim")" >/dev/null
wait_ready "$victim"
for i in $(seq 1 10); do get_eq "$victim" "docker/b/$i" "b-$i" serializable; done
say "node $victim restarted; its own replica serves all 10"

# --- 3. cut the leader off, the majority serves, the cut-off node refuses ------------

cut=$(leader 1 2 3)
majority=$(except "$cut")
cut_ip=$(ip_of "$cut")
docker network disconnect "$network" "$(container "$cut")"
say "cut node $cut ($cut_ip) off the network"
for i in $(seq 1 10); do put "$majority" "docker/c/$i" "c-$i"; done
new_leader=$(leader $majority)
[ "$new_leader" != "$cut" ] || fail "the majority still names the cut-off node $cut as leader"
say "10 writes acknowledged by nodes $majority (leader now $new_leader)"
if [ $can_enter = 1 ]; then
  # The node's listeners are bound to its (now removed) network address: give that
  # address to its loopback so a client inside its namespace can reach it.
  in_netns "$cut" ip addr add "$cut_ip/32" dev lo
  code=$(in_netns "$cut" curl -s -m 8 -o "$work/cut" -w '%{http_code}' \
    "http://$cut_ip:8080/v1/keys/docker/c/10?consistency=linearizable") || code=000
  [ "$code" = 503 ] || fail "cut-off node $cut: linearizable GET answered $code $(cat "$work/cut")"
  code=$(in_netns "$cut" curl -s -m 8 -o "$work/cut" -w '%{http_code}' -X PUT \
    --data-binary x "http://$cut_ip:8080/v1/keys/docker/cut-off-write") || code=000
  [ "$code" = 503 ] || fail "cut-off node $cut: PUT answered $code $(cat "$work/cut")"
  code=$(in_netns "$cut" curl -s -m 8 -o "$work/cut" -w '%{http_code}' \
    "http://$cut_ip:8080/v1/keys/docker/c/10?consistency=serializable") || code=000
  say "cut-off node $cut: linearizable GET 503, PUT 503 (serializable GET: $code, stale allowed)"
  in_netns "$cut" ip addr del "$cut_ip/32" dev lo
else
  say "not root (or no nsenter/ip): the cut-off node's own 503 is not checked"
fi
docker network connect --ip "$cut_ip" --alias "concierge-$cut" "$network" "$(container "$cut")"
wait_ready "$cut"
for i in $(seq 1 10); do get_eq "$cut" "docker/c/$i" "c-$i" serializable; done
say "node $cut reconnected; its own replica serves all 10"

# --- 4. the restart policy -------------------------------------------------------------

if [ $can_enter = 1 ]; then
  crash=$(((cut % 3) + 1))
  kill -KILL "$(docker inspect -f '{{.State.Pid}}' "$(container "$crash")")"
  deadline=$((SECONDS + 30))
  until [ "$(docker inspect -f '{{.State.Running}} {{.RestartCount}}' "$(container "$crash")")" = "true 1" ]; do
    [ $SECONDS -lt $deadline ] || fail "node $crash was not restarted by its restart policy"
    sleep 0.2
  done
  put "$crash" docker/d/1 d-1
  wait_ready 1 2 3
  say "node $crash's process killed: restarted by its restart policy, serving again"
fi

# --- 5. the whole cluster down and up on its volumes -----------------------------------

compose down >/dev/null 2>&1
compose up -d >/dev/null 2>"$work/up.log" || {
  cat "$work/up.log" >&2
  fail "compose up (second time) failed"
}
wait_ready 1 2 3
i=0
for key in "${!acked[@]}"; do
  get_eq $((i % 3 + 1)) "$key" "${acked[$key]}" linearizable
  i=$((i + 1))
done
say "whole cluster restarted on its volumes: all ${#acked[@]} acknowledged writes read back"
