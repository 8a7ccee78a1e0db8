#!/usr/bin/env bash
# Builds local stand-ins for the two base images ./Dockerfile names, for a machine that
# reaches Debian's archive and crates.io but no container registry (this project's CI
# machine). With them in place, `docker compose up --build` and `docker build .` run
# ./Dockerfile unchanged, as they would on a machine that pulls the real images:
#   debian:${DEBIAN_RELEASE}-slim          debootstrap --variant=minbase
#   rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE}
#                                           the same, plus gcc and libc6-dev (the linker
#                                           rustc calls), plus this machine's Rust
#                                           toolchain (rustc --print sysroot), which must
#                                           be version RUST_VERSION
# Both trust this machine's CA bundle (/etc/ssl/certs/ca-certificates.crt), so a build
# behind an HTTPS proxy with its own CA reaches crates.io as the host does.
# A tag that already exists is left alone unless FORCE=1. Needs root (debootstrap) and
# about 1 GiB of space in TMPDIR. Not used by .ci/run (it takes minutes); run by hand to
# check that ./Dockerfile still builds: tests/docker/root-dockerfile.sh.
#
# Usage: deploy/stand-in-base-images.sh        (RUST_VERSION=1.95 DEBIAN_RELEASE=bookworm)
set -euo pipefail
RUST_VERSION="${RUST_VERSION:-1.95}"
DEBIAN_RELEASE="${DEBIAN_RELEASE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
slim_tag="debian:${DEBIAN_RELEASE}-slim"
rust_tag="rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE}"

command -v debootstrap >/dev/null 2>&1 || {
  echo "debootstrap is missing: apt-get install debootstrap" >&2
  exit 1
}
have() { [ "${FORCE:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A Debian root file system, imported as an image. $1 tag, $2 extra packages, then
# `docker import --change` arguments.
import_rootfs() {
  local tag="$1" include="$2"
  shift 2
  local root="$work/${tag//[:\/]/_}"
  echo "debootstrap $DEBIAN_RELEASE for $tag" >&2
  debootstrap --variant=minbase ${include:+--include="$include"} \
    "$DEBIAN_RELEASE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    echo "debootstrap failed" >&2
    exit 1
  }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  # Trust what this machine trusts: where HTTPS goes through a proxy with its own CA,
  # cargo inside the build must accept it too.
  if [ -f /etc/ssl/certs/ca-certificates.crt ] && [ -d "$root/etc/ssl/certs" ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  fi
  if [ -n "${RUST_SYSROOT:-}" ]; then
    mkdir -p "$root/usr/local/rust" "$root/usr/local/cargo"
    cp -a "$RUST_SYSROOT"/. "$root/usr/local/rust/"
  fi
  tar -C "$root" -c . | docker import "$@" - "$tag" >/dev/null
  echo "built $tag" >&2
}

if have "$slim_tag"; then
  echo "$slim_tag exists (FORCE=1 rebuilds it)" >&2
else
  import_rootfs "$slim_tag" "" --change 'CMD ["bash"]'
fi

if have "$rust_tag"; then
  echo "$rust_tag exists (FORCE=1 rebuilds it)" >&2
else
  version=$(rustc --version | awk '{print $2}')
  case "$version" in
  "$RUST_VERSION" | "$RUST_VERSION".*) ;;
  *)
    echo "this machine's rustc is $version, not $RUST_VERSION: set RUST_VERSION=$version" \
      "and build with --build-arg RUST_VERSION=$version" >&2
    exit 1
    ;;
  esac
  RUST_SYSROOT=$(rustc --print sysroot) import_rootfs "$rust_tag" "ca-certificates,gcc,libc6-dev" \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]'
fi
