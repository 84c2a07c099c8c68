#!/bin/sh
# run.sh of a benchmark bundle (scripts/bench-bundle.sh): runs perf/bench.py on this
# machine, as root, from the Debian forky root packed next to this file. Needs only
# what every Linux has: /bin/sh, tar and gzip, mount, chroot, and mktemp, env, cp, rm.
# No network: every server and load client stays on 127.0.0.1.
#
#   DIR/run.sh OUT [perf/bench.py options]      e.g. DIR/run.sh /tmp/results --quick
#
# The root is unpacked into a new folder under $OPM_BUNDLE_TMP (default /var/tmp; about
# 250 MiB), /proc, /sys and /dev are mounted in it in a mount namespace of this run's
# own (unshare; without it, in this one, unmounted at the end), bench.py runs there with
# the options given, and what it wrote under perf/results/ is copied to OUT (with its
# output, bench.log); the unpacked root is removed. The exit status is bench.py's.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

case "${1:-}" in
--in-namespace | --here)
  # Second stage, with the root unpacked at $2 and the results going to $3: in a
  # mount namespace of its own (--in-namespace), or in this one (--here).
  mode=$1 root=$2 out=$3
  shift 3
  . "$here/bundle.env"
  mounted=""
  unmount_all() {
    for m in $mounted; do umount "$m" || umount -l "$m" || true; done
  }
  trap unmount_all EXIT
  # Each added first, so that they are unmounted in the reverse order.
  mount -t proc proc "$root/proc" && mounted="$root/proc $mounted"
  mount -t sysfs sysfs "$root/sys" && mounted="$root/sys $mounted"
  mount --bind /dev "$root/dev" && mounted="$root/dev $mounted"
  if [ "$mode" = --in-namespace ]; then
    # A /dev/shm of this run's own (a namespace of its own: nothing reaches the host's).
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm" && mounted="$root/dev/shm $mounted"
  fi
  rm -f "$root/bench-status"
  env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 PYTHONUNBUFFERED=1 PIP_NO_INDEX=1 OPM_ENVIRONMENT="$BUNDLE_ENVIRONMENT" \
    chroot "$root" /bin/sh -c \
    'cd "$0" && { .venv/bin/python perf/bench.py "$@"; echo $? > /bench-status; }' \
    "$BUNDLE_COPY" "$@" 2>&1 | tee "$out/bench.log"
  # (a pipe's status is its last command's: bench.py's is in the file it wrote)
  status=$(cat "$root/bench-status" 2>/dev/null || echo 1)
  if [ -d "$root$BUNDLE_COPY/perf/results" ]; then
    cp -R "$root$BUNDLE_COPY/perf/results/." "$out/"
  fi
  exit "$status"
  ;;
esac

if [ $# -lt 1 ]; then
  echo "usage: $0 OUT [perf/bench.py options]" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "run.sh: needs root (mount, chroot)" >&2
  exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
shift

work=$(mktemp -d "${OPM_BUNDLE_TMP:-/var/tmp}/opm-bench-bundle.XXXXXX")
root="$work/root"
cleanup() {
  # Only when nothing is mounted under the root any more; never across file systems.
  if grep -q " $work/" /proc/mounts 2>/dev/null; then
    echo "run.sh: $work still has mounts; left in place" >&2
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT
mkdir "$root"
echo "run.sh: unpacking into $root" >&2
gzip -dc "$here/root.tar.gz" | tar -xf - -C "$root"
for folder in proc sys dev tmp var/tmp root; do mkdir -p "$root/$folder"; done
chmod 1777 "$root/tmp" "$root/var/tmp"

status=0
if command -v unshare >/dev/null 2>&1; then
  unshare --mount --propagation private /bin/sh "$here/run.sh" --in-namespace "$root" "$out" "$@" ||
    status=$?
else
  echo "run.sh: no unshare here: /proc, /sys and /dev are mounted in this mount namespace" >&2
  /bin/sh "$here/run.sh" --here "$root" "$out" "$@" || status=$?
fi
echo "run.sh: results in $out (exit status $status)" >&2
exit "$status"
