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
HF="$(mktemp -d "${TMPDIR:-/tmp}/standin-hf.XXXXXX")"      # mounted at /root/.cache/huggingface
VC="$(mktemp -d "${TMPDIR:-/tmp}/standin-vllmcache.XXXXXX")"  # mounted at /root/.cache/vllm
FAILS=0

cleanup() {
  local ids; ids=$(docker ps -aq --filter "name=^$P-")
  if [ -n "$ids" ]; then docker rm -f $ids >/dev/null 2>&1; fi
  # The containers write the cache folders as root: empty them from a container when we cannot.
  local d
  for d in "$HF" "$VC"; do
    rm -rf "$d" 2>/dev/null || docker run --rm --network none -v "$d:/c" --entrypoint /bin/sh "$TAG" -c 'rm -rf /c/* /c/.[!.]*' >/dev/null 2>&1
  done
  rm -rf "$ENC" "$CTL" "$HF" "$VC"
}
trap cleanup EXIT

ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() { local what="$1"; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

bash "$HERE/build.sh" "$TAG" || { echo "build failed"; exit 1; }

head -c 3000 /dev/urandom | base64 >"$ENC/o200k_base.tiktoken"
head -c 3000 /dev/urandom | base64 >"$ENC/cl100k_base.tiktoken"
chmod 755 "$ENC" "$CTL" "$HF" "$VC"; chmod 644 "$ENC"/*

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
# waitlog NAME TEXT [SECONDS]: wait until the container's log holds TEXT (a fixed string).
waitlog() {
  local i
  for i in $(seq 1 $((${3:-20} * 10))); do
    grep -qF -- "$2" <(docker logs "$1" 2>&1) && return 0
    sleep 0.1
  done
  return 1
}
# tsof NAME TEXT: when (seconds of the day, docker's timestamp) the first line holding TEXT was written.
tsof() {
  docker logs -t "$1" 2>&1 | grep -m1 -F -- "$2" |
    awk '{ split($1, a, "T"); split(a[2], b, ":"); sub("Z", "", b[3]); printf "%.3f\n", b[1] * 3600 + b[2] * 60 + b[3] }'
}
# gap NAME TEXT1 TEXT2: seconds from the line holding TEXT1 to the one holding TEXT2.
gap() { awk -v a="$(tsof "$1" "$2")" -v b="$(tsof "$1" "$3")" 'BEGIN { if (a == "" || b == "") print -1; else printf "%.2f\n", b - a }'; }
# between X LO HI: LO <= X <= HI
between() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x != "" && x >= lo && x <= hi) }'; }
# printed NAME SED-REGEX: the number a log line prints (the regex captures it as \1).
printed() { docker logs "$1" 2>&1 | sed -n "s/.*$2.*/\1/p" | head -n 1; }

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
# Phase timing and a hang, checked after the happy path.
PHASES="weights=1,compile=2,kv=0.5,graphs=0.5,api=0.5"
phased=$(run phases "${ENCARGS[@]}" -e STANDIN_LOAD_SECONDS=1 -e "STANDIN_PHASES=$PHASES" -- "${SERVE[@]}")
hung=$(run hang-compile "${ENCARGS[@]}" -e STANDIN_LOAD_SECONDS=1 -e STANDIN_HANG=compile -- "${SERVE[@]}")

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

# -------------------------------------------------------- phase timing ---
waitlog "$phased" 'Application startup complete.' 15
check "STANDIN_PHASES: served" grep -q 'Application startup complete.' <(logs "$phased")
x=$(printed "$phased" 'Model loading took 65.97 GiB and \([0-9.]*\) seconds')
check "STANDIN_PHASES weights=1: Model loading took $x s" between "$x" 0.9 1.4
x=$(printed "$phased" 'Compiling a graph for dynamic shape takes \([0-9.]*\) s')
check "cold compile: Compiling a graph for dynamic shape takes $x s" between "$x" 1.1 2.2
x=$(printed "$phased" 'torch.compile takes \([0-9.]*\) s in total')
check "STANDIN_PHASES compile=2: torch.compile takes $x s in total" between "$x" 1.9 2.4
x=$(gap "$phased" 'torch.compile takes' 'Maximum concurrency for')
check "STANDIN_PHASES kv=0.5: kv lines took ${x}s" between "$x" 0.4 0.9
x=$(gap "$phased" 'Maximum concurrency for' 'Graph capturing finished in')
check "STANDIN_PHASES graphs=0.5: capture took ${x}s" between "$x" 0.4 0.9
x=$(printed "$phased" 'init engine (profile, create kv cache, warmup model) took \([0-9.]*\) seconds')
check "init engine took $x s (compile + kv + graphs + a little)" between "$x" 2.9 3.6
x=$(gap "$phased" 'Graph capturing finished in' 'Application startup complete.')
check "STANDIN_PHASES api=0.5: API server up ${x}s after the graphs" between "$x" 0.4 1.0
x=$(gap "$phased" 'Resolved architecture' 'Application startup complete.')
check "STANDIN_PHASES: whole load ${x}s (0.08 + 1 + 2 + 0.5 + 0.5 + 0.5)" between "$x" 4.4 5.3

# ------------------------------------------------------ hang in compile ---
sleep 1
check "STANDIN_HANG=compile: still running" test "$(docker inspect -f '{{.State.Running}}' "$hung")" = true
check "STANDIN_HANG=compile: the phase's first line is the last one" \
  grep -q "Using cache directory: /root/.cache/vllm/torch_compile_cache/.*/rank_0_0/backbone for vLLM's torch.compile\$" <(docker logs "$hung" 2>/dev/null | tail -n 1)
check "STANDIN_HANG=compile: nothing after it" test -z "$(logs "$hung" | grep -E 'Dynamo bytecode|startup complete|Avg prompt throughput')"
ip=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' "$hung")
curl -s -m 2 "http://$ip:8000/health" >/dev/null; rc=$?
check "STANDIN_HANG=compile: port refuses (curl rc=$rc)" test "$rc" = 7
t0=$(date +%s.%N); docker stop -t 5 "$hung" >/dev/null; t1=$(date +%s.%N)
secs=$(awk "BEGIN{print $t1-$t0}")
ec=$(docker inspect -f '{{.State.ExitCode}}' "$hung")
check "STANDIN_HANG=compile: docker stop -> exit 0 (got $ec) in ${secs}s (< 3s)" awk "BEGIN{exit !($ec==0 && $secs<3)}"
check "STANDIN_HANG=compile: SIGTERM during startup logged" grep -q 'Received SIGTERM during startup' <(logs "$hung")

# ------------------------------------------------------------ download ---
# A host folder at /root/.cache/huggingface: a download broken off (STANDIN_HANG=download), resumed
# and completed, then a run that finds the model complete and downloads nothing.
MD="$HF/hub/models--openai--gpt-oss-120b"
DLARGS=(-v "$HF:/root/.cache/huggingface" -e STANDIN_DOWNLOAD_BYTES=50000000 -e STANDIN_DOWNLOAD_RATE=25000000)
size() { stat -L -c %s "$@" 2>/dev/null | head -n 1; }
blobbytes() { stat -c %s "$MD"/blobs/* 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
n=$(run dl-hang "${ENCARGS[@]}" "${DLARGS[@]}" -e STANDIN_LOAD_SECONDS=1 -e STANDIN_HANG=download -- "${SERVE[@]}")
waitlog "$n" 'Using model weights format' 10
sleep 1.2
a=$(size "$MD"/blobs/*.incomplete); sleep 0.6; b=$(size "$MD"/blobs/*.incomplete)
check "STANDIN_HANG=download: the .incomplete blob stops after one step ($a, then $b bytes)" test "$a/$b" = "6250000/6250000"
docker rm -f "$n" >/dev/null
n=$(run dl-1 "${ENCARGS[@]}" "${DLARGS[@]}" -e STANDIN_LOAD_SECONDS=1 -- "${SERVE[@]}")
waitlog "$n" 'Using model weights format' 10
sleep 0.4; a=$(size "$MD"/blobs/*.incomplete); sleep 0.6; b=$(blobbytes)
check "download: it resumes the .incomplete blob and grows ($a, then $b bytes)" awk "BEGIN{exit !(${a:-0} > 6250000 && ${b:-0} > ${a:-0})}"
waitlog "$n" 'Application startup complete.' 15
check "download: 'Time spent downloading weights for openai/gpt-oss-120b: N seconds'" \
  grep -qE '\[weight_utils.py:312\] Time spent downloading weights for openai/gpt-oss-120b: [0-9]+\.[0-9]{6} seconds' <(logs "$n")
rev=$(cat "$MD/refs/main" 2>/dev/null)
check "download: refs/main holds a revision ($rev)" grep -qE '^[0-9a-f]{40}$' <<<"$rev"
link=$(readlink "$MD/snapshots/$rev/model-00000-of-00001.safetensors")
check "download: the snapshot's safetensors links to its blob ($link)" grep -qE '^\.\./\.\./blobs/[0-9a-f]{64}$' <<<"$link"
check "download: the blob is complete (50000000 bytes)" test "$(size "$MD/snapshots/$rev/model-00000-of-00001.safetensors")" = 50000000
check "download: config.json in the snapshot" grep -q GptOssForCausalLM "$MD/snapshots/$rev/config.json"
check "download: no .incomplete blob left" test -z "$(ls "$MD/blobs" | grep incomplete)"
docker rm -f "$n" >/dev/null
n=$(run dl-2 "${ENCARGS[@]}" "${DLARGS[@]}" -e STANDIN_LOAD_SECONDS=1 -- "${SERVE[@]}")
waitlog "$n" 'Application startup complete.' 15
check "download: a second run finds the model and downloads nothing" test -z "$(logs "$n" | grep 'Time spent downloading')"
x=$(printed "$n" 'Model loading took 65.97 GiB and \([0-9.]*\) seconds')
check "download: the second run's weights phase is its share of the load only ($x s)" between "$x" 0.3 0.6
docker rm -f "$n" >/dev/null

# ----------------------------------------------------- warm compile cache ---
VCARGS=(-v "$VC:/root/.cache/vllm" -e STANDIN_LOAD_SECONDS=1 -e STANDIN_PHASES=compile=2)
n=$(run warm-1 "${ENCARGS[@]}" "${VCARGS[@]}" -- "${SERVE[@]}")
waitlog "$n" 'Application startup complete.' 15
cold=$(printed "$n" 'torch.compile takes \([0-9.]*\) s in total')
check "compile cache: the first run compiles (torch.compile takes $cold s)" grep -q 'Compiling a graph for dynamic shape takes' <(logs "$n")
check "compile cache: the first run leaves its marker" test -n "$(find "$VC/torch_compile_cache" -path '*/rank_0_0/backbone/*' -type f 2>/dev/null)"
docker rm -f "$n" >/dev/null
n=$(run warm-2 "${ENCARGS[@]}" "${VCARGS[@]}" -- "${SERVE[@]}")
waitlog "$n" 'Application startup complete.' 15
warm=$(printed "$n" 'torch.compile takes \([0-9.]*\) s in total')
check "compile cache: the second run loads it ('Directly load the compiled graph(s) ...')" \
  grep -qE '\[backends.py:161\] Directly load the compiled graph\(s\) for dynamic shape from the cache, took [0-9.]+ s' <(logs "$n")
check "compile cache: no 'Compiling a graph' on the second run" test -z "$(logs "$n" | grep 'Compiling a graph')"
check "compile cache: the warm compile is shorter ($warm s, cold $cold s; 0.25 of it)" \
  awk "BEGIN{exit !(${warm:-9} < 0.8 && ${cold:-0} > 1.8)}"
docker rm -f "$n" >/dev/null

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
