#!/usr/bin/env bash
# The secure Docker deployment (docker-compose.secure.yml) end to end: builds the image
# from the release binary (deploy/build-image.sh), starts the one-shot `certs` service
# and the three nodes under a unique project name, copies the CA out the way the README
# says (docker cp), and checks that
#   1. the nodes serve HTTPS with that CA: a put through node 1 is read back
#      (linearizable) through node 2, and a client without the CA is refused;
#   2. plain HTTP to a client port gets no HTTP answer;
#   3. `POST /v1/auth/enable` answers a token; with access control on, a request without
#      it is 401 on every node and with it 200 (and the CLI inside a node, over HTTPS
#      with the token, reads the key too);
#   4. every node's health check (`concierge health` over HTTPS) reports healthy;
#   5. no node's log warns that anything is not encrypted or not authenticated: peer
#      links run mutual TLS and the cluster secret, clients HTTPS;
#   6. after `down` and `up` (volumes kept) the certs service keeps its files, and the
#      nodes serve the same data under the same CA and token.
#
# Skips (exit 0, saying why) where Docker or compose is missing or the daemon is not
# reachable, exactly as tests/docker/cluster.sh. Always cleans up: the compose project
# with its volumes and network, the image tag.
#
# Usage: tests/docker/secure-cluster.sh   (CONCIERGE_TEST_KEEP=1 leaves everything up;
#        CONCIERGE_TEST_IMAGE=TAG checks that image instead of building one)
set -euo pipefail
cd "$(dirname "$0")/../.."

script=tests/docker/secure-cluster.sh
# shellcheck source=tests/docker/common.sh
. tests/docker/common.sh

project="concierge-secure-test-$$-$RANDOM"
tag="concierge:secure-test-$$-$RANDOM"
export COMPOSE_PROJECT_NAME="$project" CONCIERGE_IMAGE="$tag" CONCIERGE_NAME="$project"
export CONCIERGE_PUBLISH_1=127.0.0.1::8080 CONCIERGE_PUBLISH_2=127.0.0.1::8080 \
  CONCIERGE_PUBLISH_3=127.0.0.1::8080
work=$(mktemp -d)

fail() {
  echo "[$(elapsed)] FAIL: $*" >&2
  for n in certs 1 2 3; do
    echo "--- last log lines of $project-$n" >&2
    docker logs --tail 20 "$project-$n" 2>&1 | cut -c1-300 >&2 || true
  done
  exit 1
}
compose() { "${compose_cmd[@]}" -f docker-compose.secure.yml "$@"; }

