#!/usr/bin/env bash
# The whole test suite on a fresh machine: sets up Node 24, the dependencies, a Docker engine and
# the stand-in vLLM image, then runs every test. Nothing is skipped: without Docker it fails.
#   bash scripts/test.sh            all tests
#   bash scripts/test.sh unit       only the tests that need no Docker
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
step() { printf '\n== %s\n' "$*" >&2; }

step "Node"
source scripts/node24.sh
echo "node $(node --version) at $(command -v node)" >&2
step "dependencies and build (no install scripts; the native addon built explicitly)"
bash scripts/build.sh
[ "$what" = arm64 ] && exec bash scripts/arm64.sh   # the app on ARM64 under qemu-user (scripts/arm64.sh)
step "lint and format (eslint with type-aware rules, prettier)"
npm run --silent lint

# A suite in a TMPDIR of its own. Each test removes what it makes (t.teardown, the helpers' stops,
# stopAll after each integration test). os.tmpdir() honours TMPDIR, so the tests' folders, and those
# of the processes they start, land in a fresh folder that must be empty at the end; other processes
# writing to /tmp meanwhile do not count. ava runs without npx: npm keeps its own compile cache in TMPDIR.
in_own_tmp() {
  local what=$1 dir rc=0
  shift
  dir=$(mktemp -d "${TMPDIR:-/tmp}/gptoss-$what.XXXXXX")
  # Others may pass through, as through /tmp: the D-Bus tests reach a bus's socket as nobody.
  chmod 755 "$dir"
  TMPDIR=$dir "$@" || rc=$?
  if [ -n "$(ls -A "$dir")" ]; then
    { echo "the $what tests left these in their TMPDIR ($dir):"; ls -A "$dir" | sed 's/^/  /'; } >&2
    rm -rf "$dir"
    exit 1
  fi
  rm -rf "$dir"
  [ "$rc" = 0 ] || exit "$rc"
}

step "unit tests (in a TMPDIR of their own: whatever a test leaves there fails the run)"
in_own_tmp unit node_modules/.bin/ava 'dist/test/unit/**/*.test.js'
[ "$what" = unit ] && exit 0

step "Docker engine"
bash scripts/docker-engine.sh
step "stand-in vLLM image"
# The stand-in is FROM scratch around a static busybox (Debian's busybox-static).
if ! { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }; then
  [ "$(id -u)" = 0 ] || { echo "install busybox-static (apt-get install busybox-static) and run again" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
NODE_BIN=$(command -v node) bash test/standin/build.sh gptoss-standin:test
export GPTOSS_STANDIN_IMAGE=gptoss-standin:test

step "integration tests (real Docker engine; in a TMPDIR of their own, as the unit tests)"
# The pull tests run a real registry on loopback (Debian's docker-registry, htpasswd for auth).
if ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "install docker-registry and apache2-utils and run again" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry apache2-utils >/dev/null
fi
# The monitoring tests scrape the daemon with a real Prometheus and check the exposition with promtool.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "install prometheus and run again" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # Debian starts its own on :9090; the tests run theirs.
  systemctl disable --now prometheus >/dev/null 2>&1 || pkill -x prometheus || true
fi
# The export tests run Debian's docker-compose; the Quadlet one Podman's generator (scripts/quadlet.sh).
if ! command -v docker-compose >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "install docker-compose and run again" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
fi
in_own_tmp integration node_modules/.bin/ava --serial 'dist/test/integration/**/*.test.js'

step "the demo (scripts/demo.sh --auto), then nothing of it left"
# Its own container name and temp folder (TMPDIR), so what it leaves is found exactly: a container
# of that name, a process whose command line names the folder (the supervisor's --config), a file.
demo_tmp=$(mktemp -d /tmp/gptoss-demo-check.XXXXXX)
demo_name=gptoss-demo-check-$$
demo_rc=0
DEMO_NO_BUILD=1 DEMO_NAME=$demo_name TMPDIR=$demo_tmp bash scripts/demo.sh --auto || demo_rc=$?
left=""
[ -z "$(docker ps -aq --filter "name=^/${demo_name}\$")" ] || left+=" container $demo_name;"
if pgrep -f "$demo_tmp" >/dev/null; then left+=" processes: $(pgrep -af "$demo_tmp" | tr '\n' ';')"; fi
rm -f "$demo_tmp"/gptoss-standin-build.*.lock # test/standin/build.sh's flock file, kept by design
[ -z "$(ls -A "$demo_tmp")" ] || left+=" in $demo_tmp: $(ls -A "$demo_tmp" | tr '\n' ' ');"
[ -z "$left" ] && rmdir "$demo_tmp"
[ -z "$left" ] || { echo "the demo left behind:$left" >&2; exit 1; }
[ "$demo_rc" = 0 ] || { echo "the demo failed (exit $demo_rc)" >&2; exit 1; }

step "end-to-end tests (systemd as PID 1 in a container, install.sh, journal, watchdog)"
npx ava --serial --concurrency 1 'dist/test/e2e/**/*.test.js'
