#!/usr/bin/env bash
# Runs schemathesis (PyPI) against a one-node server's own /v1/openapi.json: every
# operation, generated valid and invalid requests, every check (no 5xx, responses
# match the schema, valid requests accepted, invalid ones refused). Usage:
#   tools/schemathesis.sh [MAX_EXAMPLES]      (default 30; needs `pip install schemathesis`)
# Expected, and not bugs (see docs/API.md): 412 version_mismatch and 422
# idempotency_key_reused where schemathesis reuses a key or version it generated, and 400
# for rules a schema cannot state (exactly one of key= and prefix= on a watch; no version
# condition on a sequential put or a prefix delete).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v st >/dev/null || { echo "schemathesis is not installed: pip install schemathesis"; exit 2; }
cargo build --release -q -p concierge
dir=$(mktemp -d)
port=$((20000 + RANDOM % 10000))
DATA_DIR="$dir/data" CLIENT_PORT=$port ACTOR_PORT=$((port + 1)) target/release/concierge serve >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -sf "localhost:$port/ready" >/dev/null && break; sleep 0.2; done
st run "http://127.0.0.1:$port/v1/openapi.json" --checks all --max-examples "${1:-30}" --workers 2 || true
if grep -q "panicked" "$dir/log"; then echo "the server panicked:"; grep -A5 panicked "$dir/log"; exit 1; fi
