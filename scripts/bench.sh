#!/usr/bin/env bash
# Benchmarks (figures, never pass/fail): sets up what the tests set up, then runs bench/*.bench.ts.
# Prints a table and writes bench/results/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node24.sh
bash scripts/build.sh
bash scripts/docker-engine.sh
NODE_BIN=$(command -v node) bash test/standin/build.sh gptoss-standin:test
export GPTOSS_STANDIN_IMAGE=gptoss-standin:test
for b in dist/bench/*.bench.js; do node "$b"; done
