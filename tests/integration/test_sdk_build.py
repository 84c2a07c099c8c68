"""The plugin built against another Orthanc SDK than the running Orthanc's.

`OPM_BUILD_SDK` names a folder holding orthanc/OrthancCPlugin.h (scripts/test.sh
passes Debian 13's, SDK 1.12.6); without it, the installed header is used. On an
Orthanc older than that SDK the plugin must refuse to start with one clear line;
on a newer one it must load and serve.
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


def test_plugin_built_against_another_sdk(tmp_path: Path) -> None:
    include_dir = Path(os.environ.get("OPM_BUILD_SDK", "/usr/include"))
    sdk = _header_version(include_dir)
    build = tmp_path / "build"
    bin_dir = Path(sys.executable).parent  # cmake and ninja of the test environment
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    configure = [
        "cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja",
        "-DCMAKE_BUILD_TYPE=Release", f"-DPython3_EXECUTABLE={sys.executable}",
        f"-DORTHANC_SDK_INCLUDE_DIR={include_dir}",
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
