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
# A full run takes about 15 minutes on 2 cores; run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--forky" ]; then
  # Like scripts/in-forky.sh, but on a copy of its own (/opt/orthanc-python-multi-bench,
  # with its own .venv and build/) and in a private mount namespace: a test run of
  # in-forky.sh at the same time rebuilds /opt/orthanc-python-multi and unmounts
  # /proc, /sys and /dev when it ends, which must not hit a 15-minute benchmark.
  shift
  name=forky
  for arg in "$@"; do
    [ "$arg" = "--quick" ] && name=forky-quick
  done
  root=$(bash scripts/forky-root.sh)
  copy=/opt/orthanc-python-multi-bench
  mkdir -p "$root$copy"
  git ls-files -z --cached --others --exclude-standard |
    xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
    tar --null -T - -cf - | tar -xf - -C "$root$copy"
  rm -rf "$root$copy/perf/results/$name"
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  status=0
  # The mounts live and die with the namespace: nothing to unmount afterwards.
  unshare --mount --propagation private bash -c '
    set -e
    for fs in proc sys dev; do mount --rbind "/$fs" "$0/$fs"; done
    exec chroot "$0" env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 OPM_ENVIRONMENT=forky \
      bash -c "cd \"\$0\" && exec bash scripts/bench.sh \"\$@\"" "$1" "${@:2}"
  ' "$root" "$copy" "$@" || status=$?
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
