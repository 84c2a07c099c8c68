#!/usr/bin/env bash
# Builds (once) a CPython 3.13 with a shared libpython, for a Debian whose own
# python3 is older (Debian 12 has 3.11), and prints the path of its python3.
#
# The source is the upstream tarball inside the Debian archive's python3.13 source
# package (Debian 13 "trixie" ships 3.13): apt downloads it with a deb-src line of
# its own (nothing is added to this machine's apt sources) and checks it against the
# archive's signed index. Configured with --enable-shared and an rpath to its own
# lib/, so the plugin (and python3 itself) find libpython without LD_LIBRARY_PATH.
# Installed into a cache outside the checkout, reused by every later run and every
# checkout:
#   root:      /var/cache/orthanc-python-multi/cpython-3.13.x
#   otherwise: ${XDG_CACHE_HOME:-~/.cache}/orthanc-python-multi/cpython-3.13.x
#   OPM_CACHE=DIR: DIR/cpython-3.13.x
# The build's output goes to a log next to it; a line every 30 s says how far it is.
set -euo pipefail
scripts=$(cd "$(dirname "$0")" && pwd)

series=3.13
source_package=python3.13
# The Debian release whose archive holds that source package.
suite=trixie

if [ "$(id -u)" -eq 0 ]; then
  cache=${OPM_CACHE:-/var/cache/orthanc-python-multi}
  sudo_cmd=()
else
  cache=${OPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orthanc-python-multi}
  sudo_cmd=(sudo)
fi

log() { echo "build-python: $*" >&2; }

complete() {
  local found
  found=$( (ls -d "$cache"/cpython-"$series".*/.opm-complete 2>/dev/null || true) | sort -V | tail -n 1)
  [ -n "$found" ] && echo "$(dirname "$found")/bin/python3"
}

if python=$(complete); then
  echo "$python"
  exit 0
fi

mkdir -p "$cache"
# Two set-ups at once (two checkouts) build once: the second waits for the first.
exec 9>"$cache/.cpython-$series.lock"
if ! flock -n 9; then
  log "another set-up is building CPython $series into $cache; waiting for it"
  flock 9
fi
if python=$(complete); then
  echo "$python"
  exit 0
fi

build_packages=(gcc make pkg-config xz-utils ca-certificates libssl-dev zlib1g-dev libffi-dev
  libbz2-dev liblzma-dev libsqlite3-dev libreadline-dev libncurses-dev uuid-dev libgdbm-dev)
missing=()
for package in "${build_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing what the build needs: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

work=$(mktemp -d "$cache/.cpython-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$SECONDS
elapsed() { printf '%dm%02ds' $(((SECONDS - $1) / 60)) $(((SECONDS - $1) % 60)); }

# The source package, from the archive this machine's apt already uses.
mirror=$(bash "$scripts/debian-mirror.sh")
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/source"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
  > "$work/sources.list"
apt_options=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  -o Acquire::Check-Valid-Until=false -q)
# apt drops to its _apt user to download, which cannot write into this folder.
[ "$(id -u)" -ne 0 ] || apt_options+=(-o APT::Sandbox::User=root)
log "downloading Debian $suite's $source_package source package from $mirror"
apt-get "${apt_options[@]}" update >&2
(cd "$work/source" && apt-get "${apt_options[@]}" source --download-only "$source_package" >&2)
tarball=$(ls "$work/source/${source_package}"_*.orig.tar.* | grep -v '\.asc$' | head -n 1)
tar -xf "$tarball" -C "$work"
source_dir=$(ls -d "$work"/Python-"$series".* | head -n 1)
version=${source_dir##*/Python-}
prefix="$cache/cpython-$version"
build_log="$cache/cpython-$version.log"
: > "$build_log"

# The log's last line, or the file it compiles when it is a compiler command.
last_action() {
  local line source
  line=$(tail -n 1 "$build_log")
  source=$(grep -oE '[^ ]+\.c( |$)' <<< "$line" | tail -n 1 || true)
  if [ -n "$source" ]; then echo "compiling $source"; else cut -c 1-90 <<< "$line"; fi
}

# Runs a step with its output in the log, and says every 30 s that it is still running.
step() {
  local label=$1
  shift
  local step_started=$SECONDS
  log "$label (output in $build_log)"
  ("$@") >> "$build_log" 2>&1 &
  local pid=$! ticks=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    ticks=$((ticks + 1))
    if [ $((ticks % 30)) = 0 ]; then
      log "  $label: $(elapsed "$step_started") so far; last: $(last_action)"
    fi
  done
  if ! wait "$pid"; then
    tail -n 40 "$build_log" >&2
    log "$label failed after $(elapsed "$step_started"); the whole output is in $build_log"
    exit 1
  fi
  log "  $label: done in $(elapsed "$step_started")"
}

log "building CPython $version into $prefix, once: on 2 busy cores this took 9 minutes 19 s" \
  "(configure, make -j$(nproc), install); later set-ups reuse it"
rm -rf "$prefix"
mkdir -p "$work/build"
cd "$work/build"
step "configure" "$source_dir/configure" --prefix="$prefix" --enable-shared \
  --with-ensurepip=install LDFLAGS="-Wl,-rpath,$prefix/lib"
step "make -j$(nproc)" make -j"$(nproc)"
step "make install" make install

# Refuse a build that lacks what pip and everyday scripts need (a missing -dev package
# makes configure skip a module silently).
"$prefix/bin/python3" -c 'import ssl, ctypes, sqlite3, zlib, bz2, lzma, uuid, readline, venv' >&2 || {
  log "the new CPython lacks a standard module (see $build_log)"
  exit 1
}
echo "$version" > "$prefix/.opm-complete"
log "CPython $version built in $(elapsed "$started"): $prefix"
echo "$prefix/bin/python3"
