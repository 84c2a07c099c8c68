#!/usr/bin/env bash
# Sets up everything on a fresh Debian machine (idempotent): the Debian packages,
# a virtual environment in .venv from a CPython >= 3.13 with a shared libpython,
# and this project built and installed into it with its test dependencies.
#
# The CPython: $OPM_PYTHON, else the first suitable one found (python3.13 on PATH,
# pyenv's, the system's python3, one built earlier by scripts/build-python.sh);
# else, on Debian 13 and later, Debian's python3 (installed with its venv and dev
# packages); else (Debian 12) one built once from Debian's python3.13 source
# package by scripts/build-python.sh, into a cache outside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
apt_install() {
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "$@"
}

debian_packages=(orthanc orthanc-dev orthanc-python orthanc-postgresql postgresql libjsoncpp-dev dcmtk wrk g++ curl)

missing=()
for package in "${debian_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -q
  apt_install "${missing[@]}"
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
  # One that scripts/build-python.sh built earlier.
  local cache
  for cache in "${OPM_CACHE:-}" /var/cache/orthanc-python-multi "${XDG_CACHE_HOME:-$HOME/.cache}/orthanc-python-multi"; do
    [ -n "$cache" ] || continue
    for prefix in $(ls -d "$cache"/cpython-3.1[3-9]*/ 2>/dev/null | sort -rV); do
      [ -f "$prefix/.opm-complete" ] && candidates+=("${prefix%/}/bin/python3")
    done
  done
  for candidate in "${candidates[@]}"; do
    if [ -x "$candidate" ] && shared_python_ok "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# Debian 13 and later ship a python3 >= 3.13 with a shared libpython: installed with
# the packages that make virtual environments and embed it.
debian_python() {
  local candidate
  candidate=$(apt-cache policy python3 2>/dev/null | awk '/Candidate:/ {print $2}')
  [ -n "$candidate" ] && [ "$candidate" != "(none)" ] || return 1
  dpkg --compare-versions "$candidate" ge 3.13 || return 1
  echo "setup: installing Debian's python3 $candidate (with python3-venv, python3-dev)" >&2
  apt_install python3 python3-venv python3-dev >&2
  shared_python_ok /usr/bin/python3 || return 1
  echo /usr/bin/python3
}

if [ ! -x .venv/bin/python ] || ! shared_python_ok .venv/bin/python; then
  if ! python=$(find_python) && ! python=$(debian_python); then
    echo "setup: no CPython >= 3.13 with a shared libpython here (OPM_PYTHON names one);" \
      "building one from Debian's python3.13 source package (scripts/build-python.sh)"
    python=$(bash scripts/build-python.sh)
  fi
  echo "setup: creating .venv from $python"
  rm -rf .venv
  "$python" -m venv .venv
fi

echo "setup: installing the build and test tools into .venv (pip)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "scikit-build-core>=0.10" "pybind11>=3.1" "libclang>=16" cmake ninja
# No build isolation: the build folder (build/) is reused, so rebuilds are incremental.
# The first build takes minutes: its compile steps ([3/12] ...) are shown as they go,
# the rest of pip's verbose output goes to build/setup-pip.log.
echo "setup: building the plugin and installing it into .venv (the first time: minutes)"
mkdir -p build
build_started=$SECONDS
.venv/bin/python -m pip install -v --no-build-isolation ".[test]" 2>&1 | tee build/setup-pip.log |
  { grep --line-buffered -E '^ *\[[0-9]+/[0-9]+\] |wrapped [0-9]+ / [0-9]+|^(ERROR|error):' || true; } |
  sed -u 's/^ */setup:   /' || {
  tail -n 40 build/setup-pip.log >&2
  echo "setup: pip failed; its whole output is in build/setup-pip.log" >&2
  exit 1
}
echo "setup: built and installed in $((SECONDS - build_started)) s"
echo "setup: plugin installed at $(.venv/bin/orthanc-python-multi plugin-path)"
echo "setup: the command line is .venv/bin/orthanc-python-multi; set-up took $((SECONDS - started)) s"
