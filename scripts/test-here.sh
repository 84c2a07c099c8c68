#!/usr/bin/env bash
# This environment only: sets up (scripts/setup.sh), lints, runs the test suite. Extra
# arguments go to pytest; --no-lint first skips the lint (scripts/test.sh lints once,
# in its first environment).
set -euo pipefail
cd "$(dirname "$0")/.."
lint=1
if [ "${1:-}" = "--no-lint" ]; then
  lint=0
  shift
fi
bash scripts/setup.sh
[ "$lint" = 0 ] || bash scripts/lint.sh
exec .venv/bin/python -m pytest "$@"
