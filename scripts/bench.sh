#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh, plus .venv-perf with matplotlib for the
# plots), then runs the benchmarks side by side with the existing plugin.
# Results: perf/results/. Extra arguments go to perf/bench.py (e.g. --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -x .venv-perf/bin/python ]; then
  python3 -m venv .venv-perf
fi
.venv-perf/bin/python -m pip install -q "matplotlib>=3.8"
OPM_PLOT_PYTHON=.venv-perf/bin/python exec .venv/bin/python perf/bench.py "$@"
