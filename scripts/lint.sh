#!/usr/bin/env bash
# Style and type checks (ruff, mypy, clang-format), as CI runs them. Needs the .venv of scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
python_sources=(generator orthanc tests perf src/bootstrap.py src/embed_file.py scripts/what-loads-where.py scripts/bundle-files.py)
.venv/bin/ruff check "${python_sources[@]}" examples
.venv/bin/ruff format --check "${python_sources[@]}"
.venv/bin/mypy generator orthanc/orthanc_python_multi tests/support
.venv/bin/clang-format --dry-run --Werror src/*.cpp src/*.h tests/embed/*.cpp
