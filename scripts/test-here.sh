#!/usr/bin/env bash
# This environment only: sets up (scripts/setup.sh), lints, runs the test suite. Extra
# arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/lint.sh
exec .venv/bin/python -m pytest "$@"
