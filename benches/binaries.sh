# Sourced by the cluster benchmark scripts: sets ROOT (the checkout), BIN (the
# `concierge` binary) and LOAD (the `examples/load.rs` loader), honouring BIN, LOAD and
# CARGO_TARGET_DIR from the environment, and builds them in release when missing; and
# defines the helpers they share (now_ns, ms_since, wait_ready).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release/concierge}
LOAD=${LOAD:-$TARGET/release/examples/load}
if [[ ! -x $BIN || ! -x $LOAD ]]; then
    (cd "$ROOT" && cargo build --release --bin concierge --example load)
fi

# Shared helpers of those scripts.
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); } # ms_since T0_NS
# wait_ready URL LOG [SECONDS=120]: polls URL/ready every 5 ms until it answers 200;
# on the deadline prints the end of LOG and returns 1 (under `set -e`, the script ends).
wait_ready() {
    local deadline=$(( $(date +%s) + ${3:-120} ))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1/ready") == 200 ]]; do
        if (( $(date +%s) > deadline )); then
            echo "$1 not ready after ${3:-120} s" >&2; tail -20 "$2" >&2; return 1
        fi
        sleep 0.005
    done
}
