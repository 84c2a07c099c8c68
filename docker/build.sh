#!/usr/bin/env bash
# The build step of the Docker image (docker/Dockerfile runs this in its build
# stage): the Debian package of scripts/package-deb.sh, written to SOURCE/dist/.
# Usage: docker/build.sh SOURCE_FOLDER
set -euo pipefail
source_folder=$1
export DEBIAN_FRONTEND=noninteractive
# Check-Valid-Until: a snapshot mirror of a testing release serves an expired index.
apt-get -q -o Acquire::Check-Valid-Until=false update
# It installs its own build dependencies.
bash "$source_folder/scripts/package-deb.sh"
