#!/usr/bin/env bash
# Build the local stand-in for nvcr.io/nvidia/vllm:25.09-py3.
#
#   bash test/standin/build.sh [TAG]        (default TAG: gptoss-standin:test)
#
# FROM scratch image: busybox-static (+ applet symlinks), a node binary and the
# shared libraries ldd lists for it, minimal /etc/passwd and /etc/group, and
# test/standin/vllm.js installed as /opt/standin/vllm.mjs behind
# /usr/local/bin/vllm. NODE_BIN picks the node binary (default: `command -v node`).
#
# Quiet on success. A rebuild with unchanged inputs is a no-op: the image
# carries the label org.gptoss.standin.hash and `docker build` is skipped when
# the tag already has the same hash. STANDIN_FORCE_BUILD=1 rebuilds anyway.
set -euo pipefail

TAG="${1:-gptoss-standin:test}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LABEL=org.gptoss.standin.hash

die() { echo "standin build: $*" >&2; exit 1; }

command -v docker >/dev/null || die "docker not found"
NODE="${NODE_BIN:-$(command -v node || true)}"
[ -n "$NODE" ] || die "no node binary (set NODE_BIN)"
NODE="$(readlink -f "$NODE")"
[ -x "$NODE" ] || die "node binary $NODE is not executable"
BUSYBOX="${BUSYBOX_BIN:-/bin/busybox}"
BUSYBOX="$(readlink -f "$BUSYBOX")"
[ -x "$BUSYBOX" ] || die "busybox not found at $BUSYBOX (apt-get install busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked; the stand-in needs busybox-static"
fi

# Serialise concurrent builds of the same tag (parallel test runs).
LOCK="${TMPDIR:-/tmp}/gptoss-standin-build.$(printf '%s' "$TAG" | tr -c 'A-Za-z0-9._-' '_').lock"
if command -v flock >/dev/null; then
  exec 9>"$LOCK"
  flock 9
fi

# Shared libraries of node, as ldd lists them: "name => /path (addr)" or "/path (addr)".
LIBS=()
while read -r lib; do
  [ -n "$lib" ] && LIBS+=("$lib")
