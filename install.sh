#!/usr/bin/env bash
# Installs gptoss-supervisor on a GB10 host (Debian/Ubuntu, ARM64 or x86-64) and starts it.
# Idempotent: run it again to upgrade; an unchanged install changes nothing, and an upgrade
# never restarts the model container (the old supervisor hands it over to the new one).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo ./install.sh [options]

  --hf-token-file FILE   store this HF token as /etc/gptoss/hf_token (mode 0600); else $HF_TOKEN,
                         else a prompt on a terminal (Enter skips), else none
  --config FILE          the first /etc/gptoss/config.yaml (an existing one is never replaced)
  --fetch-encodings      download the two tiktoken files into paths.encodings (verified by SHA-256)
  --encodings-url URL    where to download them from (default: tiktoken's own location)
  --no-start             install and enable, but do not start the service
  --uninstall            remove what install.sh installed; keeps /etc/gptoss (config, token)
                         and the model cache under /vllm
  -h, --help             this help

Installs: /opt/gptoss-supervisor (the app, its production dependencies, and Node 24 when the
system's node is older), /usr/local/bin/gptoss-supervisor, the systemd unit, /etc/gptoss/config.yaml,
the config's paths.encodings, paths.huggingface and paths.cache. Then enables and starts gptoss-supervisor.service without
waiting for the model (7-8 minutes); follow it with: journalctl -fu gptoss-supervisor
EOF
}

PREFIX=/opt/gptoss-supervisor
BIN=/usr/local/bin/gptoss-supervisor
UNIT_DIR=/etc/systemd/system
UNIT=gptoss-supervisor.service
GATE_UNITS="gptoss-gate.socket gptoss-gate-control.socket gptoss-gate.service"
DBUS_POLICY=/etc/dbus-1/system.d/org.gptoss.Supervisor1.conf
ETC=/etc/gptoss
token_file="" config_src="" start=1 uninstall=0 fetch_enc=0 enc_url=
while [ $# -gt 0 ]; do
  case "$1" in
    --hf-token-file) token_file=${2:?--hf-token-file needs a file}; shift 2 ;;
    --hf-token-file=*) token_file=${1#*=}; shift ;;
    --config) config_src=${2:?--config needs a file}; shift 2 ;;
    --config=*) config_src=${1#*=}; shift ;;
    --fetch-encodings) fetch_enc=1; shift ;;
    --encodings-url) enc_url=${2:?--encodings-url needs a URL}; shift 2 ;;
    --encodings-url=*) enc_url=${1#*=}; shift ;;
    --no-start) start=0; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done

