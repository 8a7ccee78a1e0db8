#!/usr/bin/env bash
# Builds the `concierge:local` Docker image from this checkout: release binary plus
# the exact shared libraries it links against, on an empty (scratch) image.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin concierge
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/data" "$root/tmp"
cp target/release/concierge "$root/usr/local/bin/concierge"
# Every library the binary loads, and the dynamic loader itself.
ldd target/release/concierge | awk '/=> \// {print $3} /^\s*\/.*ld-linux/ {print $1}' |
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
cp deploy/Dockerfile "$ctx/Dockerfile"
docker build -q -t concierge:local "$ctx"
