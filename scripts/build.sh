#!/usr/bin/env bash
# Builds the app from a checkout: the dependencies from the lockfile with no install scripts run
# (nothing a dependency ships gets to run as root), then the one native addon, ours, explicitly.
#   bash scripts/build.sh          npm ci (when needed), node-gyp, tsc
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
if [ ! -f build/Release/unixdgram.node ] || [ src/systemd/native/unixdgram.c -nt build/Release/unixdgram.node ] \
   || [ binding.gyp -nt build/Release/unixdgram.node ]; then
  npx --no-install node-gyp rebuild --loglevel=error >&2
fi
npx tsc -p tsconfig.json
