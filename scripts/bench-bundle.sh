#!/usr/bin/env bash
# Packs what perf/bench.py needs into DIR, to run on a bare x86-64 Linux (as root,
# nothing installed, no network): the files of the Debian forky root of
# scripts/forky-root.sh that Orthanc 1.13, the existing plugin 7.1, Debian's CPython
# 3.14 with its standard library, wrk and bench.py use, with this plugin built in that
# root and perf/ (scripts/bundle-files.py chooses them).
#
#   scripts/bench-bundle.sh DIR          (as root; DIR is made or emptied of a bundle)
#   DIR/run.sh OUT [perf/bench.py options]
#
# DIR then holds root.tar.gz, run.sh (scripts/bundle-run.sh) and bundle.env; in all
# under 60 MiB (checked). The imaging venv of the `mixed` scenario (numpy, Pillow,
# pydicom) does not fit (82 MiB with it): OPM_BUNDLE_IMAGING=1 packs it where it fits;
# without it, `mixed` is reported as aborted.
# The checkout is built in the root in its own copy, $OPM_BUNDLE_COPY (default
# /opt/opm-bundle), kept between runs so that rebuilds are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

limit_mib=60
if [ $# -ne 1 ]; then
  echo "usage: scripts/bench-bundle.sh DIR" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "bench-bundle: needs root (the forky root, chroot)" >&2
  exit 2
fi
mkdir -p "$1"
dir=$(cd "$1" && pwd)
log() { echo "bench-bundle: $*" >&2; }

root=$(bash scripts/forky-root.sh)
copy=${OPM_BUNDLE_COPY:-/opt/opm-bundle}
in_root() { OPM_FORKY_COPY=$copy bash scripts/in-forky.sh "$@"; }

log "building this checkout in the forky root ($copy)"
in_root bash scripts/setup.sh >&2
if [ "${OPM_BUNDLE_IMAGING:-0}" = 1 ]; then
  log "the imaging venv of the mixed scenario (pip, once)"
  in_root .venv/bin/python -c \
    'from pathlib import Path; from tests.support import venvs; venvs.imaging_venv(Path(".venv-imaging"))' >&2 ||
    log "no imaging venv: the mixed scenario will run without it"
fi

list=$root$copy/build/bundle-files.list
mkdir -p "$(dirname "$list")"
in_root .venv/bin/python scripts/bundle-files.py "$copy/build/bundle-files.list" >&2

# A staging copy of the chosen files, so that the dynamic loader's cache can be made
# for exactly these libraries, then packed.
staging=$(mktemp -d)
trap 'rm -rf --one-file-system "$staging"' EXIT
pack() {
  local skip=$1
  rm -rf --one-file-system "$staging" && mkdir -p "$staging"
  grep -v -E "${skip:-^$}" "$list" | sed 's|^/||' |
    tar -C "$root" --no-recursion -T - -cf - | tar -xf - -C "$staging"
  chroot "$staging" /usr/sbin/ldconfig
  rm -f "$dir/root.tar.gz"
  tar -C "$staging" --numeric-owner -cf - . | gzip -9 > "$dir/root.tar.gz"
}
size_mib() { du -m "$dir/root.tar.gz" | cut -f1; }
if [ "${OPM_BUNDLE_IMAGING:-0}" = 1 ]; then pack ""; else pack "/\.venv-imaging/"; fi
if [ "$(size_mib)" -ge "$limit_mib" ] && grep -q "/\.venv-imaging/" "$list" &&
  [ "${OPM_BUNDLE_IMAGING:-0}" = 1 ]; then
  log "$(size_mib) MiB with the imaging venv: packed again without it"
  pack "/\.venv-imaging/"
fi

cp scripts/bundle-run.sh "$dir/run.sh"
chmod +x "$dir/run.sh"
environment=forky-bundle
cat > "$dir/bundle.env" <<EOF
# Written by scripts/bench-bundle.sh $(date -u +%Y-%m-%dT%H:%MZ) from $(git rev-parse --short HEAD)
BUNDLE_COPY=$copy
BUNDLE_ENVIRONMENT=$environment
EOF
total=$(du -cm "$dir/root.tar.gz" "$dir/run.sh" "$dir/bundle.env" | tail -1 | cut -f1)
unpacked=$(du -sm "$staging" | cut -f1)
log "$dir: $(du -h "$dir/root.tar.gz" | cut -f1) packed ($unpacked MiB unpacked), $(wc -l < "$list") paths"
if [ "$total" -ge "$limit_mib" ]; then
  log "the bundle is $total MiB, over the $limit_mib MiB limit"
  exit 1
fi
log "ready: $dir/run.sh OUT [perf/bench.py options]"
