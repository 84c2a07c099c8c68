#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh), then runs Orthanc in the foreground with
# this plugin and examples/sample.py on one interpreter per core (SQLite index and
# files under ./orthanc-storage). HTTP on 127.0.0.1:8042; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/orthanc-python-multi run examples/sample.py --interpreters auto "$@"