cleanup() {
  local rc=$?
  if [ "${CONCIERGE_TEST_KEEP:-0}" = 1 ]; then
    echo "kept: project $project, image $tag, CA $work/ca.pem"
  else
    compose down -v --remove-orphans >/dev/null 2>&1 || true
    docker rmi "$tag" >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
  report $rc
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers -------------------------------------------------------------------------


# req SCHEME METHOD NODE PATH [BODY]: sets CODE and BODY. HTTPS trusts the copied CA
# and sends the token in $TOKEN when it is set; CURL_EXTRA adds curl flags.
req() {
  local scheme=$1 method=$2 node=$3 path=$4 a
  a=$(addr "$node") || true
  if [ -z "$a" ]; then
    CODE=000 BODY=""
    return
  fi
  local args=(-s -m 8 -X "$method" -o "$work/body" -w '%{http_code}')
  [ "$scheme" = https ] && args+=(--cacert "$work/ca.pem")
  [ -n "${TOKEN:-}" ] && args+=(-H "Authorization: Bearer $TOKEN")
  [ $# -ge 5 ] && args+=(--data-binary "$5")
  rm -f "$work/body"
  CODE=$(curl "${args[@]}" ${CURL_EXTRA:-} "$scheme://$a$path" 2>"$work/curl.err") || true
  [ -n "$CODE" ] || CODE=000
  BODY=$(cat "$work/body" 2>/dev/null || true)
}

# until_code WANT SECONDS REQ-ARGS...: repeats the request until it answers WANT; a
# node that has restarted (it exited: a configuration it refuses) fails at once.
until_code() {
  local want=$1 deadline=$((SECONDS + $2)) node=$5 restarts
  shift 2
  while :; do
    req "$@"
    [ "$CODE" = "$want" ] && return
    restarts=$(docker inspect -f '{{.RestartCount}}' "$(container "$node")" 2>/dev/null) || restarts=0
    [ "$restarts" = 0 ] || fail "node $node exited and was restarted $restarts time(s)"
    [ $SECONDS -lt $deadline ] || fail "$* answered $CODE '$BODY' (curl: $(cat "$work/curl.err")), not $want"
    sleep 0.25
  done
}

# --- 0. image, certificates, cluster --------------------------------------------------

if [ -n "${CONCIERGE_TEST_IMAGE:-}" ]; then
  say "using image $CONCIERGE_TEST_IMAGE as $tag"
  docker tag "$CONCIERGE_TEST_IMAGE" "$tag" || fail "no image $CONCIERGE_TEST_IMAGE"
else
  say "building image $tag (deploy/build-image.sh)"
  deploy/build-image.sh "$tag" >/dev/null 2>"$work/build.log" || {
    cat "$work/build.log" >&2
    fail "deploy/build-image.sh failed"
  }
fi
say "starting project $project (docker-compose.secure.yml)"
compose up -d >/dev/null 2>"$work/up.log" || {
  cat "$work/up.log" >&2
  fail "compose up failed"
}
[ "$(docker inspect -f '{{.State.ExitCode}}' "$(container certs)")" = 0 ] ||
  fail "the certs service did not exit 0"
# The README's way out for the CA certificate.
docker cp "$(container 1):/certs/ca.pem" "$work/ca.pem" >/dev/null ||
  fail "docker cp of /certs/ca.pem out of node 1 failed"
grep -q "BEGIN CERTIFICATE" "$work/ca.pem" || fail "the copied ca.pem holds no certificate"
for n in 1 2 3; do until_code 200 60 https GET "$n" /ready; done
say "certs made, CA copied out, three nodes ready over HTTPS"

# --- 1. HTTPS with the CA: write through one node, read through another ---------------

until_code 200 30 https PUT 1 /v1/keys/secure/greeting hello
until_code 200 30 https GET 2 "/v1/keys/secure/greeting?consistency=linearizable"
[ "$BODY" = hello ] || fail "node 2 read '$BODY', node 1 acknowledged 'hello'"
a=$(addr 1)
if curl -s -m 8 -o /dev/null "https://$a/ready" 2>/dev/null; then
  fail "a client without the CA was not refused by node 1"
fi
say "put through node 1 read back through node 2 over HTTPS; no CA, no connection"

# --- 2. plain HTTP to the client port ------------------------------------------------

for n in 1 2 3; do
  req http GET "$n" /ready
  [ "$CODE" = 000 ] || fail "plain HTTP to node $n answered $CODE '$BODY'"
done
say "plain HTTP to every client port: no HTTP answer"

# --- 3. access control ------------------------------------------------------------------

req https POST 1 /v1/auth/enable
[ "$CODE" = 200 ] || [ "$CODE" = 201 ] || fail "auth enable answered $CODE '$BODY'"
TOKEN=$(printf '%s' "$BODY" | sed -n 's/.*"token" *: *"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || fail "auth enable answered no token: '$BODY'"
token=$TOKEN
for n in 1 2 3; do
  TOKEN=""
  until_code 401 30 https GET "$n" "/v1/keys/secure/greeting?consistency=linearizable"
  TOKEN=$token
  until_code 200 30 https GET "$n" "/v1/keys/secure/greeting?consistency=linearizable"
  [ "$BODY" = hello ] || fail "node $n with the token read '$BODY'"
done
TOKEN=$token
until_code 200 30 https PUT 3 /v1/keys/secure/after-auth yes
cli=$(docker exec -e CONCIERGE_TOKEN="$token" "$(container 2)" \
  /usr/local/bin/concierge get secure/after-auth 2>&1) ||
  fail "the CLI inside node 2 (HTTPS, token) failed: $cli"
[ "$cli" = yes ] || fail "the CLI inside node 2 read '$cli'"
TOKEN=""
say "auth enable gave a token: without it 401, with it 200 on every node (and the CLI)"

# --- 4. health checks ------------------------------------------------------------------

deadline=$((SECONDS + 40))
for n in 1 2 3; do
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$(container "$n")")" = healthy ]; do
    [ $SECONDS -lt $deadline ] || fail "node $n's health check (concierge health over HTTPS) is not healthy"
    sleep 0.5
  done
done
say "every node's health check (concierge health over HTTPS) is healthy"

# --- 5. no warning about plaintext or unauthenticated links ----------------------------

for n in 1 2 3; do
  docker logs "$(container "$n")" >"$work/log-$n" 2>&1
  grep -q 'serving clients.*scheme="https"' "$work/log-$n" || fail "node $n does not log serving HTTPS"
  grep -q "peer link up" "$work/log-$n" || fail "node $n logs no peer link up"
  if grep -i -E "not encrypted|unencrypted|neither authenticated" "$work/log-$n" >"$work/warn"; then
    fail "node $n warns: $(cut -c1-300 "$work/warn")"
  fi
done
say "no node warns of plaintext or unauthenticated links"

# --- 6. down and up again on the same volumes --------------------------------------------

compose down >/dev/null 2>&1
compose up -d >/dev/null 2>"$work/up.log" || {
  cat "$work/up.log" >&2
  fail "compose up (second time) failed"
}
docker logs "$(container certs)" 2>&1 | grep -q "^kept what /certs already holds" ||
  fail "the certs service did not keep its files on the second up"
docker cp "$(container 3):/certs/ca.pem" "$work/ca-again.pem" >/dev/null ||
  fail "docker cp of /certs/ca.pem out of node 3 failed"
cmp -s "$work/ca.pem" "$work/ca-again.pem" || fail "the CA changed across down and up"
for n in 1 2 3; do until_code 200 60 https GET "$n" /ready; done
TOKEN=$token
until_code 200 30 https GET 3 "/v1/keys/secure/after-auth?consistency=linearizable"
[ "$BODY" = yes ] || fail "after down and up, node 3 read '$BODY'"
TOKEN=""
until_code 401 30 https GET 1 "/v1/keys/secure/after-auth?consistency=linearizable"
say "down and up: certificates kept, same CA, data and token served, still 401 without it"
