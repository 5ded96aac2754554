#!/usr/bin/env bash
# The supervisor in the foreground against the stand-in vLLM image, no GPU needed, with timings
# shortened from minutes to seconds. Watch it create the container, wait for the model to load,
# serve; then `docker kill gptoss-demo` in another terminal and watch it come back. Ctrl-C stops
# the supervisor, which stops the container gracefully.
#   bash scripts/demo.sh          interactive (as root, or with access to a Docker engine)
#   bash scripts/demo.sh --auto   kills the container itself once serving, waits for it to come back, stops
set -euo pipefail
cd "$(dirname "$0")/.."
auto=${1:-}
source scripts/node24.sh
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
npx tsc -p tsconfig.json
bash scripts/docker-engine.sh
NODE_BIN=$(command -v node) bash test/standin/build.sh gptoss-standin:test

demo=$(mktemp -d /tmp/gptoss-demo.XXXXXX)
mkdir -p "$demo/encodings" "$demo/huggingface" "$demo/state"
# The stand-in only checks that both files exist and are not empty (the real ones come from
# `gptoss-supervisor fetch-encodings`).
echo 'IQ== 0' >"$demo/encodings/o200k_base.tiktoken"
echo 'IQ== 0' >"$demo/encodings/cl100k_base.tiktoken"
port=${DEMO_PORT:-18000}
cat >"$demo/config.yaml" <<YAML
container:
  name: gptoss-demo
  image: gptoss-standin:test
  port: $port
  bindAddress: 127.0.0.1
  ulimits: { memlock: 8388608 }   # this sandbox refuses unlimited memlock; the GB10 needs -1
  env: { STANDIN_LOAD_SECONDS: "6" }  # "loading the model": 6 s instead of 7-8 minutes
  stopTimeout: 10s
paths: { encodings: $demo/encodings, huggingface: $demo/huggingface }
health:
  startup: { period: 1s, timeout: 1m }
  liveness: { period: 2s, timeout: 1s, failureThreshold: 3 }
  readiness: { period: 2s, timeout: 1s }
restart: { initialDelay: 2s, maxDelay: 20s }
YAML
cleanup() { docker rm -f gptoss-demo >/dev/null 2>&1 || true; rm -rf "$demo"; }
trap cleanup EXIT
docker rm -f gptoss-demo >/dev/null 2>&1 || true

echo "demo: config $demo/config.yaml; the model answers on http://127.0.0.1:$port once serving"
echo "demo: try 'docker kill gptoss-demo' in another terminal; Ctrl-C to stop"
cli=(node dist/src/cli/main.js run --config "$demo/config.yaml" --state-dir "$demo/state")
if [ "$auto" != --auto ]; then
  "${cli[@]}"
  exit
fi
"${cli[@]}" &
sup=$!
wait_serving() {
  for _ in $(seq 1 120); do
    # Serving, and the supervisor's own readiness probe (every 2s) has seen it too.
    curl -sf -m 1 "http://127.0.0.1:$port/v1/models" >/dev/null 2>&1 && sleep 3 && return 0
    sleep 0.5
  done
  echo "demo: not serving after 60s" >&2; return 1
}
wait_serving
echo "demo: serving; killing the container"
docker kill gptoss-demo >/dev/null
sleep 1
wait_serving
echo "demo: serving again; stopping the supervisor"
kill -TERM "$sup"
wait "$sup"
