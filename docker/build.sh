#!/usr/bin/env bash
# The build steps of the Docker image (docker/Dockerfile runs this in its build
# stage): Debian packages, a virtual environment, the plugin built into it.
# Usage: docker/build.sh SOURCE_FOLDER PREFIX  (the environment goes to PREFIX)
set -euo pipefail
source_folder=$1
prefix=$2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  orthanc orthanc-dev libjsoncpp-dev g++ python3 python3-venv python3-dev libpython3-dev
python3 -m venv "$prefix"
"$prefix/bin/pip" install -q "scikit-build-core>=0.10" "pybind11>=3.1" "libclang>=16" cmake ninja
"$prefix/bin/pip" install -q --no-build-isolation "$source_folder"
