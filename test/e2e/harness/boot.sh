#!/usr/bin/env bash
# Boots systemd as PID 1 in a container of the e2e image, sharing the host's Docker socket (as
# /host-docker.sock, relayed by the box's docker.service) and
# network (the model container's published port is the host's), the checkout read-only at /src,
# and SHARED (a host directory) at the same path, for /vllm look-alikes and configs.
#   bash test/e2e/harness/boot.sh NAME SHARED [TAG]     prints the container id once systemd is up
set -euo pipefail
name=${1:?name}
shared=${2:?shared dir}
tag=${3:-gptoss-e2e-systemd:test}
root=$(cd "$(dirname "$0")/../../.." && pwd)
docker rm -f "$name" >/dev/null 2>&1 || true
docker run -d --name "$name" \
  --cap-add SYS_ADMIN --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup \
  --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
  --network host \
  -v /var/run/docker.sock:/host-docker.sock \
  -v "$root:/src:ro" -v "$shared:$shared" \
  -e container=docker \
  "$tag" >/dev/null
for _ in $(seq 1 120); do
  state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) docker inspect -f '{{.Id}}' "$name"; exit 0 ;; esac
  sleep 0.5
done
echo "boot.sh: systemd in $name did not come up (state: ${state:-none}); its log:" >&2
docker logs --tail 40 "$name" >&2
exit 1
