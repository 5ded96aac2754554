#!/usr/bin/env bash
# The supervisor against the stand-in vLLM image, no GPU needed, load times shortened from minutes
# to seconds. A short narrated run: the container created, the load's phases, serving, one chat
# completion answered, a `docker kill` of the model and the supervisor restarting it with its
# diagnosis while the gate holds a request until the model serves again, then a stop. What the supervisor logs is shown indented, as it comes.
#   bash scripts/demo.sh          pauses before each step (Enter goes on, Ctrl-C stops)
#   bash scripts/demo.sh --auto   no pauses (scripts/test.sh runs it)
# It uses its own container name, a free port and one temp folder, and removes all three and stops
# the supervisor on any exit (the end, a failure, a deadline, Ctrl-C). Every wait has a deadline.
# Needs a Docker engine (as root, or with access to one). Environment: DEMO_NAME (container name),
# DEMO_PORT (host port), DEMO_NO_BUILD=1 (the checkout is built already), TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
auto=0
case "${1:-}" in
  --auto) auto=1 ;;
  '') ;;
  *) echo "usage: bash scripts/demo.sh [--auto]" >&2; exit 64 ;;
esac
started=$SECONDS
say() { printf 'demo %3ss: %s\n' "$((SECONDS - started))" "$*"; }

