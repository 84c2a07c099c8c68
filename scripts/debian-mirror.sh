#!/usr/bin/env bash
# Prints the Debian mirror that this machine's apt sources use (deb822 or one-line).
set -euo pipefail
mirror=$( (cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true) |
  grep -oE '^(URIs:[[:space:]]*|deb[[:space:]]+)[^[:space:]]+/debian/?([[:space:]]|$)' |
  awk '{print $2}' | head -n 1 || true)
[ -n "$mirror" ] || { echo "debian-mirror: no Debian mirror in this machine's apt sources" >&2; exit 1; }
echo "$mirror"
