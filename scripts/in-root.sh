#!/usr/bin/env bash
# Runs a command on a copy of this checkout inside the Debian root of the given
# release (scripts/debian-root.sh: forky, trixie), with /proc, /sys and /dev mounted
# for the command's duration only, in a mount namespace of its own.
#
#   scripts/in-root.sh trixie bash scripts/package-deb.sh
#   scripts/in-forky.sh ...    the same as scripts/in-root.sh forky ...
#   OPM_SDK_HEADERS=/usr/include scripts/in-root.sh forky ...   (SDK headers to test there too)
#
# The copy lives at /opt/opm-<checkout folder name> in the root (OPM_<RELEASE>_COPY,
# as OPM_FORKY_COPY, names another path inside the root); its ignored folders
# (.venv, build/) are kept between runs, so rebuilds are incremental.
set -euo pipefail
release=${1:?usage: in-root.sh RELEASE COMMAND...}
shift
checkout=$(cd "$(dirname "$0")/.." && pwd)
root=$(bash "$checkout/scripts/debian-root.sh" "$release")
# One copy per checkout, so that two checkouts (worktrees) never share a build.
variable=OPM_${release^^}_COPY
copy=${!variable:-/opt/opm-$(basename "$checkout")}

# The tracked and untracked-but-not-ignored files, as they are in the work tree.
# What an earlier run copied goes first, so that a file deleted or renamed in
# the checkout does not live on in the copy (and get collected by pytest or
# ruff there); only the build outputs stay.
mkdir -p "$root$copy"
(cd "$root$copy" && find . -mindepth 1 \( -path ./build -o -path './.venv*' -o -path ./perf/results \) \
  -prune -o ! -type d -print0 | xargs -0 -r rm -f)
(cd "$checkout" && git ls-files -z --cached --others --exclude-standard |
  xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
  tar --null -T - -cf -) | tar -xf - -C "$root$copy"

# OPM_SDK_HEADERS (folders holding orthanc/OrthancCPlugin.h, ':'-separated) are
# copied into the root and passed on with their paths there.
inner_headers=()
index=0
IFS=: read -r -a outer_headers <<< "${OPM_SDK_HEADERS:-}"
for folder in "${outer_headers[@]}"; do
  [ -n "$folder" ] || continue
  index=$((index + 1))
  rm -rf "$root/opt/sdk-headers/$index"
  mkdir -p "$root/opt/sdk-headers/$index"
  cp -r "$folder/orthanc" "$root/opt/sdk-headers/$index/"
  inner_headers+=("/opt/sdk-headers/$index")
done
inner_list=$(IFS=:; echo "${inner_headers[*]}")

cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

# /proc, /sys and /dev are mounted in a private mount namespace: they live and die
# with this command, and another run at the same time keeps its own.
exec unshare --mount --propagation private bash -c '
  set -e
  root=$1 copy=$2 headers=$3 release=$4
  shift 4
  for fs in proc sys dev; do mount --rbind "/$fs" "$root/$fs"; done
  # A clean environment: the Python and pip settings of this machine are not the root ones.
  exec chroot "$root" env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 CI="${CI:-}" PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    OPM_ENVIRONMENT="$release" OPM_SDK_HEADERS="$headers" OPM_TEST_PORTS="${OPM_TEST_PORTS:-}" \
    bash -c '"'"'cd "$0" && exec "$@"'"'"' "$copy" "$@"
' "in-$release" "$root" "$copy" "$inner_list" "$release" "$@"
