#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh), then runs Orthanc in the foreground with
# this plugin and examples/sample.py on one interpreter per core (SQLite index and
# files under ./orthanc-storage). HTTP on 127.0.0.1:8042 and DICOM on 4242; when one
# of them is taken (Debian's orthanc.service takes both once the orthanc package is
# installed), free ports instead, printed before Orthanc starts. Ctrl-C stops it.
# Extra arguments go to `orthanc-python-multi run` (--http-port P, --dicom-port P...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

ports=()
if [[ " $* " != *" --http-port"* && " $* " != *" --dicom-port"* ]]; then
  read -r http dicom < <(.venv/bin/python - <<'PY'
import socket

def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

def two_free_ports():
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        return a.getsockname()[1], b.getsockname()[1]

wanted = (8042, 4242)
print(*(wanted if all(free(p) for p in wanted) else two_free_ports()))
PY
  )
  if [ "$http" != 8042 ]; then
    echo "run-sample: port 8042 or 4242 is taken (Debian's orthanc.service?" \
      "'sudo systemctl disable --now orthanc' frees them); using free ports instead"
  fi
  ports=(--http-port "$http" --dicom-port "$dicom")
  echo "run-sample: the sample will answer on http://127.0.0.1:$http/python/where" \
    "(DICOM port $dicom); Ctrl-C stops it"
fi
exec .venv/bin/orthanc-python-multi run examples/sample.py --interpreters auto "${ports[@]}" "$@"
