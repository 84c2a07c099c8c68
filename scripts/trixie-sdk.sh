#!/usr/bin/env bash
# Prints a folder holding orthanc/OrthancCPlugin.h from Debian 13 (trixie)'s
# orthanc-dev (Orthanc 1.12.7), downloaded once with apt-get and unpacked with
# dpkg-deb, for building and testing against that SDK. Nothing is installed.
set -euo pipefail
cache=${OPM_CACHE:-/var/cache/orthanc-python-multi}/trixie-sdk
if [ ! -f "$cache/usr/include/orthanc/OrthancCPlugin.h" ]; then
  mirror=$(bash "$(dirname "$0")/debian-mirror.sh")
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/deb"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" \
    > "$work/sources.list"
  apt_options=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
    -o Acquire::Check-Valid-Until=false -o APT::Sandbox::User=root -q)
  apt-get "${apt_options[@]}" update >&2
  (cd "$work/deb" && apt-get "${apt_options[@]}" download orthanc-dev >&2)
  rm -rf "$cache"
  mkdir -p "$cache"
  dpkg-deb -x "$work"/deb/orthanc-dev_*.deb "$cache"
fi
echo "$cache/usr/include"
