"""Scripts that start daemon threads, and imports that cannot load in a
sub-interpreter (src/interpreter_pool.cpp, src/plugin.cpp, src/bootstrap.py)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from tests.support.process import free_ports

from .conftest import StartOrthanc
from .dicom_files import make_dicom
from .helpers import upload, wait_for_log
from .orthanc_server import OrthancServer

pytestmark = pytest.mark.dicom


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
    log = server.log()
    assert "runs in the main interpreter alone" not in log
    # pydicom caught Pillow's refusal: each sub-interpreter says it runs without it.
    degraded = [line for line in log.splitlines() if "without these extension modules" in line]
    assert len(degraded) == 2, log
    assert all("PIL._imaging" in line for line in degraded)


# requests detects charsets with charset_normalizer when it can. charset_normalizer's
# compiled modules (mypyc) refuse sub-interpreters; they are compiled from the .py
# files next to them, which run instead.
REQUESTS_ONLY = """
import orthanc
import requests

def Charset(output, uri, **request):
    detector = requests.compat.chardet
    output.AnswerBuffer('%d %s' % (orthanc.GetInterpreterIndex(),
                                   detector.__name__ if detector else 'none'), 'text/plain')

orthanc.RegisterRestCallback('/charset', Charset)
"""


def test_extension_module_run_from_its_python_source_is_named_at_start_up(
    orthanc: StartOrthanc,
) -> None:
    server = orthanc(REQUESTS_ONLY, interpreters=2)
    assert set(served_by(server, "/charset")) == {"0", "1"}
    assert server.get("/charset").text.split(" ", 1)[1] == "charset_normalizer"
    log = server.log()
    assert "runs in the main interpreter alone" not in log
    lines = [line for line in log.splitlines() if "run from their Python source" in line]
    assert len(lines) == 2, log
    for index, line in enumerate(lines):
        assert f"sub-interpreter {index} loaded " in line
        assert "plugin_script.py" in line
        assert "cannot load in a sub-interpreter: charset_normalizer." in line
        assert "without these extension modules" not in line


def test_main_interpreter_loads_what_a_package_does_without_in_sub_interpreters(
    orthanc: StartOrthanc,
) -> None:
    server = orthanc(REQUESTS_ONLY, interpreters=1)
    assert server.get("/charset").text == "0 charset_normalizer"
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


def single_phase_package(folder: Path, files: dict[str, str]) -> Path:
    """A package `speedups` in `folder` holding a copy of CPython's single-phase test
    module, whose C code names itself "_testsinglephase" (as lz4's names itself
    "_version"), and `files` (name: source); returns `folder`."""
    import _testsinglephase

    package = folder / "speedups"
    package.mkdir(parents=True)
    shutil.copy(_testsinglephase.__file__, package / Path(_testsinglephase.__file__).name)
    for name, source in files.items():
        (package / name).write_text(source)
    return folder


def test_fall_back_warning_names_the_package_the_script_imported(
    orthanc: StartOrthanc, tmp_path: Path
) -> None:
    folder = single_phase_package(
        tmp_path / "packages", {"__init__.py": "from . import _testsinglephase\n"}
    )
    script = f"import sys\nsys.path.insert(0, {str(folder)!r})\nimport orthanc\nimport speedups\n"
    server = orthanc(script, interpreters=2)
    warnings = [line for line in server.log().splitlines() if "cannot load in a sub-" in line]
    assert len(warnings) == 1, server.log()
    assert "imports speedups, which cannot load in a sub-interpreter" in warnings[0]
    assert server.get("/python/interpreters").json()["MainInterpreter"] is True


# A submodule imported after its package falls back to pure Python when its
# extension module refuses, as propcache's does (aiohttp imports it that way).
SUBMODULE_FALLS_BACK = {
    "__init__.py": "",
    "api.py": (
        "try:\n    from . import _testsinglephase as _fast\nexcept ImportError:\n"
        "    _fast = None\nMODE = 'pure' if _fast is None else 'fast'\n"
    ),
    "extra.py": "VALUE = 'extra'\n",
}


def test_package_whose_submodule_catches_a_refusal_stays_usable(
    orthanc: StartOrthanc, tmp_path: Path
) -> None:
    folder = single_phase_package(tmp_path / "packages", SUBMODULE_FALLS_BACK)
    script = f"""
import sys
sys.path.insert(0, {str(folder)!r})
import orthanc
import speedups
from speedups import api
import speedups.extra

def Mode(output, uri, **request):
    output.AnswerBuffer('%d %s %s' % (orthanc.GetInterpreterIndex(), api.MODE,
                                      speedups.extra.VALUE), 'text/plain')

