"""Scripts that start daemon threads, and imports that cannot load in a
sub-interpreter (src/interpreter_pool.cpp, src/plugin.cpp, src/bootstrap.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orthanc_python_multi.process import free_ports

from .conftest import StartOrthanc
from .dicom_files import make_dicom
from .orthanc_server import OrthancServer
from .test_callbacks import wait_for_log

IMAGING_PACKAGES = ["numpy", "Pillow", "pydicom"]


@pytest.fixture(scope="session")
def imaging_venv() -> Path:
    """A virtual environment of this Python holding pydicom, numpy and Pillow, as in
    an imaging deployment (given to the plugin with PythonVirtualEnv). Made once and
    kept in .venv-imaging: numpy and Pillow must not go into the test .venv."""
    root = Path(__file__).resolve().parents[2] / ".venv-imaging"
    done = root / "opm-installed"
    wanted = " ".join(IMAGING_PACKAGES) + " " + sys.version
    if not done.exists() or done.read_text() != wanted:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
        subprocess.run(
            [str(root / "bin" / "python"), "-m", "pip", "install", "-q", *IMAGING_PACKAGES],
            check=True,
            timeout=900,
        )
        done.write_text(wanted)
    return root


def served_by(server: OrthancServer, path: str, count: int = 20) -> dict[str, int]:
    """GETs `path` `count` times; how many answers each interpreter gave (the
    route answers "<interpreter index> <text>")."""
    seen: dict[str, int] = {}
    for _ in range(count):
        response = server.get(path)
        assert response.status_code == 200, response.text
        index = response.text.split(" ", 1)[0]
        seen[index] = seen.get(index, 0) + 1
    return seen


# pynetdicom's non-blocking SCP (the Orthanc Book's sample that replaces Orthanc's
# DICOM server) runs its server and each association in daemon threads.
PYNETDICOM_SCP = """
import orthanc
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

PORT = %d
STOP_ON_ORTHANC_STOPPED = %s
servers = []

def OnEcho(event):
    orthanc.LogWarning('C-ECHO served by interpreter %%d' %% orthanc.GetInterpreterIndex())
    return 0x0000

if orthanc.GetInterpreterIndex() == 0:
    ae = AE(ae_title='PYSCP')
    ae.add_supported_context(Verification)
    servers.append(ae.start_server(('127.0.0.1', PORT), block=False,
                                   evt_handlers=[(evt.EVT_C_ECHO, OnEcho)]))

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STOPPED and STOP_ON_ORTHANC_STOPPED:
        for server in servers:
            server.shutdown()

orthanc.RegisterOnChangeCallback(OnChange)
"""


def echo(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["echoscu", "-v", "-aec", "PYSCP", "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("stop_it", [True, False], ids=["shut-down", "left-running"])
def test_pynetdicom_scp_in_a_sub_interpreter(orthanc: StartOrthanc, stop_it: bool) -> None:
    (port,) = free_ports(1)
    server = orthanc(PYNETDICOM_SCP % (port, stop_it), interpreters=2)
    result = echo(port)
    assert result.returncode == 0, result.stdout + result.stderr
    assert wait_for_log(server, "C-ECHO served by interpreter 0")
    time.sleep(1)  # ORTHANC_STARTED is delivered before Orthanc handles SIGTERM
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 30
    log = server.log()
    assert "daemon threads are disabled" not in log
    assert "Fatal Python error" not in log
    if stop_it:
        assert "still run" not in log
    else:
        lines = [line for line in log.splitlines() if "daemon threads of interpreter 0" in line]
        assert len(lines) == 1, log
        assert "left running" in lines[0]


# A script whose only import is pydicom, in an environment that also holds numpy
# and Pillow: pydicom probes Pillow at import (its Pillow decoder).
PYDICOM_ONLY = """
import io
import orthanc
import pydicom

def Parse(output, uri, **request):
    dataset = pydicom.dcmread(io.BytesIO(request['body']))
    output.AnswerBuffer('%d %s' % (orthanc.GetInterpreterIndex(), dataset.PatientName),
                       'text/plain')

def Probe(output, uri, **request):
    try:
        import PIL.Image  # noqa: F401
        pillow = 'loads'
    except ImportError as error:
        pillow = type(error).__name__
    output.AnswerBuffer('%d %s' % (orthanc.GetInterpreterIndex(), pillow), 'text/plain')

