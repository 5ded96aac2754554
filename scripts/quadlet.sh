#!/usr/bin/env bash
# Podman's Quadlet generator, for the test that checks `export --format quadlet` with Podman's own parser.
# Debian 12's podman (4.3) has no Quadlet (it came in 4.4), and installing trixie's podman would
# upgrade libc; the quadlet binary alone needs only glibc 2.34, so it is taken out of trixie's podman
# .deb (downloaded with a private apt configuration: nothing on the system changes) and cached.
# Prints the path of the quadlet binary.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$PWD/.cache/quadlet
bin=$dir/root/usr/libexec/podman/quadlet
version=5.4.2+ds1-2+b2
sha=e3987a9d1e6d46cbd4ee11bd067927a5f7f886e41c7a2dbe5b89a436905d44a0
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$dir/sources.list"
apto=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o Debug::NoLocking=1)
apt-get "${apto[@]}" -qq update >&2
(cd "$dir" && apt-get "${apto[@]}" -qq download "podman=$version" >&2)
deb=$(ls "$dir"/podman_*.deb)
echo "$sha  $deb" | sha256sum -c --quiet - >&2
dpkg-deb -x "$deb" "$dir/root"
rm -f "$deb"
"$bin" -version >&2
echo "$bin"
