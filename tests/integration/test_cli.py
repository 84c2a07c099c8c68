"""The orthanc-python-multi command (orthanc/orthanc_python_multi/cli.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.process import free_ports

COMMAND = [sys.executable, "-m", "orthanc_python_multi"]


@pytest.mark.smoke
def test_plugin_path_prints_the_installed_library() -> None:
    result = subprocess.run([*COMMAND, "plugin-path"], capture_output=True, text=True, check=True)
    path = Path(result.stdout.strip())
    assert path.is_absolute()
    assert path.name == "libOrthancPythonMulti.so"
    assert path.is_file()


@pytest.mark.smoke
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_run_serves_the_script_and_stops_cleanly(tmp_path: Path, signum: int) -> None:
    script = tmp_path / "hello.py"
    script.write_text(
        "import orthanc\n"
        "def Hello(output, uri, **request):\n"
        "    output.AnswerBuffer('hello %d' % orthanc.GetInterpreterCount(), 'text/plain')\n"
        "orthanc.RegisterRestCallback('/hello', Hello)\n"
    )
    port, dicom_port = free_ports(2)
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        [
            *COMMAND,
            "run",
            str(script),
            "--interpreters",
            "2",
            "--http-port",
            str(port),
            "--dicom-port",
            str(dicom_port),
            "--storage",
            str(tmp_path / "storage"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/hello", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert answer is not None and answer.text == "hello 2"
        process.send_signal(signum)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    assert (tmp_path / "storage" / "index").exists()


def test_run_rejects_a_missing_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [*COMMAND, "run", str(tmp_path / "nope.py")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "no such script" in result.stderr


def test_run_merges_config_and_is_verbose_on_request(tmp_path: Path) -> None:
    script = tmp_path / "config.py"
    script.write_text(
        "import json\n"
        "import orthanc\n"
        "orthanc.LogInfo('an information line')\n"
        "def Config(output, uri, **request):\n"
        "    config = json.loads(orthanc.GetConfiguration())\n"
        "    output.AnswerBuffer(json.dumps([config['Name'], config['Extra']]), 'text/plain')\n"
        "orthanc.RegisterRestCallback('/config', Config)\n"
    )
    extra = tmp_path / "extra.json"
    extra.write_text('{"Name": "FROM-EXTRA", "Extra": {"Value": 7}}')
    for verbose in (True, False):
        port, dicom_port = free_ports(2)
        log_path = tmp_path / f"run-{verbose}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    *COMMAND,
                    "run",
                    str(script),
                    "--http-port",
                    str(port),
                    "--dicom-port",
                    str(dicom_port),
                    "--storage",
                    str(tmp_path / "storage"),
                    "--config",
                    str(extra),
                    *(["--verbose"] if verbose else []),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 60
                answer = None
                while answer is None and time.monotonic() < deadline and process.poll() is None:
                    try:
                        answer = requests.get(f"http://127.0.0.1:{port}/config", timeout=2)
                    except requests.ConnectionError:
                        time.sleep(0.1)
                assert answer is not None and answer.json() == ["FROM-EXTRA", {"Value": 7}]
                process.send_signal(signal.SIGTERM)
                assert process.wait(60) == 0
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        assert ("an information line" in log_path.read_text()) == verbose
