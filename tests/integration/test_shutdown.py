"""Orthanc's stop (src/plugin.cpp stop_python, src/interpreter_pool.cpp finalize,
src/on_change.cpp): no crash, no hang, bounded, with script threads and callbacks
still running."""

from __future__ import annotations

import re
import time

from .conftest import StartOrthanc
from .dicom_files import make_dicom
from .helpers import upload, wait_for_log

# A thread that never stops and calls Orthanc all the time, so that it is inside
# an orthanc.* call (GIL released) when the plugin stops.
CALLER = """
import threading
import orthanc

def Route(output, uri, **request):
    output.AnswerBuffer('ok', 'text/plain')

def Caller():
    while True:
        try:
            orthanc.RestApiGetAfterPlugins('/route')
            orthanc.LogInfo('caller alive')
        except orthanc.OrthancException:
            pass

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STARTED:
        threading.Thread(target=Caller, name='caller', daemon=%s).start()

orthanc.RegisterOnChangeCallback(OnChange)
orthanc.RegisterRestCallback('/route', Route)
"""


def settle() -> None:
    # ORTHANC_STARTED comes just before Orthanc installs its SIGTERM handler: a
    # SIGTERM sent at once kills it (exit -15) before the plugin is involved.
    time.sleep(1)


def test_daemon_thread_inside_orthanc_calls_at_stop(orthanc: StartOrthanc) -> None:
    # With 1 interpreter, Py_FinalizeEx ends a daemon thread with pthread_exit
    # when it takes the GIL back: it must not be inside an orthanc.* call then.
    for _ in range(3):
        server = orthanc(CALLER % "True", interpreters=1)
        assert wait_for_log(server, "caller alive")
        settle()
        assert server.stop() == 0
        assert "terminate called" not in server.log()


def test_thread_calling_orthanc_after_stop(orthanc: StartOrthanc) -> None:
    # A thread that ignores ORTHANC_STOPPED: its interpreter is left running, and
    # its calls after Orthanc's stop raise instead of reaching Orthanc.
    server = orthanc(CALLER % "False", interpreters=2)
    assert wait_for_log(server, "caller alive")
    settle()
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 30
    log = server.log()
    assert "still run after 10 s: caller" in log
    assert "terminate called" not in log


SLOW_ON_CHANGE = """
import time
import orthanc

def OnChange(changeType, level, resource):
    if changeType == orthanc.ChangeType.ORTHANC_STOPPED:
        orthanc.LogWarning('ORTHANC_STOPPED in %d' % orthanc.GetInterpreterIndex())
    elif changeType == orthanc.ChangeType.NEW_INSTANCE:
        time.sleep(1)

orthanc.RegisterOnChangeCallback(OnChange)
"""


def test_on_change_backlog_at_stop_is_bounded(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(SLOW_ON_CHANGE, interpreters=interpreters)
    for i in range(25):  # 25 s of backlog
        upload(server, make_dicom(f"BACKLOG-{i}"))
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 25
    log = server.log()
    dropped = re.search(r"Orthanc is stopping: (\d+) changes not delivered", log)
    assert dropped and int(dropped.group(1)) > 0
    assert re.findall(r"ORTHANC_STOPPED in \d", log) == ["ORTHANC_STOPPED in 0"]