orthanc.RegisterRestCallback('/mode', Mode)
"""
    server = orthanc(script, interpreters=2)
    assert set(served_by(server, "/mode")) == {"0", "1"}
    assert server.get("/mode").text.split(" ", 1)[1] == "pure extra"
    log = server.log()
    assert "runs in the main interpreter alone" not in log
    lines = [line for line in log.splitlines() if "without these extension modules" in line]
    assert len(lines) == 2, log
    assert all("sub-interpreter: speedups._testsinglephase (" in line for line in lines)


# The Orthanc Book's multiprocessing sample, with the fork start method (3.13's
# default on Linux): a pool of worker processes made while the script loads.
FORKING_POOL = """
import multiprocessing
import orthanc

def Square(value):
    return value * value

POOL = multiprocessing.get_context('fork').Pool(1)

def Route(output, uri, **request):
    output.AnswerBuffer('%d %d' % (orthanc.GetInterpreterIndex(), POOL.apply(Square, (7,))),
                       'text/plain')

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        POOL.terminate()

orthanc.RegisterRestCallback('/square', Route)
orthanc.RegisterOnChangeCallback(OnChange)
"""


def test_script_forking_at_import_falls_back_to_the_main_interpreter(
    orthanc: StartOrthanc,
) -> None:
    # Isolated sub-interpreters refuse os.fork.
    server = orthanc(FORKING_POOL, interpreters=2)
    assert server.get("/square").text == "0 49"
    warnings = [line for line in server.log().splitlines() if "sub-interpreters refuse" in line]
    assert len(warnings) == 1, server.log()
    assert "uses fork" in warnings[0]
    assert "runs in the main interpreter alone" in warnings[0]


# spawn and forkserver (3.14's default on Linux) start fresh Python processes that
# import the pool's functions by module name: the Orthanc Book's pattern works when
# those live in a module of their own, which does not import orthanc (the orthanc
# module exists only inside Orthanc). Such pools work in sub-interpreters too.
MP_WORKERS = """
def Square(value):
    return value * value
"""

SPAWNING_POOL = """
import multiprocessing
import orthanc
import mp_workers

POOL = multiprocessing.get_context('METHOD').Pool(1)

def Route(output, uri, **request):
    output.AnswerBuffer('%d %d' % (orthanc.GetInterpreterIndex(),
                                   POOL.apply(mp_workers.Square, (7,))), 'text/plain')

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        POOL.terminate()

orthanc.RegisterRestCallback('/square', Route)
orthanc.RegisterOnChangeCallback(OnChange)
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawn_and_forkserver_pools_run_workers_from_their_own_module(
    orthanc: StartOrthanc, method: str, interpreters: int
) -> None:
    server = orthanc(
        SPAWNING_POOL.replace("METHOD", method), interpreters=interpreters, start=False
    )
    (server.folder / "mp_workers.py").write_text(MP_WORKERS)
    server.start()
    answers = [server.get("/square").text.split() for _ in range(6)]
    assert {square for _, square in answers} == {"49"}
    assert {int(index) for index, _ in answers} <= set(range(interpreters))
    # No fall-back: each sub-interpreter made its own pool.
    status = server.get("/python/interpreters").json()
    assert [entry["Index"] for entry in status["Interpreters"]] == list(range(interpreters))
    assert "runs in the main interpreter alone" not in server.log()


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


# PythonMainScript: the imaging work in the main interpreter, alongside the
# sub-interpreters that run PythonScript.
THUMBNAIL_MAIN_SCRIPT = """
import io
import numpy
import orthanc
import pydicom
from PIL import Image

def Thumbnail(output, uri, **request):
    dataset = pydicom.dcmread(io.BytesIO(orthanc.GetDicomForInstance(request['groups'][0])))
    pixels = dataset.pixel_array.astype(numpy.float64)
    low, high = pixels.min(), pixels.max()
    scaled = (pixels - low) * 255.0 / max(high - low, 1.0)
    image = Image.fromarray(numpy.round(scaled).astype(numpy.uint8), mode='L')
    png = io.BytesIO()
    image.save(png, format='PNG')
    output.SetHttpHeader('X-Interpreter', str(orthanc.GetInterpreterIndex()))
    output.AnswerBuffer(png.getvalue(), 'image/png')

orthanc.RegisterRestCallback('/thumbnail/(.*)', Thumbnail)
orthanc.LogWarning('main script in interpreter %d, %d for the script' % (
    orthanc.GetInterpreterIndex(), orthanc.GetInterpreterCount()))
"""

