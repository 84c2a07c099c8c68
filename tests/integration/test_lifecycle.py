"""ORTHANC_STARTED and ORTHANC_STOPPED as a script relies on them (src/on_change.cpp,
docs/dispatch.md): what it starts at ORTHANC_STARTED or at import, it can stop at
ORTHANC_STOPPED, with any number of interpreters."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.process import free_ports

from .conftest import StartOrthanc
from .helpers import wait_for_log
from .orthanc_server import OrthancServer

INTERPRETERS = pytest.mark.parametrize("interpreters", [1, 2, 4])


def python_errors(log: str) -> list[str]:
    """The lines of the log that show a Python exception (a traceback, or its last
    line: `AttributeError: ...`)."""
    return [
        line
        for line in log.splitlines()
        if "Traceback" in line or re.search(r"\b[A-Z]\w*(Error|Exception)\b", line)
    ]


def stop_cleanly(server: OrthancServer) -> str:
    """Stops the server (SIGTERM, within the fixture's usual limit); it must exit 0
    with no Python exception and no thread left running. Returns the log."""
    # ORTHANC_STARTED comes just before Orthanc installs its SIGTERM handler: a
    # SIGTERM sent at once kills it (exit -15) before the plugin is involved.
    time.sleep(1)
    assert server.stop() == 0
    log = server.log()
    assert python_errors(log) == [], log
    assert "still run" not in log  # every script thread ended in time
    return log


def echoscu(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["echoscu", "-v", "-aec", "PYSCP", "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )


# The existing plugin's pattern: a DICOM server started when Orthanc has started,
# shut down when it stops. The route touches `threading` and `logging` from
# Orthanc's HTTP threads, in whichever interpreter serves it: those threads are
# not the script's.
SCP_AT_STARTED = """
import logging
import threading
import orthanc
from pynetdicom import AE
from pynetdicom.sop_class import Verification

PORT = %d
SERVER = None

def OnChange(changeType, level, resource):
    global SERVER
    if changeType == orthanc.ChangeType.ORTHANC_STARTED:
        ae = AE(ae_title='PYSCP')
        ae.add_supported_context(Verification)
        SERVER = ae.start_server(('127.0.0.1', PORT), block=False)
        orthanc.LogWarning('SCP started in %%d' %% orthanc.GetInterpreterIndex())
    elif changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        SERVER.shutdown()
        orthanc.LogWarning('SCP shut down in %%d' %% orthanc.GetInterpreterIndex())

def Hello(output, uri, **request):
    logging.getLogger('lifecycle').info('hello from %%s', threading.current_thread().name)
    output.AnswerBuffer('hello %%d' %% orthanc.GetInterpreterIndex(), 'text/plain')

orthanc.RegisterOnChangeCallback(OnChange)
orthanc.RegisterRestCallback('/hello', Hello)
"""


@INTERPRETERS
def test_scp_started_at_orthanc_started_is_shut_down_at_orthanc_stopped(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    (port,) = free_ports(1)
    server = orthanc(SCP_AT_STARTED % port, interpreters=interpreters)
    assert wait_for_log(server, "SCP started in 0")
    result = echoscu(port)
    assert result.returncode == 0, result.stdout + result.stderr
    served = {server.get("/hello").text for _ in range(4 * interpreters)}
    assert served == {f"hello {index}" for index in range(interpreters)}
    log = stop_cleanly(server)
    # One server, started once and shut down once.
    assert len(re.findall(r"SCP started in \d", log)) == 1
    assert re.findall(r"SCP shut down in \d", log) == ["SCP shut down in 0"]


# A worker started while the script loads, so in every interpreter, each stopping
# its own at ORTHANC_STOPPED.
WORKER_AT_IMPORT = """
import threading
import orthanc

STOP = threading.Event()

def Work():
    orthanc.LogWarning('worker running in %d' % orthanc.GetInterpreterIndex())
    while not STOP.wait(0.05):
        pass

WORKER = threading.Thread(target=Work, name='worker')
WORKER.start()

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        STOP.set()
        WORKER.join()
        orthanc.LogWarning('worker joined in %d' % orthanc.GetInterpreterIndex())

orthanc.RegisterOnChangeCallback(OnChange)
"""


@INTERPRETERS
def test_worker_started_at_import_is_stopped_in_every_interpreter(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(WORKER_AT_IMPORT, interpreters=interpreters)
    for index in range(interpreters):
        assert wait_for_log(server, f"worker running in {index}")
    log = stop_cleanly(server)
    joined = sorted(re.findall(r"worker joined in (\d)", log))
    assert joined == [str(index) for index in range(interpreters)]


# A scheduler: a loop on Event.wait, started at ORTHANC_STARTED (once), joined at
# ORTHANC_STOPPED.
SCHEDULER_AT_STARTED = """
import threading
import orthanc

STOP = threading.Event()
SCHEDULER = None

def Schedule():
    while not STOP.wait(0.1):
        orthanc.LogWarning('scheduled task in %d' % orthanc.GetInterpreterIndex())

def OnChange(changeType, level, resource):
    global SCHEDULER
    if changeType == orthanc.ChangeType.ORTHANC_STARTED:
        SCHEDULER = threading.Thread(target=Schedule, name='scheduler')
        SCHEDULER.start()
    elif changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        STOP.set()
        SCHEDULER.join()
        orthanc.LogWarning('scheduler joined in %d' % orthanc.GetInterpreterIndex())

orthanc.RegisterOnChangeCallback(OnChange)
"""


@INTERPRETERS
def test_scheduler_started_at_orthanc_started_is_stopped_at_orthanc_stopped(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(SCHEDULER_AT_STARTED, interpreters=interpreters)
    assert wait_for_log(server, "scheduled task in 0")
    log = stop_cleanly(server)
    assert set(re.findall(r"scheduled task in (\d)", log)) == {"0"}
    assert re.findall(r"scheduler joined in \d", log) == ["scheduler joined in 0"]


# Both at once, as docs/dispatch.md advises: a worker per interpreter from the
# import, and one server from ORTHANC_STARTED. ORTHANC_STOPPED reaches every
# interpreter (each has its worker), and only one has a server to shut down.
BOTH = """
import threading
import orthanc
from pynetdicom import AE
from pynetdicom.sop_class import Verification

PORT = %d
STOP = threading.Event()
SERVER = None

def Work():
    while not STOP.wait(0.05):
        pass

WORKER = threading.Thread(target=Work, name='worker')
WORKER.start()

def OnChange(changeType, level, resource):
    global SERVER
    if changeType == orthanc.ChangeType.ORTHANC_STARTED:
        ae = AE(ae_title='PYSCP')
        ae.add_supported_context(Verification)
        SERVER = ae.start_server(('127.0.0.1', PORT), block=False)
    elif changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        if SERVER is not None:  # started in this interpreter
            SERVER.shutdown()
            orthanc.LogWarning('SCP shut down in %%d' %% orthanc.GetInterpreterIndex())
        STOP.set()
        WORKER.join()
        orthanc.LogWarning('worker joined in %%d' %% orthanc.GetInterpreterIndex())

orthanc.RegisterOnChangeCallback(OnChange)
"""


@INTERPRETERS
def test_worker_at_import_and_scp_at_orthanc_started_together(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    (port,) = free_ports(1)
    server = orthanc(BOTH % port, interpreters=interpreters)
    deadline = time.monotonic() + 30
    while (result := echoscu(port)).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.2)  # the server starts when ORTHANC_STARTED is delivered
    assert result.returncode == 0, result.stdout + result.stderr
    log = stop_cleanly(server)
    assert re.findall(r"SCP shut down in \d", log) == ["SCP shut down in 0"]
    joined = sorted(re.findall(r"worker joined in (\d)", log))
    assert joined == [str(index) for index in range(interpreters)]


# The scheduler script in an imaging deployment: numpy cannot load in a
# sub-interpreter, so the script falls back to the main interpreter. The
# sub-interpreter given up never saw ORTHANC_STARTED and runs no thread: it is
# not told ORTHANC_STOPPED either (its SCHEDULER is None).
def test_scheduler_script_falling_back_to_the_main_interpreter(
    orthanc: StartOrthanc, imaging_venv: Path
) -> None:
    server = orthanc(
        SCHEDULER_AT_STARTED + "\nimport numpy\n",
        interpreters=2,
        extra={"PythonVirtualEnv": str(imaging_venv)},
    )
    assert wait_for_log(server, "runs in the main interpreter alone")
    assert wait_for_log(server, "scheduled task in 0")
    time.sleep(1)  # ORTHANC_STARTED comes before Orthanc handles SIGTERM
    assert server.stop() == 0
    log = server.log()
    assert "AttributeError" not in log  # the ImportError of numpy is logged, nothing else
    assert "still run" not in log
    assert re.findall(r"scheduler joined in \d", log) == ["scheduler joined in 0"]
