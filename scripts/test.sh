#!/usr/bin/env bash
# The whole test suite in the two environments users run, side by side:
#   debian12  this machine: Orthanc 1.10.1, a CPython 3.13 (pyenv), the existing plugin 4.0
#   forky     a Debian forky root (scripts/forky-root.sh): Orthanc 1.13.0, Debian's
#             CPython 3.14, the existing plugin 7.1
# Each sets itself up first (Debian packages, .venv, the plugin built into it). The
# generator tests also parse the SDK headers of Debian 13 (1.12.7) and of the other
# environment. The lint runs once, in the first environment. Extra arguments go to
# pytest in both.
#
#   OPM_ENVIRONMENTS=debian12 scripts/test.sh -x    one environment only
#
# scripts/test.sh --fast [pytest arguments]: the inner-loop tier (tests/README.md), in
# this environment only, without root: the plugin rebuilt (incrementally) into the
# .venv of scripts/setup.sh, the lint, the unit (generator) and embed tests and the
# integration tests marked smoke. A few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--fast" ]; then
  shift
  if [ ! -x .venv/bin/python ]; then
    echo "test: --fast needs the .venv of a set-up checkout: run scripts/setup.sh once" >&2
    exit 2
  fi
  started=$(date +%s)
  .venv/bin/python -m pip install -q --no-build-isolation --no-deps .
  bash scripts/lint.sh
  status=0
  .venv/bin/python -m pytest -m "unit or embed or smoke" "$@" || status=$?
  echo "=== fast tier: $(($(date +%s) - started)) s"
  exit "$status"
fi

environments=${OPM_ENVIRONMENTS:-debian12 forky}

headers=$(bash scripts/trixie-sdk.sh)
if [[ " $environments " == *" forky "* ]]; then
  headers="$headers:$(bash scripts/forky-root.sh)/usr/include"
fi

# The environments run at the same time, each with its own output prefix and its own
# band of server ports (OPM_TEST_PORTS, tests/support/process.py): most of a test's
# time is spent waiting for an Orthanc to start or stop, so on 2 cores the two
# suites together take little more than the longer one alone. The lint runs in the
# first environment only (its tools and sources are the same in every environment).
results=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$results"' EXIT
count=$(wc -w <<< "$environments")
index=0
for environment in $environments; do
  case $environment in debian12 | forky) ;; *) echo "test: unknown environment $environment" >&2; exit 2 ;; esac
  width=$((22000 / count))
  ports="$((10000 + index * width))-$((10000 + (index + 1) * width - 1))"
  lint=()
  [ "$index" = 0 ] || lint=(--no-lint)
  index=$((index + 1))
  (
    started=$(date +%s)
    status=0
    echo "=== tests in $environment (server ports $ports)"
    if [ "$environment" = debian12 ]; then
      OPM_TEST_PORTS=$ports OPM_SDK_HEADERS=$headers bash scripts/test-here.sh "${lint[@]}" "$@" || status=$?
    else
      OPM_TEST_PORTS=$ports OPM_SDK_HEADERS="/usr/include:$(bash scripts/trixie-sdk.sh)" \
        bash scripts/in-forky.sh bash scripts/test-here.sh "${lint[@]}" "$@" || status=$?
    fi
    echo "=== $environment: $(($(date +%s) - started)) s, exit status $status"
    echo "$status" > "$results/$environment"
  ) 2>&1 < /dev/null | sed -u "s/^/[$environment] /" &
done
wait

failed=()
for environment in $environments; do
  [ "$(cat "$results/$environment" 2>/dev/null)" = 0 ] || failed+=("$environment")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test: failed in ${failed[*]}" >&2
  exit 1
fi