# ---------------------------------------------------------------- cleanup ---
demo="" sup="" name="" cleaned=0 hurry=0
# The supervisor, or anything of its process group, still running (an exited, unreaped one is not).
alive() { [ -n "$sup" ] && ps -o stat= -p "$sup" 2>/dev/null | grep -qv '^Z'; }
group_alive() { [ -n "$sup" ] && ps -e -o pgid=,stat= | awk -v g="$sup" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'; }
cleanup() {
  local rc=$?
  [ "$cleaned" = 1 ] && return "$rc"
  cleaned=1
  set +e
  trap 'hurry=1' INT TERM HUP # a second Ctrl-C: kill at once instead of waiting for the graceful stop
  if group_alive; then
    if alive; then say "stopping the supervisor (pid $sup), which stops the model gracefully"; fi
    kill -TERM -- "-$sup" 2>/dev/null || true
    for _ in $(seq 1 100); do # 20 s: the container's stopTimeout (5s) and more
      group_alive && [ "$hurry" = 0 ] || break
      sleep 0.2
    done
    if group_alive; then
      say "the supervisor's processes are still there; killing them"
      kill -KILL -- "-$sup" 2>/dev/null || true
    fi
  fi
  [ -n "$sup" ] && wait "$sup" 2>/dev/null
  [ -n "$name" ] && docker rm -f -v "$name" >/dev/null 2>&1
  [ -n "$demo" ] && rm -rf "$demo"
  # Say so when anything is left (it would be a bug of this script).
  local left=""
  if [ -n "$name" ] && [ -n "$(docker ps -aq --filter "name=^/${name}\$" 2>/dev/null)" ]; then left+=" container $name;"; fi
  if group_alive; then left+=" processes of group $sup;"; fi
  if [ -n "$demo" ] && [ -e "$demo" ]; then left+=" folder $demo;"; fi
  if [ -n "$left" ]; then
    say "LEFT BEHIND:$left" >&2
    [ "$rc" != 0 ] || rc=1
  elif [ -n "$demo" ]; then
    say "cleaned up: no container $name, no supervisor, no $demo ($((SECONDS - started))s in all)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap '[ -t 1 ] && echo; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ------------------------------------------------------------------ setup ---
source scripts/node24.sh
if [ "${DEMO_NO_BUILD:-}" != 1 ]; then
  say "building (scripts/build.sh)"
  bash scripts/build.sh
fi
bash scripts/docker-engine.sh
# The stand-in is FROM scratch around a static busybox (Debian's busybox-static), as in scripts/test.sh.
if ! { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }; then
  [ "$(id -u)" = 0 ] || { say "install busybox-static (apt-get install busybox-static) and run again" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
image=gptoss-standin:test
NODE_BIN=$(command -v node) bash test/standin/build.sh "$image" # a no-op when the image is current

demo=$(mktemp -d "${TMPDIR:-/tmp}/gptoss-demo.XXXXXX")
name=${DEMO_NAME:-gptoss-demo-$(printf '%s' "${demo##*.}" | tr 'A-Z' 'a-z')}
log=$demo/supervisor.log
mkdir -p "$demo/encodings" "$demo/state"
# The model counts as cached (a snapshot folder), so no HF token is needed.
mkdir -p "$demo/huggingface/hub/models--openai--gpt-oss-120b/snapshots/0000000000000000000000000000000000000000"
# The two genuine tiktoken files, rebuilt byte for byte from js-tiktoken's rank tables (the
# published SHA-256, which the supervisor checks before every start), as the tests make them.
node --input-type=module -e '
  const { writeGenuineEncodings } = await import(new URL("dist/test/helpers/tiktoken.js", `file://${process.cwd()}/`));
  await writeGenuineEncodings(process.argv[1]);' "$demo/encodings"
port=${DEMO_PORT:-$(node -e '
  const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')}
docker rm -f -v "$name" >/dev/null 2>&1 || true
cat >"$demo/config.yaml" <<YAML
container:
  name: $name
  image: $image
  port: $port
  bindAddress: 127.0.0.1
  ulimits: { memlock: 8388608 }   # sandboxes often refuse unlimited memlock; the GB10 needs -1
  env:
    # The load's phases in seconds instead of 7-8 minutes (test/standin/README.md, "Load phases").
    STANDIN_PHASES: "start=0.5,weights=1.5,compile=1,kv=0.5,graphs=1,api=0.5"
  stopTimeout: 5s
paths:
  encodings: $demo/encodings
  huggingface: $demo/huggingface
  cache: null                     # no compile-cache mounts: nothing of the container's is left on the host
hfToken: { file: $demo/hf_token } # never the host's /etc/gptoss/hf_token
metrics: { listen: null }         # no /metrics port to share with another supervisor
health:
  startup: { period: 500ms, timeout: 2m }
  liveness: { period: 1s, timeout: 2s, failureThreshold: 3 }
  readiness: { period: 1s, timeout: 2s }
restart: { initialDelay: 1s, maxDelay: 10s }
YAML

# --------------------------------------------------------------- watching ---
# The supervisor logs text at debug level into $log; the narration shows its info, warn and error
# lines (time of day only) and reads the debug `status:` records, the line `systemctl status` shows.
shown=0 mark=0
# show_new [N]: the supervisor's lines not shown yet, up to line N (default: all complete lines).
show_new() {
  local n
  n=${1:-$(wc -l <"$log")}
  [ "$n" -gt "$shown" ] || return 0
  sed -n "$((shown + 1)),${n}p" "$log" | grep -v '^[0-9-]* [0-9:]* debug ' |
    sed -E 's/^[0-9]{4}-[0-9]{2}-[0-9]{2} /  | /' || true
  shown=$n
}
status_line() { grep -E '^[0-9-]+ [0-9:]+ debug status: ' "$log" | tail -n 1 | sed -E 's/^.* debug status: //'; }
fail() {
  show_new
  say "FAILED: $*" >&2
  say "  status line: $(status_line || true)" >&2
  say "  the supervisor's last lines:" >&2
  grep -v -E '^[0-9-]+ [0-9:]+ debug ' "$log" | tail -n 15 | sed 's/^/    /' >&2 || true
  if docker inspect "$name" >/dev/null 2>&1; then
    say "  the container's last lines (docker logs --tail 10 $name):" >&2
    docker logs --tail 10 "$name" 2>&1 | sed 's/^/    /' >&2 || true
  fi
  exit 1
}
# wait_line WHAT SECONDS REGEX: the first supervisor line after the last one waited for that matches.
wait_line() {
  local what=$1 secs=$2 re=$3 deadline=$((SECONDS + $2)) hit
  while :; do
    show_new
    hit=$(tail -n "+$((mark + 1))" "$log" | grep -n -m 1 -E -- "$re" | cut -d: -f1 || true)
    if [ -n "$hit" ]; then
      mark=$((mark + hit))
      show_new "$mark"
      return 0
    fi
    alive || { wait "$sup" && rc=0 || rc=$?; fail "the supervisor exited (status $rc) before $what"; }
    [ "$SECONDS" -lt "$deadline" ] || fail "no $what within ${secs}s"
    sleep 0.2
  done
}
# Interactive: waits for Enter, then shows what the supervisor logged meanwhile. (A plain read: bash
# 5.2's `read -t` in a loop beside a running child hung, and crashed on the next signal.)
pause() {
  [ "$auto" = 1 ] && return 0
  printf 'demo %3ss: [Enter] %s ' "$((SECONDS - started))" "$*"
  read -r _ || true # Enter, or the end of input
  [ -t 0 ] || echo
  show_new
  alive || fail "the supervisor exited"
}
chat() {
  local body reply answer
  body='{"model":"gpt-oss-120b","messages":[{"role":"user","content":"Say hello in five words."}],"max_tokens":64}'
  say "POST http://127.0.0.1:$port/v1/chat/completions  (user: Say hello in five words.)"
  reply=$(curl -sS -m "${1:-20}" "http://127.0.0.1:$port/v1/chat/completions" -H 'content-type: application/json' -d "$body" 2>&1) ||
    fail "the chat completion was not answered: $reply"
  answer=$(node -e '
    const r = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
    const c = r.choices?.[0]?.message?.content;
    if (typeof c !== "string" || !c) process.exit(1);
    console.log(c);' <<<"$reply" 2>/dev/null) || fail "the chat completion came back without an answer: $reply"
  say "assistant: $answer"
}

# ------------------------------------------------------------------- demo ---
say "container $name, port $port, config $demo/config.yaml"
cli=(node dist/src/cli/main.js run --config "$demo/config.yaml" --state-dir "$demo/state" --log-format text --log-level debug)
say "1. start: ${cli[*]}"
say "   (its preflight warnings name what this machine lacks: a GPU runtime, nvidia-smi, an HF token; the stand-in needs none)"
# Its own session and process group: Ctrl-C reaches this script, whose cleanup stops the group.
setsid "${cli[@]}" >"$log" 2>&1 </dev/null &
sup=$!
wait_line "container created" 60 ' info  container .* (created|started) '
say "   the model loads; the supervisor follows its phases from vLLM's own lines:"
wait_line "serving" 90 " info  serving gpt-oss-120b on port $port "
say "2. serving. Status line: $(status_line)"

pause "send one chat completion"
say "3. a chat completion"
chat

pause "docker kill the model"
say "4. docker kill $name  (as if the model died)"
docker kill "$name" >/dev/null || fail "docker kill $name failed"
wait_line "diagnosis of the exit" 30 ' (warn |error) +container exited '
said=$(sed -n "${mark}p" "$log" | sed -E 's/^[0-9-]+ [0-9:]+ [a-z]+ +//; s/; last log: .*//')
say "   the supervisor: \"$said\": a kill (137 is SIGKILL's exit, no OOM kill, no cause in the"
say "   model's log), so it restarts the container after a backoff, counting the restart"
# 4b. The front door: a request sent now, while nothing serves, is held by the gate and answered
#     once the model serves again. Without the gate the port would refuse it.
say "4b. a request while the model restarts: the gate holds it and forwards it the moment it serves"
t0=$SECONDS
chat 90
say "   answered after $((SECONDS - t0))s of waiting, not refused"
wait_line "restart" 60 ' info  restarting container '
wait_line "serving again" 90 " info  serving gpt-oss-120b on port $port "
say "   serving again. Status line: $(status_line)"
chat

if [ "$auto" = 0 ]; then
  say "the model serves on http://127.0.0.1:$port/v1 (try another 'docker kill $name' in another terminal)"
  pause "stop (or Ctrl-C)"
fi
say "5. stop: SIGTERM to the supervisor, which stops the container (docker stop -t 5)"
kill -TERM "$sup"
deadline=$((SECONDS + 30))
while alive; do
  [ "$SECONDS" -lt "$deadline" ] || fail "the supervisor did not exit within 30s of SIGTERM"
  sleep 0.2
done
show_new
wait "$sup" && rc=0 || rc=$?
[ "$rc" = 0 ] || fail "the supervisor exited with status $rc on SIGTERM (0 expected)"
say "the supervisor exited 0"
