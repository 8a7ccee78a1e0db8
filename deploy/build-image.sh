#!/usr/bin/env bash
# Builds the Concierge image from this checkout without pulling anything: the release
# binary plus the exact shared libraries it links against, on an empty (scratch) image
# (deploy/Dockerfile.scratch). This is the path for a machine that cannot reach a
# registry; with one, `docker compose build` uses the multi-stage ./Dockerfile instead.
# Both images have the same layout, variables, ports, volume and entry point.
#
# Usage: deploy/build-image.sh [TAG]     (TAG defaults to concierge:local, the tag
# docker-compose.yml runs). CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-concierge:local}"
cargo build --release --bin concierge
bin="${CARGO_TARGET_DIR:-target}/release/concierge"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/tmp" "$ctx/data" "$ctx/certs"
chmod 1777 "$root/tmp"
cp "$bin" "$root/usr/local/bin/concierge"
# Every library the binary loads, and the dynamic loader itself.
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' |
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
cp deploy/Dockerfile.scratch "$ctx/Dockerfile"
docker build -q -t "$tag" "$ctx"
