#!/usr/bin/env bash
# Checks ./Dockerfile, the multi-stage build for machines with a registry, on a machine
# without one: builds stand-ins for its two base images from Debian's packages and this
# machine's toolchain (deploy/stand-in-base-images.sh), builds ./Dockerfile with them
# (`docker build .`, compiling inside the container with crates from crates.io), then
# runs tests/docker/cluster.sh against that image. Not in .ci/run: the build compiles
# the server from scratch (10-20 minutes on 2 cores). Run by hand after changing the
# Dockerfile, the compose file, or the binary's dependencies on the system.
#
# Usage: tests/docker/root-dockerfile.sh     (KEEP_IMAGE=1 keeps concierge:dockerfile)
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=concierge:dockerfile
deploy/stand-in-base-images.sh
echo "docker build -t $tag . (./Dockerfile)"
started=$(date +%s)
docker build -q -t "$tag" . >/dev/null
echo "built $tag in $(($(date +%s) - started)) s"
if [ "${KEEP_IMAGE:-0}" != 1 ]; then
  trap 'docker rmi "$tag" >/dev/null 2>&1 || true' EXIT
fi
CONCIERGE_TEST_IMAGE="$tag" tests/docker/cluster.sh
