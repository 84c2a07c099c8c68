"""Fixtures that start real Orthanc servers with this plugin."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orthanc_python_multi.server import merge
from tests.support import venvs

from .orthanc_server import OrthancServer, make_server

StartOrthanc = Callable[..., OrthancServer]


@pytest.fixture(params=[1, 2], ids=str)
def interpreters(request: pytest.FixtureRequest) -> int:
    """The interpreter count of a test that runs twice: 1 (the main interpreter, as the
    existing plugin runs scripts) and 2 (two sub-interpreters). A test that needs other
    counts parametrizes `interpreters` itself, which replaces this fixture."""
    return int(request.param)


@pytest.fixture(scope="session")
def imaging_venv() -> Path:
    """A virtual environment of this Python holding pydicom, numpy and Pillow, as in
    an imaging deployment (given to the plugin with PythonVirtualEnv). Made once and
    kept in .venv-imaging: numpy and Pillow must not go into the test .venv."""
    return venvs.imaging_venv(Path(__file__).resolve().parents[2] / ".venv-imaging")


@pytest.fixture
def orthanc(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StartOrthanc]:
    """start(script, interpreters=1, extra=None, wait=True, start=True, verbose=True)
    -> an OrthancServer (verbose: Orthanc's --verbose, information lines logged).

    At teardown each server still running is stopped with SIGTERM; the test fails
    unless it exits with code 0 and its log has no "Fatal Python error". The log
    is printed when the test failed.

    Orthanc's DICOM server runs only for tests marked `dicom`: nothing else talks
    DICOM, and it takes a second of every stop (3.5 s against 2.5 s, measured).
    """
    servers: list[OrthancServer] = []
    dicom = {"DicomServerEnabled": request.node.get_closest_marker("dicom") is not None}

    def start(
        script: str,
        *,
        interpreters: int | str = 1,
        extra: dict[str, Any] | None = None,
        wait: bool = True,
        start: bool = True,
        verbose: bool = True,
    ) -> OrthancServer:
        server = make_server(
            tmp_path / f"orthanc{len(servers)}",
            textwrap.dedent(script),
            interpreters=interpreters,
            extra=merge(dicom, extra or {}),
            verbose=verbose,
        )
        servers.append(server)
        if start:
            server.start(wait=wait)
        else:
            server.return_code = 0  # not started: nothing to check at teardown
        return server

    yield start

    problems = []
    for server in servers:
        if server.process is None:
            continue
        expected_to_run = server.return_code is None
        try:
            code = server.stop()
        except RuntimeError as error:  # it hung and was killed
            problems.append(f"{server.folder.name}: {error}")
            continue
        if expected_to_run and code != 0:
            problems.append(f"{server.folder.name} exited with {code}")
        if "Fatal Python error" in server.log():
            problems.append(f"{server.folder.name} logged a Fatal Python error")
    failed = getattr(request.node, "report_call", None)
    if problems or (failed is not None and failed.failed):
        for server in servers:
            print(f"===== Orthanc log of {server.folder.name} =====\n{server.log()}")
    assert not problems, "; ".join(problems)
