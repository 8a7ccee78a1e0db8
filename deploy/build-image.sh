#!/usr/bin/env bash
# Builds the `concierge:local` Docker image from this checkout: release binary plus
# the exact shared libraries it links against, on an empty (scratch) image.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin concierge
bin="${CARGO_TARGET_DIR:-target}/release/concierge"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/data" "$root/tmp"
cp "$bin" "$root/usr/local/bin/concierge"
# Every library the binary loads, and the dynamic loader itself.
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' |
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
cp deploy/Dockerfile "$ctx/Dockerfile"
docker build -q -t concierge:local "$ctx"