done < <(ldd "$NODE" 2>/dev/null | awk '
  $2 == "=>" && $3 ~ /^\// { print $3; next }
  $1 ~ /^\// { print $1 }' | sort -u)
# A statically linked node has no libraries; that is fine.

# ------------------------------------------------------------ static files ---
ENTRYPOINT_SH='#!/bin/sh
# Stand-in for /opt/nvidia/nvidia_entrypoint.sh of the NGC vLLM image.
if [ -z "${STANDIN_NO_BANNER:-}" ]; then
cat <<EOF

==========
== vLLM ==
==========

NVIDIA Release 25.09 (build 00000000) [gptoss stand-in]
vLLM Version 0.10.1.1+381074ae.nv25.09
Container image Copyright (c) 2025, NVIDIA CORPORATION & AFFILIATES. All rights reserved.

WARNING: The NVIDIA Driver was not detected.  GPU functionality will not be available.
   Use the NVIDIA Container Toolkit to start this container with GPU support; see
   https://docs.nvidia.com/datacenter/cloud-native/ .

EOF
fi
if [ $# -eq 0 ]; then exec /bin/sh; else exec "$@"; fi
'
VLLM_SH='#!/bin/sh
exec /usr/local/bin/node /opt/standin/vllm.mjs "$@"
'
PASSWD='root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
'
GROUP='root:x:0:
nogroup:x:65534:
'
DOCKERFILE="FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    HOME=/root \\
    NVIDIA_VLLM_VERSION=0.10.1.1 \\
    VLLM_STANDIN=1
WORKDIR /workspace
EXPOSE 8000
LABEL org.gptoss.standin=1
ENTRYPOINT [\"/opt/nvidia/nvidia_entrypoint.sh\"]
"

# --------------------------------------------------------------- the hash ---
# Content of everything that goes into the image, plus the generated text.
# Large binaries are keyed by path, size, mtime and inode (hashing ~100 MB of
# node on every test run would dominate the no-op time); STANDIN_HASH_CONTENT=1
# hashes their content instead.
hash_inputs() {
  printf 'v1\n%s\n%s\n%s\n%s\n%s\n%s\n' "$DOCKERFILE" "$ENTRYPOINT_SH" "$VLLM_SH" "$PASSWD" "$GROUP" "$NODE"
  sha256sum "$HERE/vllm.js" "$HERE/build.sh"
  local f
  for f in "$NODE" "$BUSYBOX" "${LIBS[@]}"; do
    if [ "${STANDIN_HASH_CONTENT:-0}" = 1 ]; then
      printf '%s ' "$f"; sha256sum < "$f"
    else
      stat -L -c '%n %s %Y %i' "$f"
    fi
  done
}
HASH="$(hash_inputs | sha256sum | cut -d' ' -f1)"

OLD_ID="$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)"
if [ -n "$OLD_ID" ] && [ "${STANDIN_FORCE_BUILD:-0}" != 1 ]; then
  OLD_HASH="$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$TAG" 2>/dev/null || true)"
  [ "$OLD_HASH" = "$HASH" ] && exit 0
fi

# ------------------------------------------------------ the build context ---
CTX="$(mktemp -d "${TMPDIR:-/tmp}/gptoss-standin-ctx.XXXXXX")"
LOG="$CTX.log"
cleanup() { rm -rf "$CTX" "$LOG"; }
trap cleanup EXIT
R="$CTX/rootfs"
mkdir -p "$R"/{bin,etc,root,tmp,workspace,usr/local/bin,opt/standin,opt/nvidia,standin-control}
chmod 1777 "$R/tmp"
chmod 700 "$R/root"

cp "$BUSYBOX" "$R/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ -e "$R/bin/$applet" ] || ln -s busybox "$R/bin/$applet"
done
cp "$NODE" "$R/usr/local/bin/node"
for lib in "${LIBS[@]}"; do
  mkdir -p "$R$(dirname "$lib")"
  cp -L "$lib" "$R$lib"      # the real file at the path ldd names (loader included)
done
cp "$HERE/vllm.js" "$R/opt/standin/vllm.mjs"
printf '%s' "$VLLM_SH" > "$R/usr/local/bin/vllm"
printf '%s' "$ENTRYPOINT_SH" > "$R/opt/nvidia/nvidia_entrypoint.sh"
chmod 755 "$R/usr/local/bin/vllm" "$R/opt/nvidia/nvidia_entrypoint.sh" "$R/usr/local/bin/node" "$R/bin/busybox"
chmod 644 "$R/opt/standin/vllm.mjs"
printf '%s' "$PASSWD" > "$R/etc/passwd"
printf '%s' "$GROUP" > "$R/etc/group"
printf 'hosts: files dns\n' > "$R/etc/nsswitch.conf"
printf '%s\n' "$DOCKERFILE" > "$CTX/Dockerfile"

# The legacy builder when buildx is absent (docker 23+ clients without the plugin).
if docker buildx version >/dev/null 2>&1; then BK=1; else BK=0; fi
if ! DOCKER_BUILDKIT=$BK docker build -q --label "$LABEL=$HASH" -t "$TAG" "$CTX" >"$LOG" 2>&1; then
  cat "$LOG" >&2
  die "docker build failed for $TAG"
fi

# Smoke test: the loader, libraries and node work inside the image.
if ! out="$(docker run --rm --name "standin-selftest-build-$$" --network none --entrypoint /usr/local/bin/vllm "$TAG" --version 2>&1)"; then
  echo "$out" >&2
  docker rmi -f "$TAG" >/dev/null 2>&1 || true
  die "built $TAG but node does not run inside it"
fi

# Drop the image this tag replaced, if nothing else uses it (ignore failures).
NEW_ID="$(docker image inspect -f '{{.Id}}' "$TAG")"
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$NEW_ID" ]; then
  docker rmi "$OLD_ID" >/dev/null 2>&1 || true
fi
exit 0
