#!/usr/bin/env bash
# Runs a command on a copy of this checkout inside the Debian forky root of
# scripts/forky-root.sh (Orthanc 1.13, CPython 3.14, the existing plugin 7.1):
# scripts/in-root.sh forky.
#
#   scripts/in-forky.sh bash scripts/test-here.sh -q
#   OPM_SDK_HEADERS=/usr/include scripts/in-forky.sh ...   (SDK headers to test there too)
#   OPM_FORKY_COPY=/opt/other scripts/in-forky.sh ...      (another copy in the root)
exec bash "$(dirname "$0")/in-root.sh" forky "$@"
