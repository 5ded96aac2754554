#!/usr/bin/env bash
# Self-test of the stand-in image with plain docker + curl (no GPU, no --gpus).
#   bash test/standin/selftest.sh [TAG]     (builds TAG first; default gptoss-standin:test)
# Containers are named standin-selftest-* and removed at exit. Host port: STANDIN_SELFTEST_PORT (18123).
set -uo pipefail

TAG="${1:-gptoss-standin:test}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${STANDIN_SELFTEST_PORT:-18123}"
P="standin-selftest-$$"
ENC="$(mktemp -d "${TMPDIR:-/tmp}/standin-enc.XXXXXX")"
CTL="$(mktemp -d "${TMPDIR:-/tmp}/standin-ctl.XXXXXX")"
FAILS=0

cleanup() {
  local ids; ids=$(docker ps -aq --filter "name=^$P-")
  if [ -n "$ids" ]; then docker rm -f $ids >/dev/null 2>&1; fi
  rm -rf "$ENC" "$CTL"
}
trap cleanup EXIT

ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() { local what="$1"; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

bash "$HERE/build.sh" "$TAG" || { echo "build failed"; exit 1; }

head -c 3000 /dev/urandom | base64 >"$ENC/o200k_base.tiktoken"
head -c 3000 /dev/urandom | base64 >"$ENC/cl100k_base.tiktoken"
chmod 755 "$ENC" "$CTL"; chmod 644 "$ENC"/*

# run NAME [docker args...] -- [vllm serve args...]
run() {
  local name="$P-$1"; shift
  local dargs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do dargs+=("$1"); shift; done
  shift
  docker run -d --name "$name" "${dargs[@]}" "$TAG" "$@" >/dev/null
  echo "$name"
}
ENCARGS=(-v "$ENC:/etc/encodings:ro" -e TIKTOKEN_ENCODINGS_BASE=/etc/encodings)
SERVE=(vllm serve openai/gpt-oss-120b --served-model-name gpt-oss-120b --gpu-memory-utilization 0.85 --max-model-len 131072 --quantization mxfp4 --host 0.0.0.0 --port 8000)
waitexit() { timeout "${2:-30}" docker wait "$1" 2>/dev/null || echo timeout; }
logs() { docker logs "$1" 2>&1; }
lastline() { docker logs "$1" 2>&1 | tail -n 1; }
url() { echo "http://127.0.0.1:$PORT$1"; }

# ------------------------------------------------------------ failures ---
# Start the failure containers first (in parallel), check them at the end.
declare -A FAILC
for spec in "harmony|1" "free-memory|1" "cuda-oom|1" "hf-401|1" "hf-404|1" "exit:7|7" "crash-after:1|1"; do
  f="${spec%%|*}"
  n=$(run "fail-${f//[:.]/-}" "${ENCARGS[@]}" -e STANDIN_LOAD_SECONDS=1 -e "STANDIN_FAIL=$f" -- "${SERVE[@]}")
  FAILC[$n]="$f|${spec##*|}"
done
nomissing=$(run noenc -e STANDIN_LOAD_SECONDS=1 -- "${SERVE[@]}")
nofast=$(run noenc-fast -e STANDIN_FAST_FAIL=1 -- "${SERVE[@]}")
badcmd=$(run badcmd -- vllm frobnicate)
oom=$(run oom --memory 128m --memory-swap 128m "${ENCARGS[@]}" -e STANDIN_LOAD_SECONDS=1 -e STANDIN_FAIL=oom-kill -- "${SERVE[@]}")

# ---------------------------------------------------------- happy path ---
main=$(run main -p "$PORT:8000" "${ENCARGS[@]}" -v "$CTL:/standin-control:ro" -e STANDIN_LOAD_SECONDS=3 -- "${SERVE[@]}")
sleep 0.7
code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$(url /health)"); rc=$?
# Through docker-proxy a not-yet-listening container shows as reset/empty reply (56/52), not refused (7).
check "no HTTP answer while loading (curl rc=$rc)" test "$code" = 000
ip=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' "$main")
curl -s -m 2 "http://$ip:8000/health" >/dev/null; rc=$?
check "container port refuses while loading (direct, curl rc=$rc)" test "$rc" = 7
for _ in $(seq 1 50); do
  [ "$(curl -s -m 1 -o /dev/null -w '%{http_code}' "$(url /health)")" = 200 ] && break
  sleep 0.2
done
check "/health 200 after loading" test "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$(url /health)")" = 200
check "Application startup complete logged" grep -q 'Application startup complete.' <(logs "$main")
check "Uvicorn running line" grep -q 'INFO:     Uvicorn running on http://0.0.0.0:8000' <(logs "$main")
check "non-default args line" grep -q "non-default args: {'model_tag': 'openai/gpt-oss-120b'" <(logs "$main")
check "/v1/models lists served name" grep -q '"id":"gpt-oss-120b".*"max_model_len":131072' <(curl -s -m 2 "$(url /v1/models)")
chat=$(curl -s -m 2 "$(url /v1/chat/completions)" -H 'content-type: application/json' -d '{"model":"gpt-oss-120b","messages":[{"role":"user","content":"hi"}]}')
check "chat completion" grep -q '"object":"chat.completion".*"role":"assistant"' <<<"$chat"
check "chat with wrong model is 404" test "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$(url /v1/chat/completions)" -d '{"model":"nope","messages":[{"role":"user","content":"hi"}]}')" = 404
check "/metrics" grep -q '^vllm:num_requests_running' <(curl -s -m 2 "$(url /metrics)")
curl -s -m 2 -XPOST "$(url /standin/mode)" -d '{"health":"500","models":"empty"}' >/dev/null
check "mode health=500" test "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$(url /health)")" = 500
check "mode models=empty" grep -q '"data":\[\]' <(curl -s -m 2 "$(url /v1/models)")
curl -s -m 2 -XPOST "$(url /standin/mode)" -d '{"health":"hang","chat":"hang","models":"ok"}' >/dev/null
curl -s -m 2 "$(url /health)" >/dev/null; rc=$?
check "mode health=hang: curl -m 2 times out (rc=$rc)" test "$rc" = 28
curl -s -m 2 "$(url /v1/chat/completions)" -d '{"messages":[{"role":"user","content":"hi"}]}' >/dev/null; rc=$?
check "mode chat=hang: curl -m 2 times out (rc=$rc)" test "$rc" = 28
curl -s -m 2 -XPOST "$(url /standin/mode)" -d '{"health":"ok","chat":"ok"}' >/dev/null
echo '{"health":"503"}' >"$CTL/mode.json"
check "control file overrides health (503)" test "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$(url /health)")" = 503
rm -f "$CTL/mode.json"
check "control file removed -> 200" test "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$(url /health)")" = 200
curl -s -m 2 -XPOST "$(url /standin/mode)" -d '{"health":"hang"}' >/dev/null
( curl -s -m 20 "$(url /health)" >/dev/null & )   # a hung request must not delay the stop
sleep 0.3
t0=$(date +%s.%N); docker stop -t 5 "$main" >/dev/null; t1=$(date +%s.%N)
secs=$(awk "BEGIN{print $t1-$t0}")
ec=$(docker inspect -f '{{.State.ExitCode}}' "$main")
check "docker stop -t 5: exit 0 (got $ec) in ${secs}s (< 3s)" awk "BEGIN{exit !($ec==0 && $secs<3)}"
check "Shutting down logged" grep -q 'INFO:     Shutting down' <(logs "$main")

# ------------------------------------------------------ ignore SIGTERM ---
ign=$(run ignore "${ENCARGS[@]}" -e STANDIN_LOAD_SECONDS=0 -e STANDIN_IGNORE_SIGTERM=1 -- "${SERVE[@]}")
sleep 1
t0=$(date +%s.%N); docker stop -t 2 "$ign" >/dev/null; t1=$(date +%s.%N)
secs=$(awk "BEGIN{print $t1-$t0}")
ec=$(docker inspect -f '{{.State.ExitCode}}' "$ign")
check "STANDIN_IGNORE_SIGTERM=1: docker stop -t 2 -> SIGKILL, exit 137 (got $ec) after ${secs}s" awk "BEGIN{exit !($ec==137 && $secs>=1.9)}"

# ---------------------------------------------------- failure results ---
expect_text() {
  case "$1" in
    harmony) echo 'openai_harmony.HarmonyError: error downloading or loading vocab file: failed to download or load vocab file' ;;
    free-memory) echo 'ValueError: Free memory on device (39.6/119.7 GiB) on startup is less than desired GPU memory utilization (0.85, 101.74 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.' ;;
    cuda-oom) echo 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 119.70 GiB of which 1.02 GiB is free.' ;;
    hf-401) echo '401 Client Error: Unauthorized for url: https://huggingface.co/api/models/openai/gpt-oss-120b' ;;
    hf-404) echo 'huggingface_hub.errors.RepositoryNotFoundError: 404 Client Error. Repository Not Found for url: https://huggingface.co/api/models/openai/gpt-oss-120b' ;;
    exit:7) echo 'exiting with code 7' ;;
    crash-after:1) echo 'EngineCore died unexpectedly' ;;
  esac
}
for n in "${!FAILC[@]}"; do
  f="${FAILC[$n]%%|*}"; want="${FAILC[$n]##*|}"
  ec=$(waitexit "$n")
  check "STANDIN_FAIL=$f exits $want (got $ec)" test "$ec" = "$want"
  check "STANDIN_FAIL=$f prints its text" grep -qF "$(expect_text "$f")" <(logs "$n")
done
check "hf-401 mentions Invalid credentials" grep -q 'Invalid credentials in Authorization header' <(logs "$P-fail-hf-401")
check "crash-after served first" grep -q 'Application startup complete.' <(logs "$P-fail-crash-after-1")
H='openai_harmony.HarmonyError: error downloading or loading vocab file: failed to download or load vocab file'
for n in "$nomissing" "$nofast"; do
  ec=$(waitexit "$n")
  check "${n#$P-}: no encodings -> exit 1 (got $ec)" test "$ec" = 1
  check "${n#$P-}: last line is the HarmonyError" test "$(lastline "$n")" = "$H"
done
check "harmony failure comes after loading starts" grep -q 'Loading safetensors checkpoint shards' <(logs "$nomissing")
ec=$(waitexit "$badcmd")
check "unknown subcommand exits 2 (got $ec)" test "$ec" = 2
ec=$(waitexit "$oom" 60)
check "oom-kill: exit 137 and OOMKilled (got $ec $(docker inspect -f '{{.State.OOMKilled}}' "$oom"))" \
  test "$ec/$(docker inspect -f '{{.State.OOMKilled}}' "$oom")" = "137/true"

echo
if [ "$FAILS" = 0 ]; then echo "standin selftest: all passed"; else echo "standin selftest: $FAILS failed"; exit 1; fi