say() { echo "install.sh: $*"; }
warn() { echo "install.sh: warning: $*" >&2; }
die() { echo "install.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root: sudo ./install.sh"
command -v systemctl >/dev/null || die "systemd is needed (systemctl not found)"
src=$(cd "$(dirname "$0")" && pwd)
# The system bus reads policy files at start and on ReloadConfig.
reload_dbus() { busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig >/dev/null 2>&1 || systemctl reload dbus >/dev/null 2>&1 || true; }

if [ "$uninstall" = 1 ]; then
  if systemctl list-unit-files "$UNIT" >/dev/null 2>&1 && [ -f "$UNIT_DIR/$UNIT" ]; then
    say "stopping and disabling $UNIT (the model container is stopped gracefully, not removed)"
    systemctl disable --now "$UNIT" >/dev/null 2>&1 || true
  fi
  # shellcheck disable=SC2086
  systemctl disable --now $GATE_UNITS >/dev/null 2>&1 || true
  for u in $GATE_UNITS; do rm -f "$UNIT_DIR/$u"; done
  rm -f "$UNIT_DIR/gptoss-gate.socket.d/listen.conf" "$UNIT_DIR/gptoss-gate.service.d/listen.conf" "$UNIT_DIR/$UNIT.d/gate.conf"
  rmdir "$UNIT_DIR/gptoss-gate.socket.d" "$UNIT_DIR/gptoss-gate.service.d" 2>/dev/null || true
  rm -f "$UNIT_DIR/$UNIT" "$UNIT_DIR/$UNIT.d/network.conf" "$UNIT_DIR/$UNIT.d/monitoring.conf" "$BIN" "$DBUS_POLICY"
  rmdir "$UNIT_DIR/$UNIT.d" 2>/dev/null || true
  rm -rf "$PREFIX" "$PREFIX.new" "$PREFIX.old" /var/lib/gptoss-supervisor
  systemctl daemon-reload
  systemctl reset-failed "$UNIT" >/dev/null 2>&1 || true
  reload_dbus
  say "removed $PREFIX, $BIN, $UNIT_DIR/$UNIT, $DBUS_POLICY and the state in /var/lib/gptoss-supervisor"
  say "kept $ETC (config, token) and the model cache under /vllm; remove them by hand if you mean to"
  exit 0
fi

# ---------------------------------------------------------------- checks (warnings only)
if ! command -v docker >/dev/null; then
  warn "docker not found: install Docker first (https://docs.docker.com/engine/install/); the service will wait for it"
elif ! docker info >/dev/null 2>&1; then
  warn "the Docker engine does not answer (systemctl status docker); the service will wait for it"
elif ! docker info --format '{{json .Runtimes}} {{json .CDISpecDirs}}' 2>/dev/null | grep -qi nvidia \
     && ! command -v nvidia-container-runtime-hook >/dev/null && ! command -v nvidia-ctk >/dev/null; then
  warn "no NVIDIA container runtime found: install the NVIDIA Container Toolkit, or set container.gpus: none"
fi
if ! command -v nvidia-smi >/dev/null; then warn "nvidia-smi not found: no GPU on this host?"; fi

# ---------------------------------------------------------------- Node and the build
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
sys_node=$(command -v node || true)
if [ -n "$sys_node" ] && [ "$(node_major "$sys_node")" -ge 24 ]; then
  node_bin=$sys_node bundled_node=0
else
  if [ ! -x "$src/.tools/node24/node_modules/node-linux-$( [ "$(uname -m)" = x86_64 ] && echo x64 || echo arm64)/bin/node" ]; then
    command -v npm >/dev/null || { say "installing npm (to fetch Node 24)"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
  fi
  # shellcheck source=scripts/node24.sh
  source "$src/scripts/node24.sh"
  node_bin=$(command -v node) bundled_node=1
fi
need_build_tools() {
  command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  command -v make >/dev/null && command -v g++ >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential python3 >/dev/null
}
# Build when never built, or when the sources are newer than the build (a `git pull` since): in
# the checkout when it is root's (a checkout another user may change is built in a copy, below).
checkout_owner=$(stat -c '%u' "$src")
[ "$checkout_owner" = 0 ] && [ $((8#$(stat -c '%a' "$src") & 8#022)) = 0 ] && own_checkout=1 || own_checkout=0
if [ ! -f "$src/dist/src/cli/main.js" ] || [ ! -f "$src/build/Release/unixdgram.node" ] || [ ! -d "$src/node_modules" ] \
   || [ -n "$(find "$src/src" "$src/package-lock.json" "$src/binding.gyp" -newer "$src/dist/src/cli/main.js" -print -quit 2>/dev/null)" ]; then
  stale=1
else
  stale=0
fi
if [ "$stale" = 1 ] && [ "$own_checkout" = 1 ]; then
  say "building (npm ci without install scripts, the native addon, tsc)"
  need_build_tools
  # A checkout may belong to someone else: nothing a dependency ships runs as root (--ignore-scripts).
  bash "$src/scripts/build.sh"
fi

# ---------------------------------------------------------------- stage the app
# What root will run is copied first (a snapshot the checkout's owner cannot change any more), then
# looked at: every file root's and writable by root only, or it is not used. A build that another
# user owns or may change (their checkout, built by them) is thrown away, and a clean copy of the
# sources is built in a folder of root's. What lands in $PREFIX is root:root, not group/other writable.
stage=$PREFIX.new clean=
# A stage or a clean build left by a failure is not left behind.
trap 'rm -rf "$stage" ${clean:+"$clean"}' EXIT
stage_from() {
  rm -rf "$stage"
  mkdir -p "$stage/dist" "$stage/build/Release"
  cp -a "$1/dist/src" "$stage/dist/src"
  cp -a "$1/build/Release/unixdgram.node" "$stage/build/Release/"
  cp -a "$1/node_modules" "$stage/node_modules"
  cp "$1/package.json" "$1/package-lock.json" "$1/README.md" "$stage/"
}
loose=
if [ "$stale" = 1 ]; then
  # Not built, or older than its sources, in a checkout of another user's.
  why="is not built, or older than its sources, and the checkout belongs to uid $checkout_owner or is writable by others"
else
  stage_from "$src"
  loose=$(find "$stage" \( ! -user 0 -o \( ! -type l -perm /022 \) \) -printf '%P (uid %U, mode %m)\n' -quit)
  case "$loose" in
    "") why= ;;
    *"(uid 0,"*) why="(${loose%% *}) is writable by group or others" ;;
    *) why="${loose##*(uid }"; why="(${loose%% *}) belongs to uid ${why%%,*}, not root" ;;
  esac
fi
if [ -n "$why" ]; then
  say "the build in $src $why: building a clean copy of its sources"
  clean=$(mktemp -d /root/gptoss-build.XXXXXX 2>/dev/null || mktemp -d)
  chmod 0700 "$clean"
  for f in src test bench scripts package.json package-lock.json tsconfig.json binding.gyp README.md; do
    [ -e "$src/$f" ] && cp -R --no-preserve=ownership,mode "$src/$f" "$clean/$f"
  done
  chown -R root:root "$clean"; chmod -R go-w "$clean"
  need_build_tools || die "cannot install the build tools (npm, make, g++) for the clean build; nothing was installed"
  (cd "$clean" && bash scripts/build.sh >&2) || die "the clean build failed (above); nothing was installed"
  stage_from "$clean"
  rm -rf "$clean"; clean=
fi
chown -R root:root "$stage"
chmod -R go-w "$stage"
if command -v npm >/dev/null; then
  (cd "$stage" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null 2>&1) \
    || warn "npm prune failed; development dependencies stay in $PREFIX/node_modules"
fi
if [ "$bundled_node" = 1 ]; then
  mkdir -p "$stage/node/bin"
  install -m 0755 -o root -g root "$node_bin" "$stage/node/bin/node"
  run_node=$PREFIX/node/bin/node
else
  run_node=$node_bin
fi
# The tree's fingerprint, of the contents and of who owns what with which mode: unchanged means
# nothing to do (timestamps do not count). The installed tree is looked at itself, not a note of it:
# a file changed there, or given to another user, is replaced.
fingerprint() {
  (cd "$1" && { find . -type f ! -name .fingerprint -print0 | sort -z | xargs -0 sha256sum
               find . ! -name .fingerprint -printf '%p %U %G %m %y\n' | sort; } | sha256sum | cut -c1-64)
}
new_fp=$(fingerprint "$stage")
old_fp=$([ -d "$PREFIX" ] && fingerprint "$PREFIX" || true)
app_changed=0
if [ "$new_fp" != "$old_fp" ]; then
  echo "$new_fp" >"$stage/.fingerprint"
  rm -rf "$PREFIX.old"
  [ -d "$PREFIX" ] && mv "$PREFIX" "$PREFIX.old"
  mv "$stage" "$PREFIX"
  rm -rf "$PREFIX.old"
  app_changed=1
  say "installed the app in $PREFIX"
else
  rm -rf "$stage"
fi

# install_text MODE DEST < content: writes only when different; prints 1 when it wrote, else 0.
install_text() {
  local mode=$1 dest=$2 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then rm -f "$tmp"; echo 0; return; fi
  install -D -m "$mode" "$tmp" "$dest"
  rm -f "$tmp"
  echo 1
}
# The daemon (run) gets its V8 memory flags (src/cli/node-flags.ts); Node refuses them in NODE_OPTIONS.
daemon_flags=$("$run_node" "$PREFIX/dist/src/cli/node-flags.js")
bin_changed=$(printf '#!/bin/sh\n# gptoss-supervisor, installed by install.sh\nmain=%s/dist/src/cli/main.js\nif [ "$1" = run ]; then exec %s %s "$main" "$@"; fi\nexec %s "$main" "$@"\n' "$PREFIX" "$run_node" "$daemon_flags" "$run_node" | install_text 0755 "$BIN")
unit_changed=$(install_text 0644 "$UNIT_DIR/$UNIT" <"$src/units/$UNIT")
gate_changed=0
for u in $GATE_UNITS; do
  [ "$(install_text 0644 "$UNIT_DIR/$u" <"$src/units/$u")" = 0 ] || gate_changed=1
done
# Who may own org.gptoss.Supervisor1 and call Restart()/Reload() (root); anyone may read its properties.
policy_changed=$(install_text 0644 "$DBUS_POLICY" <"$src/etc/dbus-1/system.d/org.gptoss.Supervisor1.conf")
[ "$policy_changed" = 0 ] || reload_dbus

# ---------------------------------------------------------------- config, token, directories
mkdir -p "$ETC"
chmod 0755 "$ETC"
shipped=${config_src:-$src/etc/gptoss/config.yaml}
[ -f "$shipped" ] || die "config $shipped not found"
if [ ! -f "$ETC/config.yaml" ]; then
  install -m 0640 -o root -g root "$shipped" "$ETC/config.yaml"
  say "wrote $ETC/config.yaml"
elif ! cmp -s "$shipped" "$ETC/config.yaml"; then
  # Never replace an operator's config: the other one goes beside it, and we say so.
  if ! { [ -f "$ETC/config.yaml.new" ] && cmp -s "$shipped" "$ETC/config.yaml.new"; }; then
    install -m 0640 -o root -g root "$shipped" "$ETC/config.yaml.new"
  fi
  other="the shipped config"; [ -z "$config_src" ] || other="--config $config_src"
  say "kept your $ETC/config.yaml; $other differs and is in $ETC/config.yaml.new (compare: diff -u $ETC/config.yaml $ETC/config.yaml.new)"
fi
# The config may hold secrets (container.env, webhook URLs): root's, readable by root only (0640,
# group root). One that another user owns or may read is made so, and we say what it was.
for f in "$ETC/config.yaml" "$ETC/config.yaml.new"; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  read -r f_mode f_uid f_gid < <(stat -c '%a %u %g' "$f")
  if [ "$f_uid" != 0 ] || [ "$f_gid" != 0 ] || [ $((8#$f_mode & 8#137)) != 0 ]; then
    chown root:root "$f"; chmod 0640 "$f"
    say "made $f private: 0640, root:root (it was 0$f_mode, uid $f_uid)"
  fi
done
# Its problems go to a private temporary file (they may quote what was pasted into the config).
validate_err=$(umask 077 && mktemp)
if ! "$BIN" validate --config "$ETC/config.yaml" >/dev/null 2>"$validate_err"; then
  cat "$validate_err" >&2; rm -f "$validate_err"
  die "$ETC/config.yaml is not valid (above); fix it and run install.sh again"
fi
rm -f "$validate_err"

store_token() ( umask 077; printf '%s\n' "$1" >"$ETC/hf_token.tmp"; chmod 0600 "$ETC/hf_token.tmp"; mv "$ETC/hf_token.tmp" "$ETC/hf_token" )
if [ -n "$token_file" ]; then
  [ -r "$token_file" ] || die "cannot read $token_file"
  tok=$(tr -d '[:space:]' <"$token_file")
  [ -n "$tok" ] || die "$token_file is empty"
  store_token "$tok"; say "stored the HF token from $token_file in $ETC/hf_token (0600)"
elif [ -n "${HF_TOKEN:-}" ]; then
  store_token "$HF_TOKEN"; say "stored \$HF_TOKEN in $ETC/hf_token (0600)"
elif [ ! -s "$ETC/hf_token" ] && [ -t 0 ]; then
  read -r -s -p "Hugging Face token (Enter to skip): " tok; echo
  if [ -n "$tok" ]; then store_token "$tok"; say "stored the HF token in $ETC/hf_token (0600)"; fi
fi
[ -s "$ETC/hf_token" ] || warn "no HF token in $ETC/hf_token: fine when the model is already in the cache; else add one (--hf-token-file FILE)"
# An empty file means "no token" (the unit's SetCredential= covers a missing one as well).
[ -e "$ETC/hf_token" ] || install -m 0600 /dev/null "$ETC/hf_token"
chmod 0600 "$ETC/hf_token"
# The folders the config names (by default /vllm/encodings, /vllm/huggingface and /vllm/cache, whose
# subfolders keep vLLM's compile and JIT caches across recreates; paths.cache: null goes without).
enc_dir=$("$BIN" validate --config "$ETC/config.yaml" --get paths.encodings)
hf_dir=$("$BIN" validate --config "$ETC/config.yaml" --get paths.huggingface)
cache_dir=$("$BIN" validate --config "$ETC/config.yaml" --get paths.cache)
mkdir -p "$enc_dir" "$hf_dir"
[ "$cache_dir" = null ] || mkdir -p "$cache_dir"/vllm "$cache_dir"/flashinfer "$cache_dir"/triton "$cache_dir"/cuda
if [ "$fetch_enc" = 1 ]; then
  if "$BIN" fetch-encodings --config "$ETC/config.yaml" ${enc_url:+--base-url "$enc_url"}; then
    say "encodings in place"
  else
    warn "could not fetch the encodings (above); the model cannot start without them. Retry: sudo gptoss-supervisor fetch-encodings"
  fi
fi

# The unit's IP firewall allows loopback (IPAddressAllow=localhost), where the probes go by default
# (Docker's proxy answers there). A bindAddress that is another address is where the probes go
# instead, and Docker forwards them to the container on its bridge network: both are allowed, in a
# drop-in of our own.
dropin="$UNIT_DIR/$UNIT.d/network.conf"
bind=$("$BIN" validate --config "$ETC/config.yaml" --get container.bindAddress)
case "$bind" in
  ""|0.0.0.0|::|127.*|::1) if [ -f "$dropin" ]; then rm -f "$dropin"; unit_changed=1; fi ;;
  *) bridge=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null || true)
     [ -n "$bridge" ] || { bridge=172.17.0.0/16; warn "cannot ask Docker for its bridge network; allowing $bridge"; }
     dropin_changed=$(printf '# Written by install.sh: probes go to container.bindAddress, forwarded to the bridge.\n[Service]\nIPAddressAllow=%s %s\n' "$bind" "$bridge" | install_text 0644 "$dropin")
     [ "$dropin_changed" = 0 ] || unit_changed=1 ;;
esac

# Alert webhooks and a remote Prometheus: the unit's IP firewall lets through only what the config
# names (validate --ip-allow: metrics.allowFrom; a webhook's address, or for a host by name the
# public internet, never a private, link-local or multicast range), in a drop-in of our own. Never
# `any`: this process holds the Docker socket, and cloud metadata (169.254.169.254) and the LAN stay
# out of its reach. Re-run install.sh when a webhook's LAN address changes.
mon="$UNIT_DIR/$UNIT.d/monitoring.conf"
allow=$("$BIN" validate --config "$ETC/config.yaml" --ip-allow 2> >(sed 's/^/install.sh: /' >&2))
case " $allow " in *" any "*|*" 0.0.0.0/0 "*|*" ::/0 "*) die "refusing to write IPAddressAllow=$allow" ;; esac
if [ -n "$allow" ]; then
  mon_changed=$(printf '# Written by install.sh from metrics.allowFrom and alerts.webhooks (validate --ip-allow).\n[Service]\nIPAddressAllow=%s\n' "$allow" | install_text 0644 "$mon")
  [ "$mon_changed" = 0 ] || unit_changed=1
elif [ -f "$mon" ]; then
  rm -f "$mon"; unit_changed=1
fi

# The gate (gate.enabled): its socket listens where the config says clients reach the model, and the
# supervisor is told where its control socket is. Without the gate the container publishes the port.
gate_on=$("$BIN" validate --config "$ETC/config.yaml" --get gate.enabled)
port=$("$BIN" validate --config "$ETC/config.yaml" --get container.port)
case "$bind" in ""|0.0.0.0) listen=$port show_listen="0.0.0.0:$port" ;; *:*) listen="[$bind]:$port" show_listen=$listen ;; *) listen="$bind:$port" show_listen=$listen ;; esac
gate_conf="$UNIT_DIR/$UNIT.d/gate.conf"
if [ "$gate_on" = true ]; then
  [ "$(printf '# Written by install.sh from container.bindAddress and container.port.\n[Socket]\nListenStream=\nListenStream=%s\n' "$listen" | install_text 0644 "$UNIT_DIR/gptoss-gate.socket.d/listen.conf")" = 0 ] || gate_changed=1
  [ "$(printf '# Written by install.sh: where the gate binds itself while its socket cannot be had.\n[Service]\nEnvironment=GPTOSS_GATE_LISTEN=%s\n' "$show_listen" | install_text 0644 "$UNIT_DIR/gptoss-gate.service.d/listen.conf")" = 0 ] || gate_changed=1
  gate_unit_conf=$(printf '# Written by install.sh: gate.enabled.\n[Unit]\nWants=gptoss-gate-control.socket gptoss-gate.socket\nAfter=gptoss-gate-control.socket gptoss-gate.socket\n[Service]\nEnvironment=GPTOSS_GATE_CONTROL=/run/gptoss-gate/control.sock\n' | install_text 0644 "$gate_conf")
  [ "$gate_unit_conf" = 0 ] || unit_changed=1
