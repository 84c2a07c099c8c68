#!/usr/bin/env bash
# Sets up everything on a fresh Debian machine (idempotent): the Debian packages,
# a virtual environment in .venv from a Python >= 3.13 with a shared libpython,
# and this project built and installed into it with its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(orthanc orthanc-dev orthanc-python orthanc-postgresql postgresql libjsoncpp-dev dcmtk wrk g++ curl)

missing=()
for package in "${debian_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

shared_python_ok() {
  "$1" - <<'PY' 2>/dev/null
import sys, sysconfig
ok = sys.version_info >= (3, 13) and sysconfig.get_config_var("Py_ENABLE_SHARED") == 1
sys.exit(0 if ok else 1)
PY
}

find_python() {
  local candidates=()
  [ -n "${OPM_PYTHON:-}" ] && candidates+=("$OPM_PYTHON")
  command -v python3.13 >/dev/null 2>&1 && candidates+=("$(command -v python3.13)")
  if command -v pyenv >/dev/null 2>&1; then
    for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[3-9]' | sort -rV); do
      candidates+=("$(pyenv prefix "$version")/bin/python3")
    done
  fi
  for prefix in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[3-9]* 2>/dev/null | sort -rV); do
    candidates+=("$prefix/bin/python3")
  done
  # Debian 13 and later: the system's python3 (3.13, 3.14) has a shared libpython.
  command -v python3 >/dev/null 2>&1 && candidates+=("$(command -v python3)")
  for candidate in "${candidates[@]}"; do
    if [ -x "$candidate" ] && shared_python_ok "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ] || ! shared_python_ok .venv/bin/python; then
  python=$(find_python) || {
    echo "setup: no Python >= 3.13 with a shared libpython found (set OPM_PYTHON)" >&2
    exit 1
  }
  echo "setup: creating .venv from $python"
  rm -rf .venv
  "$python" -m venv .venv
fi

.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "scikit-build-core>=0.10" "pybind11>=3.1" "libclang>=16" cmake ninja
# No build isolation: the build folder (build/) is reused, so rebuilds are incremental.
.venv/bin/python -m pip install -q --no-build-isolation ".[test]"
echo "setup: plugin installed at $(.venv/bin/orthanc-python-multi plugin-path)"
