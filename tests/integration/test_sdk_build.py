"""The plugin built against another Orthanc SDK than the running Orthanc's.

It builds against the first header of `OPM_SDK_HEADERS` (folders holding
orthanc/OrthancCPlugin.h, ':'-separated, as for tests/generator) whose SDK version
is not the installed one: scripts/test.sh gives Debian 13's (SDK 1.12.6) and
forky's (1.13.0) to Debian 12's Orthanc 1.10.1, where the plugin must refuse to
start with one clear line, and Debian 12's (1.10.1) to forky's Orthanc 1.13.0,
where it must load and serve. Without another header it builds against the
installed one, which must load and serve.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.process import make_orthanc

from .orthanc_server import OrthancServer

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = Path("/usr/include")
SCRIPT = """
import orthanc

def Hello(output, uri, **request):
    output.AnswerBuffer('hello', 'text/plain')

orthanc.RegisterRestCallback('/hello', Hello)
"""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _header_version(include_dir: Path) -> str:
    header = (include_dir / "orthanc" / "OrthancCPlugin.h").read_text(errors="replace")
    numbers = [
        re.search(rf"#define\s+ORTHANC_PLUGINS_MINIMAL_{part}_NUMBER\s+(\d+)", header)
        for part in ("MAJOR", "MINOR", "REVISION")
    ]
    assert all(numbers), f"no SDK version in {include_dir}"
    return ".".join(match.group(1) for match in numbers if match)


def _running_orthanc_version() -> str:
    out = subprocess.run(["Orthanc", "--version"], capture_output=True, text=True).stdout
    match = re.match(r"Orthanc (\d+\.\d+\.\d+)", out)
    assert match, out
    return match.group(1)


def _include_dir() -> Path:
    """The first folder of OPM_SDK_HEADERS whose SDK is not the installed one."""
    installed = _header_version(INSTALLED)
    for folder in os.environ.get("OPM_SDK_HEADERS", "").split(":"):
        if folder and _header_version(Path(folder)) != installed:
            return Path(folder)
    return INSTALLED


def test_plugin_built_against_another_sdk(tmp_path: Path) -> None:
    include_dir = _include_dir()
    sdk = _header_version(include_dir)
    build = tmp_path / "build"
    bin_dir = Path(sys.executable).parent  # cmake and ninja of the test environment
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    # What is under test is the SDK version check, not the code generation: one
    # translation unit (a unity build) without optimisation builds in about a quarter
    # of the time of the Release build of scripts/setup.sh (58 s against 280 s here).
    configure = [
        "cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja",
        "-DCMAKE_BUILD_TYPE=", "-DCMAKE_UNITY_BUILD=ON", "-DCMAKE_UNITY_BUILD_BATCH_SIZE=0",
        f"-DPython3_EXECUTABLE={sys.executable}", f"-DORTHANC_SDK_INCLUDE_DIR={include_dir}",
    ]  # fmt: skip
    for command in (configure, ["cmake", "--build", str(build), "-j2"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    # The generator's coverage line, for whichever header it read.
    assert re.search(r"wrapped \d+ / \d+ SDK functions", result.stdout), result.stdout[-4000:]
    plugin = build / "libOrthancPythonMulti.so"

    server = OrthancServer(make_orthanc(tmp_path / "orthanc", SCRIPT, plugin=plugin))
    running = _running_orthanc_version()
    if _version(running) < _version(sdk):
        server.start(wait=False)
        code = server.wait_exit()
        log = server.log()
        assert code != 0, log
        assert (
            f"Python: this Orthanc ({running}) is older than the Orthanc SDK {sdk} "
            "the plugin was built with: the plugin does not start" in log
        ), log
        assert "Fatal Python error" not in log
        return
    server.start()
    try:
        answer = requests.get(server.url + "/hello", timeout=30)
        assert (answer.status_code, answer.text) == (200, "hello")
        assert f"version of the Orthanc SDK in use by the Python plugin: {sdk}" in server.log()
    finally:
        assert server.stop() == 0, server.log()
