#!/usr/bin/env bash
# Benchmarks this plugin side by side with the existing one (perf/bench.py), after
# setting everything up (scripts/setup.sh, and .venv-perf with matplotlib for the
# plots, kept apart from the plugin's environment).
#
#   scripts/bench.sh [--quick] [perf/bench.py options]
#       here; results in perf/results/<environment>/ (debian12 on Debian 12),
#       perf/results/<environment>-quick/ with --quick (not for reporting)
#   scripts/bench.sh --forky [--quick] [perf/bench.py options]
#       the same inside the Debian forky root of scripts/forky-root.sh (needs root),
#       results copied back out to perf/results/forky[-quick]/
#
# A full run takes about 16 minutes on 2 cores; run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--forky" ]; then
  # Through scripts/in-forky.sh, on a copy of its own (its own .venv and build/),
  # so that a test run in the root at the same time cannot rebuild under it;
  # OPM_FORKY_COPY names another (a path inside the root: one per worktree).
  shift
  name=forky
  for arg in "$@"; do
    [ "$arg" = "--quick" ] && name=forky-quick
  done
  root=$(bash scripts/forky-root.sh)
  copy=${OPM_FORKY_COPY:-/opt/opm-bench}
  rm -rf "$root$copy/perf/results/$name"
  status=0
  OPM_FORKY_COPY=$copy bash scripts/in-forky.sh bash scripts/bench.sh "$@" || status=$?
  if [ -d "$root$copy/perf/results/$name" ]; then
    mkdir -p perf/results
    rm -rf "perf/results/$name"
    cp -r "$root$copy/perf/results/$name" "perf/results/$name"
    echo "bench: results copied to perf/results/$name"
  fi
  exit "$status"
fi

bash scripts/setup.sh
plot_python=.venv-perf/bin/python
if [ ! -x "$plot_python" ]; then
  python3 -m venv .venv-perf
fi
if ! "$plot_python" -c "import matplotlib" 2>/dev/null &&
  ! "$plot_python" -m pip install -q "matplotlib>=3.8"; then
  echo "bench: matplotlib could not be installed in .venv-perf: no plots" >&2
  plot_python=
fi
OPM_PLOT_PYTHON=$plot_python exec .venv/bin/python perf/bench.py "$@"
