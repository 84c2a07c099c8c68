"""Scripts that start daemon threads, and imports that cannot load in a
sub-interpreter (src/interpreter_pool.cpp, src/plugin.cpp, src/bootstrap.py)."""

from __future__ import annotations

import subprocess
import time

import pytest

from orthanc_python_multi.process import free_ports

from .conftest import StartOrthanc
from .test_callbacks import wait_for_log

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
