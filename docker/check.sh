#!/usr/bin/env bash
# Checks an installed plugin the way the Docker image's build stage does: the
# plugin file exists, Orthanc loads it with 2 interpreters, and the sample script
# answers on loopback. PREFIX holds bin/orthanc-python-multi and bin/python3: /usr
# for the Debian package, or a virtual environment. Also run by
# tests/package/test_docker_recipe.py and tests/integration/test_docker.py.
# Usage: docker/check.sh PREFIX SAMPLE_SCRIPT
set -euo pipefail
prefix=$1
sample=$2
plugin=$("$prefix/bin/orthanc-python-multi" plugin-path)
test -f "$plugin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Free loopback ports, chosen as the tests choose theirs (tests/support/process.py).
checkout=$(cd "$(dirname "$0")/.." && pwd)
port=$(PYTHONPATH="$checkout" "$prefix/bin/python3" -c "from tests.support.process import free_ports; print(' '.join(map(str, free_ports(2))))")
http_port=${port% *}
dicom_port=${port#* }
"$prefix/bin/orthanc-python-multi" run "$sample" --interpreters 2 --http-port "$http_port" \
  --dicom-port "$dicom_port" --storage "$work/storage" > "$work/orthanc.log" 2>&1 &
runner=$!
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$http_port/toto" > "$work/answer" 2>/dev/null; then break; fi
  sleep 0.2
done
kill -TERM "$runner"
wait "$runner"
grep -qx ok "$work/answer"
echo "check: the plugin answers with 2 interpreters"