orthanc.RegisterRestCallback('/parse', Parse)
orthanc.RegisterRestCallback('/probe', Probe)
"""


def test_pydicom_with_numpy_and_pillow_installed_runs_in_sub_interpreters(
    orthanc: StartOrthanc, imaging_venv: Path
) -> None:
    server = orthanc(PYDICOM_ONLY, interpreters=2, extra={"PythonVirtualEnv": str(imaging_venv)})
    dicom = make_dicom(patient_name="IMAGING^USER")
    seen: set[str] = set()
    for _ in range(20):
        response = server.post("/parse", data=dicom)
        assert response.status_code == 200, response.text
        index, name = response.text.split(" ", 1)
        assert name == "IMAGING^USER"
        seen.add(index)
    assert seen == {"0", "1"}
    # In a sub-interpreter Pillow looks absent, as if it were not installed.
    assert set(served_by(server, "/probe")) == {"0", "1"}
    assert server.get("/probe").text.split(" ", 1)[1] == "SubinterpreterImportError"
    status = server.get("/python/interpreters").json()
    assert status["MainInterpreter"] is False
    assert "cannot load in a sub-interpreter" not in server.log()


# numpy's and Pillow's extension modules refuse sub-interpreters.
IMPORTS_AT_THE_TOP = """
import orthanc
%s

def Route(output, uri, **request):
    output.AnswerBuffer('%%d %%s' %% (orthanc.GetInterpreterIndex(), %s), 'text/plain')

orthanc.RegisterRestCallback('/compute', Route)
"""

NEEDS_MAIN = {
    "numpy": ("import numpy", "int(numpy.arange(10).sum())", "45"),
    "PIL": ("from PIL import Image", "Image.new('L', (3, 2)).size", "(3, 2)"),
}


@pytest.mark.parametrize("interpreters", [2, "auto"])
@pytest.mark.parametrize("module", sorted(NEEDS_MAIN))
def test_script_importing_numpy_or_pillow_falls_back_to_the_main_interpreter(
    orthanc: StartOrthanc, imaging_venv: Path, module: str, interpreters: int | str
) -> None:
    imports, expression, expected = NEEDS_MAIN[module]
    server = orthanc(
        IMPORTS_AT_THE_TOP % (imports, expression),
        interpreters=interpreters,
        extra={"PythonVirtualEnv": str(imaging_venv)},
    )
    for _ in range(5):
        response = server.get("/compute")
        assert response.status_code == 200, response.text
        assert response.text == "0 " + expected
    status = server.get("/python/interpreters").json()
    assert status["MainInterpreter"] is True
    assert [entry["Index"] for entry in status["Interpreters"]] == [0]
    if interpreters == "auto" and len(os.sched_getaffinity(0)) == 1:
        return  # "auto" is 1 here: the main interpreter from the start
    warnings = [line for line in server.log().splitlines() if "cannot load in a sub-" in line]
    assert len(warnings) == 1, server.log()
    assert f"imports {module}," in warnings[0]
    assert "PythonMainScript" in warnings[0]


def test_script_failing_in_the_main_interpreter_too_still_stops_orthanc(
    orthanc: StartOrthanc, imaging_venv: Path
) -> None:
    script = "import numpy\nraise RuntimeError('broken after numpy')\n"
    server = orthanc(
        script, interpreters=2, extra={"PythonVirtualEnv": str(imaging_venv)}, wait=False
    )
    assert server.wait_exit() != 0
    log = server.log()
    assert "broken after numpy" in log
    assert "Orthanc does not start" in log


CAUGHT_IMPORT_ERROR = """
import orthanc
try:
    import numpy
except ImportError:
    numpy = None

def Route(output, uri, **request):
    output.AnswerBuffer('%d %s' % (orthanc.GetInterpreterIndex(), numpy is None), 'text/plain')

orthanc.RegisterRestCallback('/numpy', Route)
"""


def test_import_error_caught_by_the_script_keeps_the_sub_interpreters(
    orthanc: StartOrthanc, imaging_venv: Path
) -> None:
    server = orthanc(
        CAUGHT_IMPORT_ERROR, interpreters=2, extra={"PythonVirtualEnv": str(imaging_venv)}
    )
    assert set(served_by(server, "/numpy")) == {"0", "1"}
    assert server.get("/numpy").text.endswith(" True")
    assert server.get("/python/interpreters").json()["MainInterpreter"] is False