PURE_PYTHON_SCRIPT = """
import orthanc

def Square(output, uri, **request):
    value = int(request['groups'][0])
    output.AnswerBuffer('%d %d' % (orthanc.GetInterpreterIndex(), value * value), 'text/plain')

orthanc.RegisterRestCallback('/square/([0-9]+)', Square)
"""


def png_gray_pixels(data: bytes) -> tuple[int, int, list[list[int]]]:
    """Width, height and rows of an 8-bit grayscale PNG (PNG's five filters undone)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert (depth, color) == (8, 0)
    raw = zlib.decompress(idat)
    rows: list[list[int]] = []
    previous = [0] * width
    for y in range(height):
        line = raw[y * (width + 1) : (y + 1) * (width + 1)]
        kind, row = line[0], list(line[1:])
        for x in range(width):
            left = row[x - 1] if x else 0
            up, up_left = previous[x], previous[x - 1] if x else 0
            if kind == 1:
                row[x] = (row[x] + left) & 0xFF
            elif kind == 2:
                row[x] = (row[x] + up) & 0xFF
            elif kind == 3:
                row[x] = (row[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                near = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                row[x] = (row[x] + near) & 0xFF
        rows.append(row)
        previous = row
    return width, height, rows


def start_with_main_script(
    orthanc: StartOrthanc, imaging_venv: Path, tmp_path: Path, interpreters: int
) -> OrthancServer:
    """PURE_PYTHON_SCRIPT as PythonScript, THUMBNAIL_MAIN_SCRIPT as PythonMainScript."""
    main_script = tmp_path / "imaging_main.py"
    main_script.write_text(THUMBNAIL_MAIN_SCRIPT)
    return orthanc(
        PURE_PYTHON_SCRIPT,
        interpreters=interpreters,
        extra={"PythonVirtualEnv": str(imaging_venv), "PythonMainScript": str(main_script)},
    )


def test_main_script_alongside_sub_interpreters(
    orthanc: StartOrthanc, imaging_venv: Path, tmp_path: Path
) -> None:
    server = start_with_main_script(orthanc, imaging_venv, tmp_path, interpreters=2)
    assert wait_for_log(server, "main script in interpreter 2, 2 for the script")
    instance = upload(server, make_dicom(rows=4, columns=4))["ID"]
    for _ in range(6):
        response = server.get(f"/thumbnail/{instance}")
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["X-Interpreter"] == "2"
        width, height, rows = png_gray_pixels(response.content)
        assert (width, height) == (4, 4)
        # make_dicom's pixels are 0..15: stretched to 0..255, 17 apart.
        assert rows == [[17 * (4 * y + x) for x in range(4)] for y in range(4)]
    assert server.get("/square/12").text.endswith(" 144")
    assert set(served_by(server, "/square/3")) == {"0", "1"}
    status = server.get("/python/interpreters").json()
    assert status["MainInterpreter"] is False
    entries = {entry["Index"]: entry for entry in status["Interpreters"]}
    assert sorted(entries) == [0, 1, 2]
    assert [entries[i]["Main"] for i in (0, 1, 2)] == [False, False, True]
    assert entries[2]["Calls"] == 6
    assert entries[0]["Calls"] > 0 and entries[1]["Calls"] > 0
    metrics = server.get("/tools/metrics-prometheus").text
    assert "orthanc_python_interpreter_2_calls 6" in metrics
    assert "orthanc_python_main_interpreter_index 2" in metrics
    assert "cannot load in a sub-" not in server.log()


def test_main_script_with_one_interpreter_runs_both_scripts_there(
    orthanc: StartOrthanc, imaging_venv: Path, tmp_path: Path
) -> None:
    server = start_with_main_script(orthanc, imaging_venv, tmp_path, interpreters=1)
    assert wait_for_log(server, "main script in interpreter 0, 1 for the script")
    instance = upload(server, make_dicom())["ID"]
    response = server.get(f"/thumbnail/{instance}")
    assert response.status_code == 200, response.text
    assert response.headers["X-Interpreter"] == "0"
    assert set(served_by(server, "/square/3")) == {"0"}
    status = server.get("/python/interpreters").json()
    assert status["MainInterpreter"] is True
    assert [entry["Main"] for entry in status["Interpreters"]] == [True]


def test_imaging_example(orthanc: StartOrthanc, imaging_venv: Path) -> None:
    # examples/imaging: docs/imaging.md's worked example, with 2 interpreters.
    folder = Path(__file__).resolve().parents[2] / "examples" / "imaging"
    server = orthanc(
        (folder / "routes.py").read_text(),
        interpreters=2,
        extra={
            "PythonVirtualEnv": str(imaging_venv),
            "PythonMainScript": str(folder / "main.py"),
        },
    )
    instance = upload(server, make_dicom(patient_name="EXAMPLE^IMAGING", rows=8, columns=6))["ID"]
    thumbnail = server.get(f"/example/thumbnail/{instance}")
    assert thumbnail.status_code == 200, thumbnail.text
    width, height, rows = png_gray_pixels(thumbnail.content)
    assert (width, height) == (6, 8)
    assert rows[0][0] == 0 and rows[-1][-1] == 255
    served = set()
    for _ in range(10):
        tags = server.get(f"/example/tags/{instance}").json()
        assert tags["PatientName"] == "EXAMPLE^IMAGING"
        assert (tags["Rows"], tags["Columns"]) == (8, 6)
        served.add(tags["interpreter"])
    assert served == {0, 1}
    entries = server.get("/python/interpreters").json()["Interpreters"]
    assert [entry["Calls"] for entry in entries if entry["Main"]] == [1]


# Both scripts register: OnChange reaches one interpreter of each script; a
# family dispatched to one interpreter per call (here OnStoredInstance) may be
# registered by one of the two scripts only, and a REST route likewise.
BOTH_SCRIPTS_MAIN = """
import orthanc

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.NEW_INSTANCE:
        orthanc.LogWarning('main script saw a new instance in %d' % orthanc.GetInterpreterIndex())

