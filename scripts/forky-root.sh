#!/usr/bin/env bash
# Builds (once) and prints the path of the Debian forky root (Orthanc 1.13, Debian's
# CPython 3.14, the existing Python plugin 7.1, DCMTK, PostgreSQL and build tools):
# scripts/debian-root.sh forky. Needs root.
#
#   scripts/forky-root.sh          build if needed, print the root's path
#   OPM_FORKY_ROOT=DIR ...         another place for it
exec bash "$(dirname "$0")/debian-root.sh" forky
