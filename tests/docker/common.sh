# Shared by the Docker end-to-end scripts (cluster.sh, secure-cluster.sh); sourced from
# the repository root with `script` set to the caller's path. Skips the caller (exit 0,
# saying why) where Docker, compose or curl is missing or the daemon is not reachable;
# sets `compose_cmd` (docker compose v2 or docker-compose) and `started`, and defines
# the helpers both use: elapsed, say, container, addr, and report (the PASSED/FAILED
# line for a cleanup trap).

skip() {
  echo "$script: SKIPPED: $*"
  exit 0
}
command -v docker >/dev/null 2>&1 || skip "no docker command"
docker info >/dev/null 2>&1 || skip "the Docker daemon is not reachable (docker info failed)"
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose_cmd=(docker-compose)
else
  skip "neither 'docker compose' nor 'docker-compose' is installed"
fi
command -v curl >/dev/null 2>&1 || skip "no curl"

started=$(date +%s.%N)
elapsed() { awk -v s="$started" -v n="$(date +%s.%N)" 'BEGIN { printf "%6.1fs", n - s }'; }
say() { echo "[$(elapsed)] $*"; }

# The container of node N in this run's compose project.
container() { echo "$project-$1"; }
# The host address of node N's published client port (127.0.0.1:PORT; it changes when
# a container starts).
addr() { docker port "$(container "$1")" 8080/tcp 2>/dev/null | head -n 1; }

# report RC: the script's last line.
report() {
  if [ "$1" = 0 ]; then
    echo "$script: PASSED in $(elapsed)"
  else
    echo "$script: FAILED (exit $1) after $(elapsed)" >&2
  fi
}