orthanc.RegisterOnChangeCallback(OnChange)
for register in (lambda: orthanc.RegisterOnStoredInstanceCallback(print),
                 lambda: orthanc.RegisterRestCallback('/shared', print)):
    try:
        register()
    except orthanc.OrthancException as error:
        orthanc.LogWarning('main script refused: %s' % error)
"""

BOTH_SCRIPTS_SUB = """
import orthanc

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.NEW_INSTANCE:
        orthanc.LogWarning('sub script saw a new instance in %d' % orthanc.GetInterpreterIndex())

orthanc.RegisterOnChangeCallback(OnChange)
orthanc.RegisterOnStoredInstanceCallback(lambda instance, instance_id: None)
orthanc.RegisterRestCallback('/shared', lambda output, uri, **r: output.AnswerBuffer('sub', 'text/plain'))
"""


def test_both_scripts_registering_the_same_family(orthanc: StartOrthanc, tmp_path: Path) -> None:
    main_script = tmp_path / "main_script.py"
    main_script.write_text(BOTH_SCRIPTS_MAIN)
    server = orthanc(BOTH_SCRIPTS_SUB, interpreters=2, extra={"PythonMainScript": str(main_script)})
    refused = wait_for_log(server, "main script refused: ")
    assert len(refused) == 2, server.log()
    assert all("PythonScript and PythonMainScript cannot both register this" in r for r in refused)
    assert any("RegisterOnStoredInstanceCallback" in r for r in refused)
    assert any("RegisterRestCallback" in r for r in refused)
    assert server.get("/shared").text == "sub"

    upload(server, make_dicom("BOTH-SCRIPTS"))
    assert wait_for_log(server, "main script saw a new instance in 2")
    assert wait_for_log(server, r"sub script saw a new instance in [01]")


# A thread started before the import that fails: the sub-interpreter given up
# gets ORTHANC_STOPPED, so its copy of the thread stops instead of running on.
POLLER_THEN_NUMPY = """
import threading
import orthanc

stop = threading.Event()

def Poll():
    while not stop.wait(0.05):
        pass
    orthanc.LogWarning('poller of interpreter %d stopped' % orthanc.GetInterpreterIndex())

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        stop.set()

threading.Thread(target=Poll, name='poller').start()
orthanc.RegisterOnChangeCallback(OnChange)

import numpy
"""


def test_fall_back_stops_the_threads_of_the_sub_interpreter(
    orthanc: StartOrthanc, imaging_venv: Path
) -> None:
    server = orthanc(
        POLLER_THEN_NUMPY, interpreters=2, extra={"PythonVirtualEnv": str(imaging_venv)}
    )
    # The sub-interpreter's poller stopped during the fall-back, before the start.
    assert len(wait_for_log(server, "poller of interpreter 0 stopped")) == 1, server.log()
    assert server.stop() == 0
    log = server.log()
    assert len([x for x in log.splitlines() if "poller of interpreter 0 stopped" in x]) == 2
    assert "left running" not in log and "still run" not in log
