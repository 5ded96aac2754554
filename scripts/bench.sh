#!/usr/bin/env bash
# Benchmarks (figures, never pass/fail): sets up what the tests set up, then runs bench/*.bench.ts.
# Prints a table and writes bench/results/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node24.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx tsc -p tsconfig.json
bash scripts/docker-engine.sh
NODE_BIN=$(command -v node) bash test/standin/build.sh gptoss-standin:test
export GPTOSS_STANDIN_IMAGE=gptoss-standin:test
for b in dist/bench/*.bench.js; do node "$b"; done
