#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh), then runs the test suite. Extra
# arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/lint.sh
exec .venv/bin/python -m pytest "$@"
