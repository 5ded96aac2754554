#!/usr/bin/env bash
# Builds the image the end-to-end tests boot: Debian bookworm with systemd as PID 1, journald and
# the system D-Bus, made with debootstrap from Debian's packages (no registry is needed). The
# docker client is the host's; the engine is the host's too, through its socket.
#   bash test/e2e/harness/build-image.sh [TAG]     (default gptoss-e2e-systemd:test)
# A no-op when the tag exists and this script is unchanged (label org.gptoss.e2e.hash).
set -euo pipefail
TAG=${1:-gptoss-e2e-systemd:test}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
hash=$(cat "$here/build-image.sh" | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{index .Config.Labels "org.gptoss.e2e.hash"}}' "$TAG" 2>/dev/null || true)" = "$hash" ]; then exit 0; fi

if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
work="$root/.tools/e2e-build"
rm -rf "$work"
mkdir -p "$work"
rootfs="$work/rootfs"
mirror=${DEBIAN_MIRROR:-$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
if [ -z "$mirror" ]; then
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
fi
mirror=${mirror:-http://deb.debian.org/debian}
echo "e2e image: debootstrap bookworm from $mirror (a few minutes)" >&2
# systemd-journal-remote writes the kernel-transport journal records the kernel-evidence test needs
# (no program can send _TRANSPORT=kernel to journald; a journal file written by it can hold them).
debootstrap --variant=minbase --include=systemd,systemd-sysv,systemd-journal-remote,dbus,ca-certificates,procps,iproute2,curl,less,socat,util-linux \
  bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }

# The host's docker client talks to the host's engine through the shared socket.
cp "$(command -v docker)" "$rootfs/usr/bin/docker"
# Units that make no sense in a container.
for u in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-modules-load.service \
         sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount systemd-remount-fs.service \
         getty@tty1.service console-getty.service systemd-logind.service systemd-firstboot.service \
         systemd-resolved.service systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$u"
done
# docker.service stands for the engine: it relays /run/docker.sock to the host's engine (shared as
# /host-docker.sock). Stopping it takes the engine away from everything in here, as stopping
# dockerd would, while the model container runs on (as with Docker's live-restore).
cat >"$rootfs/etc/systemd/system/docker.service" <<'UNIT'
[Unit]
Description=Docker engine (relayed to the host's through /host-docker.sock)
[Service]
Type=simple
ExecStartPre=/bin/rm -f /run/docker.sock
ExecStart=/usr/bin/socat UNIX-LISTEN:/run/docker.sock,fork,mode=660 UNIX-CONNECT:/host-docker.sock
# Active only once the socket answers, as dockerd's own unit.
ExecStartPost=/bin/sh -c 'for i in $(seq 100); do /usr/bin/docker version >/dev/null 2>&1 && exit 0; sleep 0.1; done; exit 1'
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/docker.service "$rootfs/etc/systemd/system/multi-user.target.wants/docker.service"
echo 'gptoss-e2e' >"$rootfs/etc/hostname"
printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' >"$rootfs/etc/systemd/journald.conf"
rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
printf 'FROM scratch\nCOPY rootfs/ /\nLABEL org.gptoss.e2e.hash=%s\nSTOPSIGNAL SIGRTMIN+3\nCMD ["/sbin/init"]\n' "$hash" >"$work/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$TAG" "$work" >/dev/null
rm -rf "$work"
echo "e2e image: built $TAG" >&2
