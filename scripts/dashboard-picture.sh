#!/usr/bin/env bash
# docs/dashboard.png, the README's picture of the Grafana dashboard's panels, made from a real scrape:
# the stand-in supervised, Debian's Prometheus scraping /metrics, plotted with gnuplot (no Grafana here).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node24.sh
command -v prometheus >/dev/null && command -v gnuplot >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus gnuplot-nox >/dev/null
}
bash scripts/build.sh
bash scripts/docker-engine.sh
NODE_BIN=$(command -v node) bash test/standin/build.sh gptoss-standin:test
GPTOSS_STANDIN_IMAGE=gptoss-standin:test node dist/bench/dashboard.picture.js
