#!/usr/bin/env bash
# Builds (once) and prints the path of a Debian root of the given release, outside
# the checkout and reused between runs; rebuilt when missing or incomplete. Needs
# root (debootstrap, chroot).
#
#   forky   Orthanc 1.13, Debian's CPython 3.14, the existing Python plugin 7.1,
#           DCMTK, PostgreSQL and build tools: the second test environment of
#           scripts/test.sh (scripts/forky-root.sh, scripts/in-forky.sh).
#   trixie  Debian 13: Orthanc 1.12, CPython 3.13, the existing plugin 5.0 and the
#           build tools only: where tests/package builds and installs the Debian
#           package (scripts/package-deb.sh).
#
#   scripts/debian-root.sh RELEASE        build if needed, print the root's path
#   OPM_<RELEASE>_ROOT=DIR ...            another place for it (OPM_FORKY_ROOT=...)
set -euo pipefail

release=${1:?usage: debian-root.sh RELEASE (forky, trixie)}
variable=OPM_${release^^}_ROOT
root=${!variable:-/var/cache/orthanc-python-multi/$release}
stamp="$root/.opm-$release-ready"

# What each release holds; bump its recipe when its list changes, so that cached
# roots are completed.
build_tools=(python3 python3-dev python3-venv libpython3-dev libjsoncpp-dev g++ make curl
  ca-certificates procps git dpkg-dev lintian)
case $release in
  forky)
    recipe=3
    packages=(orthanc orthanc-dev orthanc-python orthanc-postgresql postgresql dcmtk wrk
      "${build_tools[@]}")
    ;;
  trixie)
    recipe=1
    packages=(orthanc orthanc-dev orthanc-python "${build_tools[@]}")
    ;;
  *) echo "debian-root: unknown release $release (forky, trixie)" >&2; exit 2 ;;
esac

log() { echo "$release-root: $*" >&2; }

# A root made by a newer recipe (another checkout) is complete for this one too.
if [ -f "$stamp" ] && [ "$(cat "$stamp")" -ge "$recipe" ] 2>/dev/null; then
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

# Check-Valid-Until: the index of a testing release on a snapshot mirror has expired.
apt_in_root=(chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get
  -o Acquire::Check-Valid-Until=false -q -y)

if [ ! -x "$root/usr/bin/apt-get" ] || [ ! -f "$root/etc/os-release" ]; then
  log "bootstrapping Debian $release into $root from $mirror (a few minutes)"
  rm -rf "$root"
  mkdir -p "$root"
  # bookworm's debootstrap has no forky script; sid's works for it.
  script=/usr/share/debootstrap/scripts/$release
  [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
  debootstrap --variant=minbase "$release" "$root" "$mirror" "$script" >&2
fi

log "installing packages in the $release root"
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
