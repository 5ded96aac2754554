#!/usr/bin/env bash
# Makes a Docker engine answer for the tests: uses the one running, else (as root) installs
# Debian's docker.io and starts dockerd in its own session. Where no GPU exists, a stand-in
# `nvidia-container-runtime-hook` (exits 0) goes on dockerd's PATH so `--gpus all` containers start.
#   bash scripts/docker-engine.sh            make sure one answers
#   bash scripts/docker-engine.sh --restart  stop the engine and start it again (tests of Docker outages)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "docker-engine: $*" >&2; }

if [ "${1:-}" = --restart ]; then
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker 2>/dev/null; then
    systemctl restart docker
  elif [ -f /var/run/docker.pid ]; then
    pid=$(cat /var/run/docker.pid)
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  fi
fi

if docker info >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  log "no Docker engine answers and this is not root: start Docker (systemctl start docker) and run again"
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq docker.io >/dev/null
fi
# Outside the checkout: a dockerd started from a checkout that is later deleted keeps its PATH.
hookdir=/var/lib/gptoss-test/gpu-hook
extra_path=""
if ! command -v nvidia-container-runtime-hook >/dev/null 2>&1; then
  mkdir -p "$hookdir"
  printf '#!/bin/sh\n# Stand-in for the NVIDIA hook on a machine without a GPU: lets --gpus containers start.\nexit 0\n' >"$hookdir/nvidia-container-runtime-hook"
  chmod +x "$hookdir/nvidia-container-runtime-hook"
  extra_path="$hookdir:"
  log "no GPU runtime here: using a stand-in nvidia-container-runtime-hook"
fi
# A dockerd that died uncleanly leaves its pid file, and the next one refuses to start.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then rm -f /var/run/docker.pid; fi
mkdir -p "$root/.tools"
# Not the caller's TMPDIR either: a test suite's is removed when it ends (the integration test that
# restarts dockerd runs in one), and runc's exec files (docker exec, healthchecks) then cannot be made.
PATH="$extra_path$PATH" setsid env -u TMPDIR dockerd >"$root/.tools/dockerd.log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then log "dockerd started (log: .tools/dockerd.log)"; exit 0; fi
  sleep 0.5
done
log "dockerd did not answer within 30s; last lines of .tools/dockerd.log:"
tail -n 20 "$root/.tools/dockerd.log" >&2
exit 1
