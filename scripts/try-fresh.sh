#!/usr/bin/env bash
# The README's first command as a new user runs it, on a pristine Debian: bootstraps
# RELEASE (bookworm, trixie) with debootstrap --variant=minbase into a throwaway
# folder under /var/tmp, copies this checkout in (tracked and untracked-but-not-
# ignored files, as scripts/in-forky.sh does), runs ./scripts/run-sample.sh there as
# root, and measures the time until the sample answers on loopback
# (http://127.0.0.1:PORT/python/where, PORT as run-sample.sh prints it). Then it
# stops the sample (SIGTERM), and unmounts and deletes the root.
#
#   sudo scripts/try-fresh.sh bookworm      Debian 12: CPython 3.13 built from source
#   sudo scripts/try-fresh.sh trixie        Debian 13: Debian's python3 (3.13)
#
# Needs root, the Debian archive and PyPI. Not part of CI: it takes tens of minutes
# (on Debian 12 most of it building CPython). Only what this machine's network needs
# is added to the root: /etc/resolv.conf, this machine's CA bundle for pip (as
# /etc/opm-host-ca.crt, named by /etc/pip.conf), and a policy-rc.d that keeps the
# orthanc package's service from starting inside the root (there is no init there).
# OPM_FRESH_KEEP=1 keeps the root (its path is printed) for a look inside.
set -euo pipefail
release=${1:?usage: scripts/try-fresh.sh bookworm|trixie}
checkout=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "try-fresh: needs root (debootstrap, chroot)" >&2; exit 2; }
timeout_s=${OPM_FRESH_TIMEOUT:-5400}

log() { echo "try-fresh: $(date -u +%H:%M:%S) $*" >&2; }
mirror=$(bash "$checkout/scripts/debian-mirror.sh")
root=$(mktemp -d "/var/tmp/opm-fresh-$release.XXXXXX")
out="$root.log"
sample_pid=
cleanup() {
  if [ -n "$sample_pid" ] && kill -0 "$sample_pid" 2>/dev/null; then
    # Its own process group (setsid): set-up's children (apt, make, pip) stop too.
    kill -TERM -- "-$sample_pid" 2>/dev/null || true
    wait "$sample_pid" 2>/dev/null || true
  fi
  # The mounts lived in the sample's mount namespace only; refuse to delete
  # anything that is still mounted all the same.
  if findmnt -rn -o TARGET | grep -q "^$root/"; then
    log "something is still mounted under $root: left in place"
  elif [ "${OPM_FRESH_KEEP:-0}" = 1 ]; then
    log "kept: $root"
  else
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT

started=$SECONDS
log "debootstrap --variant=minbase $release into $root from $mirror"
script=/usr/share/debootstrap/scripts/$release
[ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
debootstrap --variant=minbase "$release" "$root" "$mirror" "$script" > "$root.debootstrap.log" 2>&1 || {
  tail -n 20 "$root.debootstrap.log" >&2
  exit 1
}
rm -f "$root.debootstrap.log"
bootstrap_s=$((SECONDS - started))
log "bootstrapped in $bootstrap_s s"

cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/opm-host-ca.crt"
printf '[global]\ncert = /etc/opm-host-ca.crt\n' > "$root/etc/pip.conf"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"

copy=/root/orthanc-python-multi
mkdir -p "$root$copy"
(cd "$checkout" && git ls-files -z --cached --others --exclude-standard |
  xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
  tar --null -T - -cf -) | tar -xf - -C "$root$copy"

log "running ./scripts/run-sample.sh in the $release root (its output: $out)"
sample_started=$SECONDS
setsid unshare --mount --propagation private bash -c '
  set -e
  root=$1 copy=$2
  for fs in proc sys dev; do mount --rbind "/$fs" "$root/$fs"; done
  exec chroot "$root" env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM=dumb bash -c "cd $copy && exec ./scripts/run-sample.sh"
' try-fresh "$root" "$copy" > "$out" 2>&1 < /dev/null &
sample_pid=$!

url=
last_report=$SECONDS
while :; do
  if ! kill -0 "$sample_pid" 2>/dev/null; then
    tail -n 40 "$out" >&2
    log "run-sample.sh ended before the sample answered"
    exit 1
  fi
  if [ $((SECONDS - sample_started)) -gt "$timeout_s" ]; then
    tail -n 40 "$out" >&2
    log "no answer after $timeout_s s"
    exit 1
  fi
  if [ -z "$url" ]; then
    url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/python/where' "$out" | head -n 1 || true)
  fi
  if [ -n "$url" ] && answer=$(curl -fsS --max-time 5 "$url" 2>/dev/null); then
    break
  fi
  if [ $((SECONDS - last_report)) -ge 60 ]; then
    last_report=$SECONDS
    log "$((SECONDS - sample_started)) s; last: $(grep -v '^ *$' "$out" | tail -n 1 | cut -c 1-100)"
  fi
  sleep 2
done
serve_s=$((SECONDS - sample_started))
log "the sample answered $answer"
grep -E '^(setup|build-python|run-sample):' "$out" | grep -E 'took|built|done in|answer' >&2 || true
log "$release: bootstrap $bootstrap_s s; ./scripts/run-sample.sh to a served request: $serve_s s" \
  "($((serve_s / 60)) min $((serve_s % 60)) s)"

kill -TERM "$sample_pid"
code=0
wait "$sample_pid" || code=$?
sample_pid=
log "the sample stopped with exit code $code"
[ "$code" = 0 ]
