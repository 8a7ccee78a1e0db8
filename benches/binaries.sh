# Sourced by the cluster benchmark scripts: sets ROOT (the checkout), BIN (the
# `concierge` binary) and LOAD (the `examples/load.rs` loader), honouring BIN, LOAD and
# CARGO_TARGET_DIR from the environment, and builds them in release when missing.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release/concierge}
LOAD=${LOAD:-$TARGET/release/examples/load}
if [[ ! -x $BIN || ! -x $LOAD ]]; then
    (cd "$ROOT" && cargo build --release --bin concierge --example load)
fi
