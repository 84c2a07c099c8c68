#!/usr/bin/env bash
# The build steps of the Docker image (docker/Dockerfile runs this in its build
# stage): Debian packages, a virtual environment, the plugin built into it.
# Usage: docker/build.sh SOURCE_FOLDER PREFIX  (the environment goes to PREFIX)
set -euo pipefail
source_folder=$1
prefix=$2
export DEBIAN_FRONTEND=noninteractive
# Check-Valid-Until: a snapshot mirror of a testing release serves an expired index.
apt_options=(-q -o Acquire::Check-Valid-Until=false)
apt-get "${apt_options[@]}" update
apt-get "${apt_options[@]}" install -y --no-install-recommends \
  orthanc orthanc-dev libjsoncpp-dev g++ python3 python3-venv python3-dev libpython3-dev curl
python3 -m venv "$prefix"
"$prefix/bin/pip" install -q "scikit-build-core>=0.10" "pybind11>=3.1" "libclang>=16" cmake ninja
"$prefix/bin/pip" install -q --no-build-isolation "$source_folder"