elif [ -f "$gate_conf" ]; then
  rm -f "$gate_conf"; unit_changed=1
fi

# ---------------------------------------------------------------- systemd
if [ "$unit_changed" = 1 ] || [ "$app_changed" = 1 ] || [ "$gate_changed" = 1 ]; then systemctl daemon-reload; fi
if [ "$gate_on" = true ]; then
  systemctl enable gptoss-gate.socket gptoss-gate-control.socket >/dev/null 2>&1
  if [ "$start" = 1 ] || systemctl is-active --quiet "$UNIT"; then
    if [ "$gate_changed" = 1 ]; then systemctl restart gptoss-gate.socket >/dev/null 2>&1 || true; fi
    systemctl start gptoss-gate-control.socket
    systemctl start gptoss-gate.socket 2>/dev/null \
      || warn "gptoss-gate.socket cannot listen on $show_listen (a container that publishes it itself, such as the guide's, keeps it until its next planned recreate; the gate takes it then): see systemctl status gptoss-gate.socket"
    # An upgrade of the gate: it drains what is in flight while systemd's socket holds new connections.
    if systemctl is-active --quiet gptoss-gate.service && { [ "$app_changed" = 1 ] || [ "$gate_changed" = 1 ]; }; then
      say "restarting the gate (requests in flight finish; new ones wait in its socket)"
      systemctl restart gptoss-gate.service
    fi
  fi
else
  # shellcheck disable=SC2086
  systemctl disable --now $GATE_UNITS >/dev/null 2>&1 || true
fi
systemctl enable "$UNIT" >/dev/null 2>&1 || systemctl enable "$UNIT"
case "$(systemctl is-active "$UNIT" 2>/dev/null || true)" in active|activating|reloading) running=1 ;; *) running=0 ;; esac
if [ "$running" = 1 ]; then
  if [ "$app_changed" = 1 ] || [ "$unit_changed" = 1 ] || [ "$bin_changed" = 1 ]; then
    # Hand over: the running supervisor exits 75 leaving the model container as it is; systemd
    # starts the new one (RestartForceExitStatus=75), which adopts it without a restart.
    say "upgrading the running supervisor; the model container keeps serving"
    systemctl kill --kill-who=main --signal=SIGUSR2 "$UNIT"
  else
    say "nothing changed; $UNIT keeps running"
  fi
elif [ "$start" = 1 ]; then
  systemctl start --no-block "$UNIT"
  say "started $UNIT; the model takes 7-8 minutes to load on a cold start"
fi
say "follow it with: systemctl status gptoss-supervisor; journalctl -fu gptoss-supervisor"
