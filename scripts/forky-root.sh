#!/usr/bin/env bash
# Builds (once) and prints the path of a Debian forky root: Orthanc 1.13, Debian's
# CPython 3.14, the existing Python plugin 7.1, DCMTK, PostgreSQL and build tools.
# The root lives outside the checkout and is reused between runs; it is rebuilt
# when missing or incomplete. Needs root (debootstrap, chroot).
#
#   scripts/forky-root.sh          build if needed, print the root's path
#   OPM_FORKY_ROOT=DIR ...         another place for it
set -euo pipefail

root=${OPM_FORKY_ROOT:-/var/cache/orthanc-python-multi/forky}
stamp="$root/.opm-forky-ready"
# Bump when the package list changes, so cached roots are completed.
recipe=2
packages=(orthanc orthanc-dev orthanc-python orthanc-postgresql postgresql dcmtk wrk
  python3 python3-dev python3-venv libpython3-dev libjsoncpp-dev g++ make curl
  ca-certificates procps git)

log() { echo "forky-root: $*" >&2; }

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$recipe" ]; then
  echo "$root"
  exit 0
fi

# The Debian mirror this machine already uses.
mirror=$(bash "$(dirname "$0")/debian-mirror.sh")

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
fi

apt_in_root=(chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get
  -o Acquire::Check-Valid-Until=false -q -y)

if [ ! -x "$root/usr/bin/apt-get" ] || [ ! -f "$root/etc/os-release" ]; then
  log "bootstrapping Debian forky into $root from $mirror (a few minutes)"
  rm -rf "$root"
  mkdir -p "$root"
  # bookworm's debootstrap has no forky script; sid's works for it.
  debootstrap --variant=minbase forky "$root" "$mirror" /usr/share/debootstrap/scripts/sid >&2
fi

log "installing packages in the forky root"
# Maintainer scripts (systemd-tmpfiles) need /proc, /sys and /dev.
mounted=()
unmount_all() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}" || umount -l "${mounted[i]}"; done
}
trap unmount_all EXIT
for fs in proc sys dev; do
  if ! mountpoint -q "$root/$fs"; then
    mount --bind "/$fs" "$root/$fs"
    mounted+=("$root/$fs")
  fi
done
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# Services must not start inside the root while packages are installed.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
"${apt_in_root[@]}" update >&2
chroot "$root" env DEBIAN_FRONTEND=noninteractive dpkg --configure -a >&2
"${apt_in_root[@]}" install --no-install-recommends "${packages[@]}" >&2
# pip in the root must trust what this machine trusts (installing ca-certificates
# above regenerated the root's own bundle).
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf"
echo "$recipe" > "$stamp"
log "ready"
echo "$root"
