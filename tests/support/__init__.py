"""Helpers of the tests that perf/bench.py and docker/check.sh use too: an Orthanc
process on free loopback ports (process.py) and the imaging virtual environment
(venvs.py). Not part of the installed package."""
