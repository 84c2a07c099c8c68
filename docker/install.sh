#!/usr/bin/env bash
# The install step of the Docker image: the Debian package of docker/build.sh with
# apt-get (its dependencies: Orthanc, libpython, python3), curl, and any other
# Debian packages named.
# Usage: docker/install.sh PACKAGE.deb [DEBIAN_PACKAGE...]
set -euo pipefail
deb=$(realpath "$1")
shift
export DEBIAN_FRONTEND=noninteractive
apt_options=(-q -o Acquire::Check-Valid-Until=false)
apt-get "${apt_options[@]}" update
apt-get "${apt_options[@]}" install -y --no-install-recommends "$deb" curl "$@"
rm -rf /var/lib/apt/lists/*
